"""Rebuild the consortium's history from the chain's event logs and check it against the
contracts' views, the compiled sources and the quorum and credit rules.

:func:`collect` returns a JSON-ready dict; :func:`format_report` renders it as tables. The
history (identities, rounds, commits, attestations, rejections, dissent, credits, and the
awards of any IncentiveDistributor the deployment lists: :mod:`ledger.award_audit`) comes from
logs alone, through an :class:`~ledger.index.EventIndex`; views are read (batched on a node)
only to cross-check it, and every disagreement is listed under ``checks``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak
from web3 import Web3

from .anchors import AttestationRecord, HeadAnchor, check_anchors, check_attested_heads
from .award_audit import award_history, check_awards
from .awards import artifact_name
from .beacon_audit import check_beacon
from .client import LedgerClient
from .committee_audit import check_committee, committee_setting
from .compile import CONTRACT_NAMES, compile_contracts
from .deploy import Deployment, provider_label
from .embedded import is_embedded
from .errors import LedgerError, _abi_type
from .figures import check_figures, privacy_by_hospital
from .index import EventIndex, fast_decode, is_static_simple
from .records import (
    IDENTITY_STATUSES,
    REJECTION_REASONS,
    ROUND_STATUSES,
    SANCTIONS,
    PrivacyBudget,
    alert_kind_name,
    micros_to_epsilon,
)
from .views import alert_rows, scheme_label
from .wiring import check_wiring, code_matches

__all__ = [
    "build_history",
    "collect",
    "epsilon_by_hospital",
    "expected_credits",
    "format_report",
    "unread_report",
]

_ZERO = "0x0000000000000000000000000000000000000000"
#: eth_call requests per JSON-RPC batch.
_BATCH = 1000


def _hex(value: bytes | str) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


class _View:
    """A view function encoded without web3's per-call machinery (a long history makes
    thousands of calls): selector + ``eth_abi`` arguments, outputs decoded with ``eth_abi``."""

    def __init__(self, contract: Any, name: str) -> None:
        (item,) = [i for i in contract.abi if i.get("type") == "function" and i["name"] == name]
        self.address = contract.address
        self.inputs = [_abi_type(i) for i in item["inputs"]]
        self.outputs = [_abi_type(o) for o in item["outputs"]]
        self.selector = function_signature_to_4byte_selector(f"{name}({','.join(self.inputs)})")

    def data(self, *args: Any) -> str:
        return "0x" + (self.selector + abi_encode(self.inputs, list(args))).hex()


def _view_calls(w3: Web3, view: _View, arg_lists: list[tuple[Any, ...]]) -> list[Any]:
    """``view`` called with each argument tuple, decoded; on a node the calls go out as
    JSON-RPC batches, so a long history costs a few round trips, not one per call."""
    datas = [view.data(*args) for args in arg_lists]
    raws: list[bytes] = []
    if is_embedded(w3) or not hasattr(w3.provider, "make_batch_request"):
        raws = [bytes(w3.eth.call({"to": view.address, "data": d})) for d in datas]  # type: ignore[typeddict-item]
    else:
        for lo in range(0, len(datas), _BATCH):
            answers = w3.provider.make_batch_request(
                [
                    ("eth_call", [{"to": view.address, "data": d}, "latest"])
                    for d in datas[lo : lo + _BATCH]
                ]
            )
            if isinstance(answers, dict):  # the node refused the whole batch
                raise LedgerError(f"batched eth_call failed: {answers.get('error')}")
            for answer in sorted(answers, key=lambda r: int(r["id"])):
                if "error" in answer:
                    raise LedgerError(f"eth_call failed: {answer['error']}")
                result = answer["result"]
                raws.append(bytes.fromhex(result[2:]) if isinstance(result, str) else bytes(result))
    flat = view.outputs
    if (
        len(flat) == 1
        and flat[0].startswith("(")
        and flat[0].endswith(")")
        and "(" not in flat[0][1:]
    ):
        inner = flat[0][1:-1].split(",")
        if all(is_static_simple(t) for t in inner):  # a struct of static words: decode it fast
            return [(tuple(fast_decode(inner, raw)),) for raw in raws]
    if all(is_static_simple(t) for t in flat):
        return [tuple(fast_decode(flat, raw)) for raw in raws]
    return [abi_decode(view.outputs, raw) for raw in raws]


def _vote_key(aggregate_hash: str, accepted_mask: int) -> str:
    """``keccak256(abi.encode(aggregateHash, acceptedMask))``, encoded by hand: the audit
    recomputes thousands."""
    return (
        "0x"
        + keccak(bytes.fromhex(aggregate_hash[2:]) + int(accepted_mask).to_bytes(32, "big")).hex()
    )


def _unmask(mask: int, commits: list[dict[str, Any]]) -> list[str]:
    """The committers of ``mask`` (bit i: the i-th commit of the round), ascending."""
    return sorted(
        (c["account"] for i, c in enumerate(commits) if mask >> i & 1), key=lambda a: int(a, 16)
    )


def collect(
    w3: Web3,
    deployment: Deployment,
    *,
    index: EventIndex | None = None,
    cache_dir: Path | str | None = None,
    expect_genesis: bytes | None = None,
    expect_heads: list[HeadAnchor | AttestationRecord] | None = None,
    source: str | None = None,
    prior_checks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The audit report of ``deployment`` on ``w3``: chain, settings, identities, rounds,
    credits, privacy spend and checks. History comes from the event logs (an
    :class:`~ledger.index.EventIndex`, updated here; pass one, or a ``cache_dir``, to reuse it);
    the contracts' views are read, batched, only to cross-check it.

    Before the history, the chain itself is checked (checks of ``kind`` "integrity"): the
    anchors (:mod:`ledger.anchors`: the deployment's genesis, ``expect_genesis``, each of
    ``expect_heads``), the deployed code and its wiring (:mod:`ledger.wiring`), and each
    attested head. ``prior_checks`` (e.g. the chain-state file's verification) come first;
    ``source`` names where the chain was read (default: the provider's endpoint)."""
    artifacts = compile_contracts()
    checks: list[dict[str, Any]] = list(prior_checks or [])

    def check(name: str, ok: bool, detail: str = "", kind: str = "history") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail, "kind": kind})

    check_anchors(w3, deployment, check, expect_genesis=expect_genesis, heads=expect_heads or ())
    first = len(checks)
    for name, address in sorted(deployment.addresses.items()):
        ok, detail = code_matches(w3, address, artifacts[artifact_name(name)])
        kind = (
            "integrity" if name in CONTRACT_NAMES else "history"
        )  # distributors: ledger.award_audit
        check(
            f"code of {name} matches contracts/{artifact_name(name)}.sol",
            ok,
            f"{address}{detail}",
            kind=kind,
        )
    check_wiring(w3, deployment, check)
    chain = {
        "chain_id": w3.eth.chain_id,
        "rpc": source or provider_label(w3),
        "deployment_rpc": deployment.rpc,
        "genesis": "0x" + bytes(w3.eth.get_block(0)["hash"]).hex(),
        "contracts": dict(deployment.addresses),
        "admin": deployment.admin,
        "anchors": {
            "genesis": [
                g for g in (deployment.genesis, expect_genesis and "0x" + expect_genesis.hex()) if g
            ],
            "heads": len(expect_heads or ()),
        },
    }
    if not all(c["ok"] for c in checks[first:] if c["kind"] == "integrity"):
        # not the consortium's contracts, or not wired as the file says: read nothing of them
        latest = w3.eth.get_block("latest")
        chain.update(head_block=int(latest["number"]), head_hash="0x" + bytes(latest["hash"]).hex())
        return unread_report(chain, checks)
    viewer = LedgerClient(w3, deployment)  # read-only: no key
    index = (index or EventIndex(w3, deployment, cache_dir)).update()

    settings = {"registry": viewer.registry_config(), "ledger": viewer.ledger_config()}
    history = build_history(index.events)
    check_attested_heads(w3, history["rounds"], check)
    _check_against_views(w3, viewer, history, settings, check)
    check_beacon(
        viewer, deployment, index.events, history["rounds"], settings["ledger"]["quorum"], check
    )
    numbers = [r["round"] for r in history["rounds"]] if committee_setting(index.events) else []
    drawn = _view_calls(w3, _View(viewer.round_ledger, "committeeOf"), [(n,) for n in numbers])
    check_committee(
        index.events,
        history["rounds"],
        dict(zip(numbers, drawn, strict=True)),
        settings["ledger"]["quorum"],
        check,
    )
    history["incentives"] = award_history(index.events, deployment)
    for key, token in check_awards(
        w3, deployment, history, settings["ledger"]["quorum"], check
    ).items():
        ok, detail = code_matches(w3, token, artifacts["ContributionCredit"])
        check(
            f"code of {key}'s token matches contracts/ContributionCredit.sol",
            ok,
            f"{token}{detail}",
        )
    history["epsilon"] = epsilon_by_hospital(history)
    history["privacy"] = privacy_by_hospital(history)
    history["flags"] = check_figures(history, check)
    chain.update(
        head_block=index.last_block,
        head_hash="0x" + bytes(w3.eth.get_block(index.last_block)["hash"]).hex(),
    )
    return {
        "chain": chain,
        "settings": settings,
        **history,
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


def unread_report(chain: dict[str, Any], checks: list[dict[str, Any]]) -> dict[str, Any]:
    """A report whose history was not read because the chain or the deployment failed its
    integrity checks: the ``chain`` description and the ``checks``, no history."""
    return {
        "chain": chain,
        "settings": {},
        "identities": [],
        "rounds": [],
        "credits": {},
        "total_supply": 0,
        "checks": checks,
        "ok": False,
    }


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
            if a["from"] == _ZERO:
                supply += value
                minted_in_tx[ev["tx"]][a["to"]] = value
            else:
                balances[a["from"]] -= value
            if a["to"] == _ZERO:
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


def _check_against_views(
    w3: Web3, viewer: LedgerClient, history: dict[str, Any], settings: dict[str, Any], check: Any
) -> None:
    identities = {i["account"]: i for i in history["identities"]}
    rounds = {r["round"]: r for r in history["rounds"]}
    members = viewer._call(viewer.registry.functions.members())
    check(
        "identities in logs == registry members",
        set(members) == set(identities),
        f"{len(identities)} identities",
    )
    accounts = list(identities)
    identity_views = _view_calls(w3, _View(viewer.registry, "identity"), [(a,) for a in accounts])
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
    budget_views = _view_calls(
        w3, _View(viewer.round_ledger, "privacyBudget"), [(a,) for a in declared]
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
    infos = _view_calls(w3, _View(viewer.round_ledger, "roundInfo"), [(n,) for n in numbers])
    pairs = [(n, c["account"]) for n in numbers for c in rounds[n]["commits"]]
    commits = dict(
        zip(pairs, _view_calls(w3, _View(viewer.round_ledger, "commitment"), pairs), strict=True)
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
    balances = _view_calls(w3, _View(viewer.credit, "balanceOf"), [(a,) for a in holders])
    for account, (balance,) in zip(holders, balances, strict=True):
        check(
            f"credit balance of {account} matches the token", balance == history["credits"][account]
        )
    check(
        "total supply matches the token",
        viewer.credit_supply() == history["total_supply"],
        str(history["total_supply"]),
    )


# --------------------------------------------------------------------------- rendering


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [
        ["" if v is None else str(v) for v in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _short(value: str | None, keep: int = 10) -> str:
    if not value:
        return "-"
    return value if len(value) <= 2 * keep + 1 else f"{value[:keep]}..{value[-4:]}"


def _credits(wei: int) -> str:
    return f"{wei / 10**18:,.6f}"


def format_report(report: dict[str, Any]) -> str:
    """Readable tables of a :func:`collect` report."""
    chain = report["chain"]
    peers = {i["account"]: i["peer_id"] for i in report["identities"]}
    out = [
        f"medmesh audit: chain {chain['chain_id']} read from {chain['rpc']}, head block {chain['head_block']}"
        + (f" ({chain['head_hash']})" if chain.get("head_hash") else ""),
        f"genesis: {chain.get('genesis')}"
        + (
            f"; the deployment file names rpc {chain['deployment_rpc']}"
            if chain.get("deployment_rpc") not in (None, chain["rpc"], "embedded")
            else ""
        ),
        _anchor_line(chain),
        "contracts: " + ", ".join(f"{k} {v}" for k, v in chain["contracts"].items()),
        f"admin: {chain['admin']}",
        "",
        f"Identities ({len(report['identities'])})",
        _table(
            ["account", "peer id", "institution id", "status", "cohort", "registered", "admitted"],
            [
                [
                    i["account"],
                    i["peer_id"],
                    _short(i["institution_id"]),
                    i["status"],
                    i.get("cohort", "-"),
                    i["registered_block"],
                    i["admitted_block"],
                ]
                for i in report["identities"]
            ],
        ),
    ]
    for r in report["rounds"]:
        out += [
            "",
            f"Round {r['round']}: {r['status']}, opened by {_short(peers.get(r['opener'], r['opener']), 14)}"
            + (f", aggregate {r['aggregate_hash']}" if r["aggregate_hash"] else ""),
            _table(
                [
                    "committer",
                    "peer id",
                    "update hash",
                    "samples",
                    "epsilon",
                    "mode",
                    "accepted",
                    "credited",
                ],
                [
                    [
                        _short(c["account"]),
                        _short(c["peer_id"], 14),
                        _short(c["update_hash"]),
                        c["samples"],
                        f"{c['epsilon']:g}",
                        c["mode"],
                        "yes" if c["account"] in r["accepted"] else "-",
                        _credits(r["credited"].get(c["account"], 0)),
                    ]
                    for c in r["commits"]
                ],
            ),
        ]
        if r["attestations"]:
            out += [
                _table(
                    ["attester", "peer id", "aggregate hash", "accepted", "vote key", "votes"],
                    [
                        [
                            _short(a["account"]),
                            _short(peers.get(a["account"]), 14),
                            _short(a["aggregate_hash"]),
                            len(a["accepted"]),
                            _short(a["vote_key"]),
                            r["votes"][a["vote_key"]],
                        ]
                        for a in r["attestations"]
                    ],
                )
            ]
    alerts = alert_rows(report)
    if alerts:
        rows = [list(a.values()) for a in alerts]
        out += ["", f"Alerts recorded on chain ({len(alerts)})", _table(list(alerts[0]), rows)]
    out += [
        "",
        f"Credits (total supply {_credits(report['total_supply'])} MMC)",
        _table(
            ["account", "peer id", "MMC"],
            [[k, peers.get(k, "-"), _credits(v)] for k, v in report["credits"].items()],
        ),
    ]
    out += _privacy_tables(report, peers)
    out += _incentive_tables(report, peers)
    out += [
        "",
        f"Checks: {sum(c['ok'] for c in report['checks'])}/{len(report['checks'])} passed"
        + ("" if report["ok"] else " -- FAILURES:"),
    ]
    out += [f"  FAIL {c['check']} {c['detail']}".rstrip() for c in report["checks"] if not c["ok"]]
    return "\n".join(out)


def _anchor_line(chain: dict[str, Any]) -> str:
    if "anchors" not in chain:
        return "anchors: not checked"
    anchors = chain["anchors"]
    given = len(anchors.get("genesis", [])) + int(anchors.get("heads", 0))
    if anchors.get("heads"):
        return f"anchors: {given} checked, {anchors['heads']} of them past genesis (members' records or known heads)"
    return (
        f"anchors: {given} checked, none past genesis: this proves the chain consistent, not that it is the "
        "consortium's; give --expect-head with a member's attestation record"
    )


def _privacy_tables(report: dict[str, Any], peers: dict[str, str]) -> list[str]:
    """Each member's declared budget and its cumulative epsilon round by round; flagged figures."""
    privacy = report.get("privacy", {})
    out: list[str] = []
    if privacy:
        rows = []
        for account, entry in privacy.items():
            b = entry["budget"] or {}
            spend = ", ".join(f"r{s['round']} {s['epsilon']:g}" for s in entry["spend"]) or "-"
            rows.append(
                [
                    _short(account),
                    _short(peers.get(account), 14),
                    b.get("accountant", "NONE DECLARED"),
                    f"{b['epsilon']:g}" if b else "-",
                    f"{b['delta']:g}" if b else "-",
                    f"{b['noise_multiplier']:g}" if b else "-",
                    f"{b['clip_norm']:g}" if b else "-",
                    spend,
                ]
            )
        out += [
            "",
            "Privacy budgets and cumulative spend (epsilon after each round)",
            _table(
                [
                    "account",
                    "peer id",
                    "accountant",
                    "budget eps",
                    "delta",
                    "noise",
                    "clip",
                    "spend",
                ],
                rows,
            ),
        ]
    flags = report.get("flags", [])
    if flags:
        out += ["", f"Flagged figures ({len(flags)}; not failures, worth a look)"]
        out += [
            f"  round {f['round']}: {f['account']} claims {f['samples']} samples, {f['why']} ({f['median']:g})"
            for f in flags
        ]
    return out


def _incentive_tables(report: dict[str, Any], peers: dict[str, str]) -> list[str]:
    """Per IncentiveDistributor: its awards round by round, then every holder's balance by scheme."""
    incentives = report.get("incentives", {})
    if not incentives:
        return []
    out = []
    for key, d in incentives.items():
        out += [
            "",
            f"Incentive awards: {key} {d['address']}, budget per round {_credits(d.get('budget_per_round', 0))} MMC",
            _table(
                ["round", "scheme", "recipients", "minted MMC", "penalized", "burned MMC"],
                [
                    [
                        aw["round"],
                        aw["scheme"],
                        aw["recipients"],
                        _credits(aw["total"]),
                        len(aw["penalties"]),
                        _credits(sum(p["burned"] for p in aw["penalties"].values())),
                    ]
                    for aw in d["awards"]
                ],
            ),
        ]
    holders = sorted(
        {a for d in incentives.values() for a, v in d["balances"].items() if v},
        key=lambda a: int(a, 16),
    )
    out += [
        "",
        "Incentive credits by scheme (MMC)",
        _table(
            ["account", "peer id", *(scheme_label(key) for key in incentives)],
            [
                [
                    a,
                    _short(peers.get(a), 14),
                    *(_credits(d["balances"].get(a, 0)) for d in incentives.values()),
                ]
                for a in holders
            ],
        ),
    ]
    return out
