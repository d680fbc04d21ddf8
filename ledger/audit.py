"""Rebuild the consortium's history from the chain's event logs and check it against the
contracts' views, the compiled sources and the quorum and credit rules.

:func:`collect` returns a JSON-ready dict; :func:`format_report` renders it as tables. The
history (identities, rounds, commits, attestations, credits) comes from logs alone; views are
read only to cross-check it, and every disagreement is listed under ``checks``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from eth_utils import keccak
from web3 import Web3

from .chain import get_logs
from .client import LedgerClient, contracts_for
from .compile import compile_contracts
from .deploy import Deployment
from .records import micros_to_epsilon, vote_key

__all__ = ["collect", "format_report"]

_ZERO = "0x0000000000000000000000000000000000000000"


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _events(w3: Web3, deployment: Deployment) -> list[tuple[str, Any]]:
    """Every event of the three contracts, decoded, in chain order, as (contract name, event)."""
    contracts, _ = contracts_for(w3, deployment)
    artifacts = compile_contracts()
    by_topic: dict[tuple[str, bytes], tuple[str, Any]] = {}
    for name, contract in contracts.items():
        for item in artifacts[name]["abi"]:
            if item.get("type") == "event":
                types = ",".join(i["type"] for i in item["inputs"])
                topic = keccak(text=f"{item['name']}({types})")
                by_topic[(contract.address, topic)] = (name, contract.events[item["name"]]())
    decoded: list[tuple[str, Any]] = []
    for log in get_logs(w3, [c.address for c in contracts.values()], deployment.start_block):
        key = (Web3.to_checksum_address(log["address"]), bytes(log["topics"][0]))
        if key in by_topic:
            name, event = by_topic[key]
            decoded.append((name, event.process_log(log)))
    return decoded


def _masked_code(code: bytes, refs: dict[str, list[dict[str, int]]]) -> bytes:
    out = bytearray(code)
    for spans in refs.values():
        for span in spans:
            out[span["start"] : span["start"] + span["length"]] = b"\x00" * span["length"]
    return bytes(out)


def _without_metadata(code: bytes) -> bytes:
    """Runtime code without solc's CBOR metadata trailer (its length is in the last 2 bytes)."""
    if len(code) < 2:
        return code
    size = int.from_bytes(code[-2:], "big") + 2
    return code[:-size] if size <= len(code) else code


def _code_matches(w3: Web3, address: str, artifact: dict[str, Any]) -> tuple[bool, str]:
    """Whether the code at ``address`` is the compiled runtime code (immutables masked). Code
    that differs only in the metadata trailer (the sources' comments or NatSpec changed since
    deployment) executes identically and passes, with a note."""
    refs = artifact["immutableReferences"]
    onchain = _masked_code(bytes(w3.eth.get_code(Web3.to_checksum_address(address))), refs)
    compiled = _masked_code(bytes.fromhex(artifact["deployedBytecode"][2:]), refs)
    if onchain == compiled:
        return True, ""
    if onchain and _without_metadata(onchain) == _without_metadata(compiled):
        return True, " (same executable code; metadata differs: comments changed since deployment)"
    return False, " (the code differs from the compiled sources)"


def collect(w3: Web3, deployment: Deployment) -> dict[str, Any]:
    """The audit report of ``deployment`` on ``w3``: chain, identities, rounds, credits, checks."""
    artifacts = compile_contracts()
    viewer = LedgerClient(w3, deployment)  # read-only: no key
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    for name, address in sorted(deployment.addresses.items()):
        ok, detail = _code_matches(w3, address, artifacts[name])
        check(f"code of {name} matches contracts/{name}.sol", ok, f"{address}{detail}")

    identities: dict[str, dict[str, Any]] = {}
    rounds: dict[int, dict[str, Any]] = {}
    balances: dict[str, int] = defaultdict(int)
    supply = 0
    minted_in_tx: dict[bytes, dict[str, int]] = defaultdict(dict)
    finalize_tx: dict[int, bytes] = {}

    for contract, ev in _events(w3, deployment):
        a, block = ev["args"], ev["blockNumber"]
        kind = ev["event"]
        if contract == "HospitalRegistry":
            if kind == "Registered":
                identities[a["account"]] = {
                    "account": a["account"],
                    "institution_id": _hex(a["institutionId"]),
                    "peer_id": a["peerId"],
                    "seal_key": _hex(a["sealKey"]),
                    "sign_key": _hex(a["signKey"]),
                    "status": "pending",
                    "registered_block": block,
                    "admitted_block": None,
                    "revoked_block": None,
                }
            elif kind == "Admitted":
                identities[a["account"]].update(status="active", admitted_block=block)
            elif kind == "Revoked":
                identities[a["account"]].update(status="revoked", revoked_block=block)
        elif contract == "RoundLedger":
            rnd = a["round"]
            if kind == "RoundOpened":
                rounds[rnd] = {
                    "round": rnd,
                    "status": "open",
                    "opener": a["opener"],
                    "opened_block": block,
                    "commit_deadline": a["commitDeadline"],
                    "attest_deadline": a["attestDeadline"],
                    "commits": [],
                    "attestations": [],
                    "votes": {},
                    "aggregate_hash": None,
                    "finalized": False,
                    "finalizer": None,
                    "accepted": [],
                    "credited": {},
                    "closed_block": None,
                }
            elif kind == "UpdateCommitted":
                rounds[rnd]["commits"].append(
                    {
                        "account": a["account"],
                        "peer_id": identities.get(a["account"], {}).get("peer_id"),
                        "update_hash": _hex(a["updateHash"]),
                        "samples": a["samples"],
                        "epsilon": micros_to_epsilon(a["epsilonMicros"]),
                        "mode": a["mode"],
                    }
                )
            elif kind == "AggregateAttested":
                key = _hex(a["voteKey"])
                accepted = list(a["accepted"])
                rounds[rnd]["attestations"].append(
                    {
                        "account": a["account"],
                        "aggregate_hash": _hex(a["aggregateHash"]),
                        "accepted": accepted,
                        "vote_key": key,
                    }
                )
                rounds[rnd]["votes"][key] = rounds[rnd]["votes"].get(key, 0) + 1
                check(
                    f"round {rnd}: vote key of {a['account']} is keccak256(aggregate, accepted)",
                    _hex(vote_key(a["aggregateHash"], accepted)) == key,
                )
            elif kind == "RoundFinalized":
                r = rounds[rnd]
                r.update(
                    status="finalized",
                    finalized=True,
                    aggregate_hash=_hex(a["aggregateHash"]),
                    finalizer=a["finalizer"],
                    accepted=list(a["accepted"]),
                    closed_block=block,
                    winning_vote_key=_hex(a["voteKey"]),
                    winning_votes=a["votes"],
                    active_at_close=a["activeCount"],
                )
                finalize_tx[rnd] = bytes(ev["transactionHash"])
            elif kind == "RoundFailed":
                rounds[rnd].update(status="failed", closed_block=block, active_at_close=a["activeCount"])
        elif contract == "ContributionCredit" and kind == "Transfer":
            value = a["value"]
            if a["from"] == _ZERO:
                supply += value
                minted_in_tx[bytes(ev["transactionHash"])][a["to"]] = value
            else:
                balances[a["from"]] -= value
            balances[a["to"]] += value

    for rnd, tx in finalize_tx.items():
        rounds[rnd]["credited"] = minted_in_tx.get(tx, {})

    _check_against_views(viewer, identities, rounds, balances, supply, check)

    return {
        "chain": {
            "chain_id": w3.eth.chain_id,
            "rpc": deployment.rpc,
            "contracts": dict(deployment.addresses),
            "admin": deployment.admin,
            "head_block": w3.eth.block_number,
        },
        "identities": list(identities.values()),
        "rounds": [rounds[k] for k in sorted(rounds)],
        "credits": {k: v for k, v in sorted(balances.items()) if v},
        "total_supply": supply,
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


def _check_against_views(
    viewer: LedgerClient,
    identities: dict[str, dict[str, Any]],
    rounds: dict[int, dict[str, Any]],
    balances: dict[str, int],
    supply: int,
    check: Any,
) -> None:
    onchain_ids = {i.address: i for i in viewer.identities()}
    check(
        "identities in logs == registry members",
        set(onchain_ids) == set(identities),
        f"{len(identities)} identities",
    )
    for account, entry in identities.items():
        view = onchain_ids.get(account)
        same = view is not None and (view.status, view.peer_id, _hex(view.seal_key), _hex(view.sign_key)) == (
            entry["status"],
            entry["peer_id"],
            entry["seal_key"],
            entry["sign_key"],
        )
        check(f"identity {account} ({entry['peer_id']}) matches the registry", same)

    current = viewer.current_round()
    check(
        "rounds in logs == currentRound()",
        current == (max(rounds) if rounds else 0),
        f"current round {current}",
    )
    (num, den) = viewer.round_ledger.functions.quorum().call()
    per_round = viewer.round_ledger.functions.creditPerRound().call()
    for rnd, r in rounds.items():
        info = viewer.round_info(rnd)
        check(f"round {rnd}: status {r['status']} matches the ledger", info.status == r["status"])
        views = viewer.commitments(rnd)
        logged = {c["account"]: c for c in r["commits"]}
        same = set(views) == set(logged) and all(
            _hex(v.update_hash) == logged[k]["update_hash"] and v.samples == logged[k]["samples"]
            for k, v in views.items()
        )
        check(f"round {rnd}: {len(logged)} commits match the ledger", same)
        if r["finalized"]:
            check(
                f"round {rnd}: aggregate hash matches the ledger",
                info.aggregate_hash is not None and _hex(info.aggregate_hash) == r["aggregate_hash"],
            )
            # votes counted at finalization; members attesting after it are recorded too
            votes = r["votes"].get(r["winning_vote_key"], 0)
            at_close = r["winning_votes"]
            active = r["active_at_close"]
            quorate = votes >= at_close and at_close * den > active * num
            check(
                f"round {rnd}: {at_close} of {active} active members attested the winner by "
                f"finalization (> {num}/{den}); {votes} in all",
                quorate,
            )
            samples = {c["account"]: c["samples"] for c in r["commits"]}
            total = sum(samples[a] for a in r["accepted"])
            expected = {
                a: per_round * samples[a] // total for a in r["accepted"] if per_round * samples[a] // total
            }
            check(f"round {rnd}: credits proportional to samples", expected == r["credited"])
    for account, balance in balances.items():
        if balance:
            check(f"credit balance of {account} matches the token", viewer.credit_balance(account) == balance)
    check("total supply matches the token", viewer.credit_supply() == supply, str(supply))


# --------------------------------------------------------------------------- rendering


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
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
        f"medmesh audit: chain {chain['chain_id']} at {chain['rpc']}, head block {chain['head_block']}",
        "contracts: " + ", ".join(f"{k} {v}" for k, v in chain["contracts"].items()),
        f"admin: {chain['admin']}",
        "",
        f"Identities ({len(report['identities'])})",
        _table(
            ["account", "peer id", "institution id", "status", "registered", "admitted"],
            [
                [
                    i["account"],
                    i["peer_id"],
                    _short(i["institution_id"]),
                    i["status"],
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
                ["committer", "peer id", "update hash", "samples", "epsilon", "mode", "accepted", "credited"],
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
    out += [
        "",
        f"Credits (total supply {_credits(report['total_supply'])} MMC)",
        _table(
            ["account", "peer id", "MMC"],
            [[k, peers.get(k, "-"), _credits(v)] for k, v in report["credits"].items()],
        ),
        "",
        f"Checks: {sum(c['ok'] for c in report['checks'])}/{len(report['checks'])} passed"
        + ("" if report["ok"] else " -- FAILURES:"),
    ]
    out += [f"  FAIL {c['check']} {c['detail']}".rstrip() for c in report["checks"] if not c["ok"]]
    return "\n".join(out)
