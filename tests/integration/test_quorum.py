"""The round quorum against a registered majority that adapts to it (issue 14, section 1).

Each test replays an attack an outside auditor ran against the earlier contracts, where a
simple majority could finalize a model: sanctions then needed more than 1/2 of the *other*
members and shrank the quorum's denominator in the middle of the round, and a revoked member's
vote still counted. The reference here is the rule itself, computed in the test: a round's
quorum is more than 2/3 of the members Active when it opened; a sanction needs more than 2/3 of
the Active members (the target counted); only votes of members still Active count.
"""

from __future__ import annotations

from ledger_support import BUDGET, COHORT, LedgerSetup, events, h32, keys, reverts

from ledger import LedgerClient, advance_time, institution_id

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)


def _needed(members: int) -> int:
    """More than 2/3 of ``members``, computed here (not read from the contracts)."""
    return members * 2 // 3 + 1


def _five(s: LedgerSetup) -> list[LedgerClient]:
    """The four hospitals plus the outsider, endorsed by three of them (more than 2/3 of 4)."""
    s.outsider.register(institution_id("Fifth Clinic"), "12D3KooWfifth", *keys(5), COHORT)
    for h in s.hospitals[:3]:
        h.endorse(s.outsider.address)
    s.outsider.admit(s.outsider.address)
    s.outsider.declare_privacy_budget(BUDGET)
    return [*s.hospitals, s.outsider]


def _commit(members: list[LedgerClient], rnd: int) -> None:
    for i, h in enumerate(members):
        h.commit_update(rnd, h32(f"update-{rnd}-{i}"), 100, 0.5, 1)


def test_three_of_five_cannot_suspend_an_honest_member_and_finalize(
    ledger_consortium: LedgerSetup,
) -> None:
    s = ledger_consortium
    members = _five(s)
    attackers, (honest, fooled) = members[:3], members[3:]
    rnd = attackers[0].open_round()
    assert s.admin.round_info(rnd).member_count == 5
    _commit(members, rnd)
    chosen = [a.address for a in attackers]  # their model, the honest updates left out
    for a in attackers:
        a.attest(rnd, h32("attackers' model"), chosen)
    # the suspension needs more than 2/3 of the 5 Active members, the target counted: 4 votes
    for a in attackers:
        receipt = a.suspend(honest.address)
    assert events(s.admin.registry, "SanctionVoted", receipt)[0]["needed"] == _needed(5) == 4
    assert events(s.admin.registry, "Suspended", receipt) == [] and s.admin.is_active(
        honest.address
    )
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=3, memberCount=5):
        attackers[0].finalize(rnd)
    # even with a fooled fourth vote the suspension does not shrink this round's quorum
    receipt = fooled.suspend(honest.address)
    assert events(s.admin.registry, "Suspended", receipt) == [
        {"account": honest.address, "votes": 4}
    ]
    assert not s.admin.quorum_reached(rnd)
    # an unstruck departure counts as a lost vote; struck (it had not voted), it costs nothing
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=2, memberCount=5):
        attackers[1].finalize(rnd)
    s.admin.strike_vote(rnd, honest.address)
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=3, memberCount=5):
        attackers[1].finalize(rnd)
    assert s.admin.credit_supply() == 0  # nothing minted, nobody slashed
    # it takes effect from the next round: 4 members there
    advance_time(s.w3, 2 * 3600 + 1)  # past the attestation deadline (deploy's default windows)
    attackers[0].fail_round(rnd)
    assert s.admin.round_info(attackers[0].open_round()).member_count == 4


def test_two_of_four_cannot_suspend_the_other_two_finalize_and_revoke(
    ledger_consortium: LedgerSetup,
) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    _commit(s.hospitals, rnd)
    for h in (a, b):
        h.attest(rnd, h32("attackers' model"), [a.address, b.address])
    for target in (c, d):
        a.suspend(target.address)
        receipt = b.suspend(target.address)
        assert events(s.admin.registry, "SanctionVoted", receipt)[0]["needed"] == _needed(4) == 3
        assert events(s.admin.registry, "Suspended", receipt) == []
    assert s.admin.active_count() == 4
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=2, memberCount=4):
        b.finalize(rnd)
    a.revoke(c.address)
    receipt = b.revoke(c.address)
    assert (
        events(s.admin.registry, "Revoked", receipt) == []
        and events(s.admin.registry, "BondForfeited", receipt) == []
    )
    ident = s.admin.identity(c.address)
    assert ident is not None and ident.status == "active" and ident.bond > 0


def test_a_revoked_members_vote_is_not_the_deciding_one(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    _commit(s.hospitals, rnd)
    everyone = [h.address for h in s.hospitals]
    for h in (a, b, c):
        h.attest(rnd, h32("agg"), everyone)
    assert s.admin.quorum_reached(rnd)  # 3 of 4
    for h in (b, c, d):  # more than 2/3 of 4 revoke a (its vote was the third)
        h.revoke(a.address)
    assert s.admin.pending_departures(rnd) == 1 and not s.admin.quorum_reached(rnd)
    with reverts("RoundLedgerDeparturesNotStruck", round=rnd, pending=1):
        b.finalize(rnd)
    with reverts("RoundLedgerNothingToStrike", round=rnd, account=b.address):
        s.outsider.strike_vote(rnd, b.address)  # Active: nothing to strike
    key = s.admin.attestation(rnd, a.address).vote_key  # type: ignore[union-attr]
    receipt = s.outsider.strike_vote(rnd, a.address)  # anyone may strike
    assert events(s.admin.round_ledger, "VoteStruck", receipt) == [
        {"round": rnd, "account": a.address, "voteKey": key, "striker": s.outsider.address}
    ]
    with reverts("RoundLedgerNothingToStrike", round=rnd, account=a.address):
        b.strike_vote(rnd, a.address)  # once per departure
    att = s.admin.attestation(rnd, a.address)
    assert att is not None and att.struck and s.admin.pending_departures(rnd) == 0
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=2, memberCount=4):
        b.finalize(rnd)
    with reverts("RoundLedgerNotRoundMember", round=rnd, account=a.address):
        a.attest(rnd, h32("agg"), everyone)
    d.attest(rnd, h32("agg"), everyone)  # a member in good standing decides
    receipt = d.finalize(rnd)
    assert events(s.admin.round_ledger, "RoundFinalized", receipt)[0]["votes"] == 3
    assert s.admin.round_info(rnd).member_count == 4 and s.admin.dissent_count(rnd) == 0


def test_an_admission_takes_effect_from_the_next_round(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    _commit(s.hospitals, rnd)
    newcomer = _five(s)[-1]
    with reverts("RoundLedgerNotRoundMember", round=rnd, account=newcomer.address):
        newcomer.commit_update(rnd, h32("newcomer"), 100, 0.5, 1)
    with reverts("RoundLedgerNotRoundMember", round=rnd, account=newcomer.address):
        newcomer.attest(rnd, h32("agg"), [a.address])
    for h in (a, b, c):
        h.attest(rnd, h32("agg"), [a.address, b.address, c.address, d.address])
    receipt = a.finalize(rnd)
    assert events(s.admin.round_ledger, "RoundFinalized", receipt)[0]["memberCount"] == 4
    nxt = newcomer.open_round()  # settles the previous round if nobody did (a.finalize did)
    assert s.admin.round_info(nxt).member_count == 5 and s.admin.round_info(rnd).settled
    newcomer.commit_update(nxt, h32("newcomer"), 100, 0.5, 1)


def test_the_membership_clock_and_tenures(ledger_consortium: LedgerSetup) -> None:
    """Every change of the Active set advances the epoch; a tenure is the latest stay."""
    s = ledger_consortium
    a, b, c, d = s.hospitals
    registry = s.admin.registry.functions

    def clock() -> tuple[int, int, int]:
        m = registry.membership().call()
        return (m[0], m[1], m[2])

    assert clock() == (4, 4, 0)  # four genesis admissions, no departure
    assert [tuple(registry.tenure(h.address).call()) for h in s.hospitals] == [
        (1, 0),
        (2, 0),
        (3, 0),
        (4, 0),
    ]
    assert tuple(registry.tenure(s.outsider.address).call()) == (0, 0)  # never Active
    for h in (a, b, c):
        h.suspend(d.address)
    assert clock() == (5, 3, 1) and tuple(registry.tenure(d.address).call()) == (4, 5)
    for h in (a, b, c):
        h.reinstate(d.address)
    assert clock() == (6, 4, 1) and tuple(registry.tenure(d.address).call()) == (6, 0)
    c.exit()
    assert clock() == (7, 3, 2) and tuple(registry.tenure(c.address).call()) == (3, 7)
    rnd = a.open_round()
    info = s.admin.round_info(rnd)
    assert (info.member_count, info.membership_epoch) == (3, 7)
