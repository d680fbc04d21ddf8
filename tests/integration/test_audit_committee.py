"""The audit redraws each round's committee (issue 19, docs/committee.md).

A chain of six members with a committee of four runs two rounds; between them a member exits,
a newcomer takes its freed slot and a second member exits, leaving a vacant slot in the draw.
The audit's committee (replayed slots, the beacon value recomputed from the reveals, the Python
draw) must be the one a second path gives: the contract's own ``committeeOf``, ``slotOf`` and
``committeeSeat`` views, read while each round was open. The contracts refuse a non-seat's
vote and count the quorum over k, so those breaches are made the way a forged or rogue history
would show them: by editing the decoded events of the real rounds before the audit reads them.
"""

from __future__ import annotations

from typing import Any

import pytest
from ledger_support import (
    BUDGET,
    COHORT,
    LedgerSetup,
    committee_chain,
    committee_setup,
    h32,
    keys,
    open_with_beacon,
    peer_id,
)

from ledger import collect, institution_id
from ledger.audit import build_history
from ledger.committee import committee_info, seat_on_chain, slot_of
from ledger.committee_audit import check_committee
from ledger.index import EventIndex

N, K = 6, 4


def _seated_by_the_contract(s: LedgerSetup, round_: int) -> list[str]:
    """The committee of the open ``round_`` from the contract's views alone."""
    info = committee_info(s.hospitals[0], round_)
    assert info.key is not None and info.size == K
    seated = []
    for h in s.hospitals:
        slot = slot_of(h, h.address)
        if slot.since and seat_on_chain(h, info.key, slot.slot, info.domain) < info.size:
            seated.append(h.address)
    return sorted(seated, key=lambda a: int(a, 16))


def _round(s: LedgerSetup) -> tuple[int, list[str]]:
    """A round whose seated members all attest one pair; an unseated member finalizes."""
    round_ = open_with_beacon(s)
    seated = _seated_by_the_contract(s, round_)
    accepted = [h.address for h in s.hospitals]
    for h in s.hospitals:
        if h.address in seated:
            h.attest(round_, h32(f"aggregate-{round_}"), accepted)
    next(h for h in s.hospitals if h.address not in seated).finalize(round_)
    return round_, seated


@pytest.fixture(scope="module")
def campaign() -> tuple[LedgerSetup, dict[int, list[str]]]:
    s = committee_setup(*committee_chain(N, K), N)
    seated = dict([_round(s)])
    first, second = s.hospitals[0], s.hospitals[1]
    first.exit()
    newcomer = s.outsider
    newcomer.register(institution_id("newcomer"), peer_id(99), *keys(99), COHORT)
    s.admin.admit(newcomer.address)  # takes the slot `first` freed
    newcomer.declare_privacy_budget(BUDGET)
    second.exit()  # its slot stays vacant: 5 members over 6 slots
    s.hospitals = [newcomer, *s.hospitals[2:]]
    seated.update([_round(s)])
    return s, seated


def test_the_audits_committee_is_the_contracts(campaign: Any) -> None:
    s, seated = campaign
    report = collect(s.w3, s.deployment)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed == []
    names = {c["check"] for c in report["checks"]}
    for r in report["rounds"]:
        n = r["round"]
        assert r["committee"]["seats"] == seated[n]
        assert r["committee"]["key"] == "0x" + (committee_info(s.admin, n).key or b"").hex()
        assert r["committee"]["domain"] == N  # the newcomer reused a slot; none was added
        assert r["committee"]["vacant"] == K - len(seated[n])
        assert f"round {n}: every attester sits on its committee" in names
        assert f"round {n}: every rejecter sits on its committee" in names
        assert f"round {n}: its closing counted the quorum over the {K} committee seats" in names


def _committee_checks(
    s: LedgerSetup, events: list[dict[str, Any]], values: dict[int, str] | None = None
) -> dict[str, str]:
    """The failed committee checks of ``events``, with each round's beacon value as the audit
    recomputed it from the honest chain's reveals (or as ``values`` forges it)."""
    honest = {r["round"]: r["beacon"]["value"] for r in collect(s.w3, s.deployment)["rounds"]}
    history = build_history(events)
    for r in history["rounds"]:
        r["beacon"] = {"value": (values or {}).get(r["round"], honest[r["round"]])}
    on_chain = {
        r["round"]: (K, N, committee_info(s.admin, r["round"]).key) for r in history["rounds"]
    }
    failed: dict[str, str] = {}
    check_committee(
        events,
        history["rounds"],
        on_chain,
        (2, 3),
        lambda name, ok, detail="": None if ok else failed.setdefault(name, detail),
    )
    return failed


def _events(s: LedgerSetup) -> list[dict[str, Any]]:
    return [
        {**ev, "args": dict(ev["args"])} for ev in EventIndex(s.w3, s.deployment).update().events
    ]


def test_a_vote_from_a_member_off_the_committee_fails_the_audit(campaign: Any) -> None:
    s, seated = campaign
    events = _events(s)
    outsider = next(h.address for h in s.hospitals if h.address not in seated[2])
    vote = next(
        ev for ev in events if ev["event"] == "AggregateAttested" and ev["args"]["round"] == 2
    )
    vote["args"]["account"] = outsider
    failed = _committee_checks(s, events)
    assert failed["round 2: every attester sits on its committee"] == f"not seated: {outsider}"
    winner = f"round 2: the winner had {len(seated[2]) - 1} votes of seats, > 2/3 of {K}"
    assert set(failed) == {"round 2: every attester sits on its committee", winner}


def test_a_rejection_from_a_member_off_the_committee_fails_the_audit(campaign: Any) -> None:
    """A follower holds no update to reject (the contract refuses it): a history that shows
    one anyway fails, whoever it accuses."""
    s, seated = campaign
    events = _events(s)
    outsider = next(h.address for h in s.hospitals if h.address not in seated[2])
    vote = next(
        ev for ev in events if ev["event"] == "AggregateAttested" and ev["args"]["round"] == 2
    )
    accusation = {
        **vote,
        "event": "UpdateRejected",
        "args": {"round": 2, "account": seated[2][0], "reporter": outsider, "reason": 1},
    }
    events.insert(events.index(vote), accusation)
    assert _committee_checks(s, events) == {
        "round 2: every rejecter sits on its committee": f"not seated: {outsider}"
    }


def test_a_quorum_counted_over_every_member_fails_the_audit(campaign: Any) -> None:
    s, _ = campaign
    events = _events(s)
    final = next(
        ev for ev in events if ev["event"] == "RoundFinalized" and ev["args"]["round"] == 1
    )
    final["args"]["memberCount"] = N
    assert _committee_checks(s, events) == {
        f"round 1: its closing counted the quorum over the {K} committee seats": f"closed over {N}"
    }


def test_a_committee_drawn_from_another_seed_fails_the_audit(campaign: Any) -> None:
    """The chain's committee key against a beacon value the reveals do not give (a rogue
    beacon, or reveals rewritten): the audit's draw and the chain's disagree."""
    s, _ = campaign
    forged = "0x" + h32("another seed").hex()
    failed = _committee_checks(s, _events(s), {2: forged})
    check = (
        f"round 2: RoundLedger.committeeOf is the committee its beacon implies ({K} of {N} slots)"
    )
    assert check in failed and set(failed) <= {
        check,
        "round 2: every attester sits on its committee",
        f"round 2: the winner had 0 votes of seats, > 2/3 of {K}",
        f"round 2: the winner had 1 votes of seats, > 2/3 of {K}",
        f"round 2: the winner had 2 votes of seats, > 2/3 of {K}",
    }
