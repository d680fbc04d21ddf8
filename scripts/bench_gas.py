#!/usr/bin/env python3
"""Gas of one RoundLedger round at 4, 16, 64 and 224 members (issue 14, section 4).

For each size a fresh deployment gets that many members (fresh keys, funded on anvil with
``anvil_setBalance``, admitted by the admin as genesis seats); one round is opened, every member
commits and attests the same (aggregate, everyone) pair, then the round is finalized and
settled. Reported: ``gasUsed`` of openRound, commitUpdate (first, later), attest (first: stores
the pair; later: median and max), finalize and settle (the O(|accepted|) minting, apart from
finalize). Targets: attest <= 100k and finalize <= 300k gas at 64 members.

    .venv/bin/python scripts/bench_gas.py                      # anvil, 4 16 64 224
    .venv/bin/python scripts/bench_gas.py --chain embedded --sizes 4 16
    .venv/bin/python scripts/bench_gas.py --json benchmarks/results/ledger_gas.json --md docs/ledger-gas.md
    .venv/bin/python scripts/bench_gas.py --from-json benchmarks/results/ledger_gas.json --md docs/ledger-gas.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account  # noqa: E402
from eth_utils import keccak  # noqa: E402
from web3 import Web3  # noqa: E402

from ledger import Anvil, LedgerClient, connect, deploy, dev_account, institution_id  # noqa: E402
from ledger.compile import solc_version  # noqa: E402
from ledger.records import PrivacyBudget  # noqa: E402

#: Targets of issue 14 at 64 members.
TARGETS = {"members": 64, "attest_max": 100_000, "finalize": 300_000}
#: What the issue measured on anvil before this change (later attest), for the table.
BEFORE = {4: 84_894, 16: 129_465, 64: 307_640, 224: 901_867}


def _fund(w3: Web3, address: str, chain: str) -> None:
    if chain == "anvil":
        response = w3.provider.make_request("anvil_setBalance", [address, hex(10**20)])  # type: ignore[arg-type]
        if "error" in response:
            raise SystemExit(f"anvil_setBalance failed: {response['error']}")
    else:
        funder = dev_account(w3, 9)
        tx = {
            "to": address,
            "value": 10**19,
            "gas": 21_000,
            "gasPrice": w3.eth.gas_price,
            "nonce": w3.eth.get_transaction_count(funder.address),
            "chainId": w3.eth.chain_id,
        }
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction)
        )


def enrolled(w3: Web3, chain: str, members: int, tag: str = "gas") -> list[LedgerClient]:
    """Clients of ``members`` fresh, funded accounts admitted (as genesis seats) to a fresh
    deployment; ``tag`` keeps their keys apart from another script's."""
    admin = dev_account(w3, 0)
    deployment = deploy(w3, admin, genesis_seats=members)
    boss = LedgerClient(w3, deployment, admin)
    clients = []
    for i in range(members):
        account = Account.from_key(keccak(text=f"medmesh-{tag}-{members}-{i}"))
        _fund(w3, account.address, chain)
        h = LedgerClient(w3, deployment, account)
        h.register(
            institution_id(f"Hospital {members}-{i}"),
            f"12D3KooW{tag}{members}x{i}",
            keccak(text=f"seal-{i}"),
            keccak(text=f"sign-{i}"),
            1000,
        )
        boss.admit(h.address)
        clients.append(h)
    return clients


def measure(w3: Web3, chain: str, members: int) -> dict[str, Any]:
    clients = enrolled(w3, chain, members)
    for h in clients:
        h.declare_privacy_budget(PrivacyBudget(10.0, 1e-5, "rdp", 1.0, 1.0))
    first = clients[0]
    rnd = first.open_round()
    for i, h in enumerate(clients):
        h.commit_update(rnd, keccak(text=f"update-{i}"), 100 + i, 0.5, 1)
    everyone = [h.address for h in clients]
    aggregate = keccak(text="aggregate")
    index_of = {a: c.index for a, c in first.commitments(rnd).items()}
    mask = sum(1 << index_of[a] for a in everyone)
    for h in clients:
        h.attest_mask(rnd, aggregate, mask)
    first.finalize(rnd, settle=False)
    first.settle(rnd)
    commits = [h.gas_used["commit_update"][0] for h in clients]
    attests = [h.gas_used["attest"][0] for h in clients]
    later = attests[1:] or attests
    return {
        "members": members,
        "quorum_votes": members * 2 // 3 + 1,
        "openRound": first.gas_used["open_round"][0],
        "commitUpdate_first": commits[0],
        "commitUpdate_later_median": int(statistics.median(commits[1:] or commits)),
        "attest_first": attests[0],
        "attest_later_median": int(statistics.median(later)),
        "attest_later_max": max(later),
        "finalize": first.gas_used["finalize"][0],
        "settle": first.gas_used["settle"][0],
        "attest_later_before": BEFORE.get(members),
    }


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    head = (
        "| members | openRound | commitUpdate (first / later) | attest (first / later median / later max) "
        "| attest later, before | finalize | settle (mints) |"
    )
    lines = [
        "# RoundLedger gas by membership",
        "",
        "Generated by `scripts/bench_gas.py` from `benchmarks/results/ledger_gas.json`; do not edit by hand.",
        "",
        f"Command: `{report['command']}`",
        f"Chain: {report['chain']}, solc {report['solc']}, one round in which every member commits and attests "
        "the same (aggregate, everyone) pair, then finalize and settle. Figures are `gasUsed` of each transaction.",
        "",
        head,
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        before = f"{r['attest_later_before']:,}" if r.get("attest_later_before") else "-"
        lines.append(
            f"| {r['members']} | {r['openRound']:,} | {r['commitUpdate_first']:,} / {r['commitUpdate_later_median']:,} "
            f"| {r['attest_first']:,} / {r['attest_later_median']:,} / {r['attest_later_max']:,} | {before} "
            f"| {r['finalize']:,} | {r['settle']:,} |"
        )
    t = report["targets"]
    small, large = rows[0], rows[-1]
    if large["members"] > small["members"]:
        slope = (large["settle"] - small["settle"]) / (large["members"] - small["members"])
        lines += [
            "",
            f"`settle` costs about {slope:,.0f} gas per accepted contributor here (every balance is minted "
            "for the first time, a zero-to-nonzero store); later rounds pay less per contributor.",
        ]
    lines += [
        "",
        f"Targets (issue 14) at {t['members']} members: attest <= {t['attest_max']:,} and finalize <= "
        f"{t['finalize']:,} gas: **{'met' if report['meets_targets'] else 'NOT met'}**.",
        "",
        '"attest later, before" is what the issue measured on anvil with the earlier contract, which stored',
        "the accepted set as an address list checked member by member (about 3.7k gas more per member).",
        "An attestation now carries the accepted set as a bitmask over the round's commit indexes, so it",
        "costs the same at any membership. `finalize` is O(1); the O(|accepted|) work of minting each",
        "contributor's credits is in `settle` (one transaction per round, any caller; `openRound` runs it",
        "for the previous round if nobody did). See docs/ledger-consensus.md.",
        "",
    ]
    return "\n".join(lines + _beacon_section())


def _beacon_section() -> list[str]:
    """The RoundBeacon's gas, from ``scripts/bench_beacon_gas.py``'s JSON (if it was run)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "beacon_gas.json"
    if not path.exists():
        return []
    report = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        "## RoundBeacon gas (ckks role draws)",
        "",
        f"Command: `{report['command']}` (from `benchmarks/results/beacon_gas.json`)",
        f"Chain: {report['chain']}, solc {report['solc']}: every member commits a secret for round 1, the round "
        "opens, all but the last member reveal, the reveal deadline passes and the last one's withholding is "
        "recorded. Only ckks consortia run the beacon: per member and round, one commit and one reveal.",
        "",
        "| members | commit (first / later) | reveal (first / later) | recordWithheld |",
        "|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['members']} | {r['commit_first']:,} / {r['commit_later_median']:,} | "
            f"{r['reveal_first']:,} / {r['reveal_later_median']:,} | {r['recordWithheld']:,} |"
        )
    lines += [
        "",
        "Each is O(1) in the membership: the reveals mix by XOR into one slot, with no loop.",
        "",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chain", choices=("anvil", "embedded"), default="anvil")
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64, 224])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    ap.add_argument("--from-json", type=Path, help="only render --md from a report written earlier")
    args = ap.parse_args()
    if args.from_json:
        if not args.md:
            raise SystemExit("--from-json needs --md")
        args.md.write_text(
            markdown(json.loads(args.from_json.read_text(encoding="utf-8"))), encoding="utf-8"
        )
        return
    rows, node = [], None
    started = time.perf_counter()
    try:
        if args.chain == "anvil":
            node = Anvil()
            rpc = node.start()
        for members in args.sizes:
            w3 = connect(rpc) if node else connect()
            rows.append(measure(w3, args.chain, members))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if node:
            node.stop()
    at = [r for r in rows if r["members"] == TARGETS["members"]]
    report = {
        "command": "python scripts/bench_gas.py " + " ".join(sys.argv[1:]),
        "chain": "anvil (node_modules/.bin/anvil)"
        if args.chain == "anvil"
        else "embedded (eth-tester / py-evm)",
        "solc": solc_version(),
        "seconds": round(time.perf_counter() - started, 1),
        "targets": TARGETS,
        "meets_targets": bool(at)
        and all(
            r["attest_first"] <= TARGETS["attest_max"]
            and r["attest_later_max"] <= TARGETS["attest_max"]
            and r["finalize"] <= TARGETS["finalize"]
            for r in at
        ),
        "rows": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(markdown(report), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}))


if __name__ == "__main__":
    main()
