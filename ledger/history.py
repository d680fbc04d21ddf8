"""The consortium's history replayed from decoded event logs alone (an
:class:`~ledger.index.EventIndex`'s): identities and their sanctions, each round's members,
commits, attestations, rejections, alerts and outcome, the credits minted and each member's
privacy spend. :mod:`ledger.history_checks` then holds it against the contracts' views."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .records import (
    REJECTION_REASONS,
    SANCTIONS,
    ZERO_ADDRESS,
    PrivacyBudget,
    alert_kind_name,
    micros_to_epsilon,
)

__all__ = ["build_history", "epsilon_by_hospital"]


def _unmask(mask: int, commits: list[dict[str, Any]]) -> list[str]:
    """The committers of ``mask`` (bit i: the i-th commit of the round), ascending."""
    return sorted(
        (c["account"] for i, c in enumerate(commits) if mask >> i & 1), key=lambda a: int(a, 16)
    )


def _new_identity(a: dict[str, Any], block: int) -> dict[str, Any]:
    return {
        "account": a["account"],
        "institution_id": a["institutionId"],
        "peer_id": a["peerId"],
        "seal_key": a["sealKey"],
        "sign_key": a["signKey"],
        "status": "pending",
        "bond": a["bond"],
        "cohort": a["cohort"],
        "registered_block": block,
        "admitted_block": None,
        "admitted_by": None,
        "genesis": None,
        "endorsed_by": [],
        "sanctions": [],
        "key_rotations": 0,
        "left_block": None,
    }


def _new_round(a: dict[str, Any], block: int) -> dict[str, Any]:
    return {
        "round": a["round"],
        "status": "open",
        "opener": a["opener"],
        "opened_block": block,
        "commit_deadline": a["commitDeadline"],
        "attest_deadline": a["attestDeadline"],
        "member_count": a["memberCount"],
        "members": [],  # the registry's Active set when the round opened, replayed from its events
        "commits": [],
        "attestations": [],
        "votes": {},
        "aggregate_hash": None,
        "finalized": False,
        "finalizer": None,
        "accepted": [],
        "excluded": [],
        "rejections": [],
        "alerts": [],  # AlertRecorded: a member's monitoring alert (kind, hash of its JSON body)
        "dissenters": [],
        "credited": {},
        "slashed": {},
        "settle_tx": None,
        "closed_block": None,
    }


def _registry_event(
    identities: dict[str, dict[str, Any]], kind: str, a: dict[str, Any], block: int
) -> None:
    if kind == "Registered":
        identities[a["account"]] = _new_identity(a, block)
        return
    ident = identities.get(a.get("account") or a.get("candidate") or "")
    if ident is None:
        return
    if kind == "Admitted":
        ident.update(
            status="active", admitted_block=block, admitted_by=a["admittedBy"], genesis=a["genesis"]
        )
    elif kind == "Endorsed":
        ident["endorsed_by"].append(a["endorser"])
    elif kind == "BondDeposited":
        ident["bond"] = a["bond"]
    elif kind == "SanctionVoted":
        ident["sanctions"].append(
            {
                "voter": a["voter"],
                "action": SANCTIONS[a["action"]],
                "votes": a["votes"],
                "needed": a["needed"],
                "block": block,
            }
        )
    elif kind == "Suspended":
        ident["status"] = "suspended"
    elif kind == "Reinstated":
        ident["status"] = "active"
    elif kind == "Revoked":
        ident.update(status="revoked", left_block=block)
    elif kind == "Exited":
        ident.update(status="exited", left_block=block)
    elif kind in ("BondForfeited", "BondWithdrawn"):
        ident["bond"] = 0
    elif kind == "KeysRotated":
        ident.update(peer_id=a["peerId"], seal_key=a["sealKey"], sign_key=a["signKey"])
        ident["key_rotations"] += 1


def _active_set(active: set[str], kind: str, a: dict[str, Any]) -> None:
    """Replay one registry event on the set of Active members."""
    if kind in ("Admitted", "Reinstated"):
        active.add(a["account"])
    elif kind in ("Suspended", "Revoked", "Exited"):
        active.discard(a["account"])


def _ledger_event(
    rounds: dict[int, dict[str, Any]],
    identities: dict[str, dict[str, Any]],
    ev: dict[str, Any],
    active: set[str],
) -> None:
    a, kind = ev["args"], ev["event"]
    if kind == "RoundOpened":
        rounds[a["round"]] = _new_round(a, ev["block"])
        rounds[a["round"]]["members"] = sorted(active, key=lambda x: int(x, 16))
        return
    if kind == "PrivacyBudgetDeclared":
        ident = identities.get(a["account"])
        if ident is not None:
            raw = (
                a["epsilonMicros"],
                a["deltaAtto"],
                a["noiseMicros"],
                a["clipMicros"],
                bytes.fromhex(a["accountant"][2:]),
            )
            budget = PrivacyBudget.decode(raw)
            ident["privacy_budget"] = (
                None if budget is None else {**budget.to_json(), "block": ev["block"]}
            )
        return
    r = rounds.get(a.get("round"))
    if r is None:
        return
    if kind == "UpdateCommitted":
        r["commits"].append(
            {
                "account": a["account"],
                "peer_id": identities.get(a["account"], {}).get("peer_id"),
                "update_hash": a["updateHash"],
                "samples": a["samples"],
                "epsilon": micros_to_epsilon(a["epsilonMicros"]),
                "mode": a["mode"],
            }
        )
    elif kind == "AggregateAttested":
        key = a["voteKey"]
        r["attestations"].append(
            {
                "account": a["account"],
                "aggregate_hash": a["aggregateHash"],
                "accepted": _unmask(a["acceptedMask"], r["commits"]),
                "accepted_mask": a["acceptedMask"],
                "seen_number": a["seenNumber"],
                "seen_head": a["seenHead"],
                "vote_key": key,
                "late": r["finalized"],
                "agrees": None,
                "struck": False,
            }
        )
        r["votes"][key] = r["votes"].get(key, 0) + 1
    elif kind == "UpdateRejected":
        r["rejections"].append(
            {
                "account": a["account"],
                "reporter": a["reporter"],
                "reason": a["reason"],
                "reason_name": REJECTION_REASONS.get(a["reason"], "other"),
            }
        )
    elif kind == "AlertRecorded":
        r["alerts"].append(
            {
                "reporter": a["reporter"],
                "kind": alert_kind_name(a["kind"]),
                "body_hash": a["bodyHash"],
                "block": ev["block"],
                "tx": ev["tx"],
            }
        )
    elif kind == "VoteStruck":
        for att in r["attestations"]:
            if att["account"] == a["account"]:
                att["struck"] = True
    elif kind == "RoundFinalized":
        r.update(
            status="finalized",
            finalized=True,
            aggregate_hash=a["aggregateHash"],
            finalizer=a["finalizer"],
            accepted=_unmask(a["acceptedMask"], r["commits"]),
            closed_block=ev["block"],
            winning_vote_key=a["voteKey"],
            winning_votes=a["votes"],
            active_at_close=a["memberCount"],
            # who was Active at finalization, replayed from the registry's events
            active_at_finalize=sorted(active, key=lambda x: int(x, 16)),
        )
    elif kind == "RoundSettled":
        r["settle_tx"] = ev["tx"]
    elif kind == "ContributorSlashed":
        r["slashed"][a["account"]] = a["amount"]
    elif kind == "RoundFailed":
        r.update(status="failed", closed_block=ev["block"], active_at_close=a["memberCount"])


def build_history(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Identities, rounds and credits rebuilt from decoded events (an EventIndex's) alone."""
    identities: dict[str, dict[str, Any]] = {}
    rounds: dict[int, dict[str, Any]] = {}
    balances: dict[str, int] = defaultdict(int)
    supply = 0
    minted_in_tx: dict[str, dict[str, int]] = defaultdict(dict)
    active: set[str] = set()
    committee = 0  # RoundLedger.setCommitteeSize, fixed before the first round

    for ev in events:
        contract, kind, a = ev["contract"], ev["event"], ev["args"]
        if contract == "RoundLedger" and kind == "CommitteeSizeSet":
            committee = a["size"]
        elif contract == "HospitalRegistry":
            _registry_event(identities, kind, a, ev["block"])
            _active_set(active, kind, a)
        elif contract == "RoundLedger":
            _ledger_event(rounds, identities, ev, active)
        elif contract == "ContributionCredit" and kind == "Transfer":
            value = a["value"]
            if a["from"] == ZERO_ADDRESS:
                supply += value
                minted_in_tx[ev["tx"]][a["to"]] = value
            else:
                balances[a["from"]] -= value
            if a["to"] == ZERO_ADDRESS:
                supply -= value
            else:
                balances[a["to"]] += value

    for r in rounds.values():
        # the quorum's denominator: the round's committee (docs/committee.md) or its members
        r["voters"] = committee if 0 < committee < r["member_count"] else r["member_count"]
        if not r["finalized"]:
            continue
        r["credited"] = minted_in_tx.get(r["settle_tx"], {}) if r["settle_tx"] else {}
        accepted = set(r["accepted"])
        r["excluded"] = [c["account"] for c in r["commits"] if c["account"] not in accepted]
        for att in r["attestations"]:
            att["agrees"] = att["vote_key"] == r["winning_vote_key"]
        r["dissenters"] = [att["account"] for att in r["attestations"] if not att["agrees"]]
    return {
        "identities": list(identities.values()),
        "rounds": [rounds[k] for k in sorted(rounds)],
        "credits": {k: v for k, v in sorted(balances.items()) if v},
        "total_supply": supply,
    }


def epsilon_by_hospital(history: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per account, the epsilon it committed in each round (the running privacy spend its
    accountant reported), in round order."""
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in history["rounds"]:
        for c in r["commits"]:
            series[c["account"]].append({"round": r["round"], "epsilon": c["epsilon"]})
    return dict(series)
