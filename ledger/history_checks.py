"""The audit's checks of a replayed history (:mod:`ledger.history`): against the contracts'
views, read in batches (:mod:`ledger.batch_views`), and against the rules the contracts must
have applied: each round's quorum over its membership, the vote keys, the credit scheme."""

from __future__ import annotations

from typing import Any

from eth_utils import keccak
from web3 import Web3

from .batch_views import View, view_calls
from .client import LedgerClient
from .records import IDENTITY_STATUSES, ROUND_STATUSES, PrivacyBudget

__all__ = ["check_against_views", "check_round_quorum", "expected_credits"]


def _hex(value: bytes | str) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _vote_key(aggregate_hash: str, accepted_mask: int) -> str:
    """``keccak256(abi.encode(aggregateHash, acceptedMask))``, encoded by hand: the audit
    recomputes thousands."""
    return (
        "0x"
        + keccak(bytes.fromhex(aggregate_hash[2:]) + int(accepted_mask).to_bytes(32, "big")).hex()
    )


def expected_credits(
    r: dict[str, Any], per_round: int, scheme: str, cohorts: dict[str, int] | None = None
) -> dict[str, int]:
    """Each accepted contributor's credits as the contract must mint them, on sample counts
    capped by each committer's declared cohort (``cohorts``; uncapped where None)."""
    caps = cohorts or {}
    samples = {
        c["account"]: min(c["samples"], caps.get(c["account"], c["samples"])) for c in r["commits"]
    }
    weights = {a: (1 if scheme == "equal" else samples[a]) for a in r["accepted"]}
    total = sum(weights.values())
    if not per_round or not total:
        return {}
    return {a: per_round * w // total for a, w in weights.items() if per_round * w // total}


def check_round_quorum(r: dict[str, Any], quorum: tuple[int, int], check: Any) -> None:
    """The quorum rules of one round, from the registry's and the ledger's events alone: its
    membership is the Active set when it opened (and the ledger's member count agrees); every
    attester belonged to it; a finalization had more than ``quorum`` of that membership voting
    for the winner, counting only members still Active at finalization."""
    num, den = quorum
    rnd, members = r["round"], set(r["members"])
    check(
        f"round {rnd}: its quorum is over the {r['member_count']} members Active when it opened",
        r["member_count"] == len(members),
        f"{len(members)} Active in the registry's events",
    )
    outsiders = sorted({x["account"] for x in r["attestations"]} - members)
    check(
        f"round {rnd}: every attester was a member when the round opened",
        not outsiders,
        f"not members at opening: {', '.join(outsiders)}" if outsiders else "",
    )
    if not r["finalized"]:
        return
    on_time = [
        x for x in r["attestations"] if not x["late"] and x["vote_key"] == r["winning_vote_key"]
    ]
    standing = members & set(r["active_at_finalize"])
    good = [x["account"] for x in on_time if x["account"] in standing]
    bad = sorted({x["account"] for x in on_time} - standing)
    n, claimed = r.get("voters", r["member_count"]), r["winning_votes"]
    whom = "members" if n == r["member_count"] else "committee seats"
    check(
        f"round {rnd}: the winner had {len(good)} votes of members in good standing, "
        f"> {num}/{den} of its {n} {whom}",
        len(good) * den > n * num and claimed <= len(good),
        (
            f"the finalization counted {claimed}; votes of members not in good standing at "
            f"finalization or not members at opening: {', '.join(bad)}"
        )
        if bad
        else f"counted {claimed}",
    )


def check_against_views(
    w3: Web3, viewer: LedgerClient, history: dict[str, Any], settings: dict[str, Any], check: Any
) -> None:
    """Hold the replayed ``history`` against the contracts' views (identities, privacy
    budgets, rounds, commitments, vote keys, quorums, credits, balances and supply), reading
    them in batches; each comparison is one ``check``."""
    identities = {i["account"]: i for i in history["identities"]}
    rounds = {r["round"]: r for r in history["rounds"]}
    members = viewer._call(viewer.registry.functions.members())
    check(
        "identities in logs == registry members",
        set(members) == set(identities),
        f"{len(identities)} identities",
    )
    accounts = list(identities)
    identity_views = view_calls(w3, View(viewer.registry, "identity"), [(a,) for a in accounts])
    for account, (raw,) in zip(accounts, identity_views, strict=True):
        entry = identities[account]
        same = (
            IDENTITY_STATUSES[raw[2]],
            raw[7],
            _hex(raw[5]),
            _hex(raw[6]),
            int(raw[8]),
            int(raw[10]),
        ) == (
            entry["status"],
            entry["peer_id"],
            entry["seal_key"],
            entry["sign_key"],
            entry["bond"],
            entry["cohort"],
        )
        check(f"identity {account} ({entry['peer_id']}) matches the registry", same)

    declared = [a for a in accounts if identities[a].get("privacy_budget")]
    budget_views = view_calls(
        w3, View(viewer.round_ledger, "privacyBudget"), [(a,) for a in declared]
    )
    for account, (raw,) in zip(declared, budget_views, strict=True):
        logged = {k: v for k, v in identities[account]["privacy_budget"].items() if k != "block"}
        on_chain = PrivacyBudget.decode(tuple(raw))
        check(
            f"privacy budget of {account} matches the ledger",
            on_chain is not None and on_chain.to_json() == logged,
        )

    current = viewer.current_round()
    check(
        "rounds in logs == currentRound()",
        current == (max(rounds) if rounds else 0),
        f"current round {current}",
    )
    num, den = settings["ledger"]["quorum"]
    per_round, scheme = settings["ledger"]["credit_per_round"], settings["ledger"]["credit_scheme"]
    slash = settings["ledger"]["slash_per_rejection"]
    numbers = sorted(rounds)
    infos = view_calls(w3, View(viewer.round_ledger, "roundInfo"), [(n,) for n in numbers])
    pairs = [(n, c["account"]) for n in numbers for c in rounds[n]["commits"]]
    commits = dict(
        zip(pairs, view_calls(w3, View(viewer.round_ledger, "commitment"), pairs), strict=True)
    )
    for rnd, (info,) in zip(numbers, infos, strict=True):
        r = rounds[rnd]
        # Round fields: opener, openedAt, status, settled, struckVotes, leader, attestDeadline,
        # attestCount, leaderVotes, commitDeadline, commitCount, memberCount, ...
        same = (ROUND_STATUSES[info[2]], info[10], info[7], info[11]) == (
            r["status"],
            len(r["commits"]),
            len(r["attestations"]),
            r["member_count"],
        )
        check(
            f"round {rnd}: status {r['status']}, {len(r['commits'])} commits, "
            f"{len(r['attestations'])} attestations match the ledger",
            same,
        )
        same_commits = all(
            (_hex(commits[(rnd, c["account"])][0][0]), commits[(rnd, c["account"])][0][1])
            == (c["update_hash"], c["samples"])
            for c in r["commits"]
        )
        check(f"round {rnd}: committed hashes and samples match the ledger", same_commits)
        keys_ok = all(
            _vote_key(x["aggregate_hash"], x["accepted_mask"]) == x["vote_key"]
            for x in r["attestations"]
        )
        check(f"round {rnd}: every vote key is keccak256(aggregate, accepted mask)", keys_ok)
        check_round_quorum(r, (num, den), check)
        if not r["finalized"]:
            continue
        check(
            f"round {rnd}: aggregate hash matches the ledger", _hex(info[15]) == r["aggregate_hash"]
        )
        check(f"round {rnd}: credits were settled", r["settle_tx"] is not None or rnd == current)
        if r["settle_tx"] is None:
            continue
        cohorts = {a: identities[a]["cohort"] for a in identities}
        check(
            f"round {rnd}: credits follow the {scheme} scheme (samples capped by each declared cohort)",
            expected_credits(r, per_round, scheme, cohorts) == r["credited"],
        )
        if slash:
            check(
                f"round {rnd}: every excluded committer was slashed",
                set(r["slashed"]) == set(r["excluded"]),
            )
    holders = list(history["credits"])
    balances = view_calls(w3, View(viewer.credit, "balanceOf"), [(a,) for a in holders])
    for account, (balance,) in zip(holders, balances, strict=True):
        check(
            f"credit balance of {account} matches the token", balance == history["credits"][account]
        )
    check(
        "total supply matches the token",
        viewer.credit_supply() == history["total_supply"],
        str(history["total_supply"]),
    )
