"""Benchmark: what verifying a saved embedded chain costs (`ledger.integrity.verify_store`).

    .venv/bin/python scripts/bench_integrity.py --rounds 400

Builds an embedded chain with 4 admitted hospitals, then fills rounds (open, 4 commits,
3 attestations, finalize: 9 transactions per round) with pre-signed raw transactions. At each
checkpoint it saves the chain-state file and times reading it back: the whole `read_state`
(unpack and verify), `verify_store` alone, and the audit (`collect`) over the verified chain.
It then edits one value in the store (the last aggregate hash, head hash unchanged) and checks
that verification names it. Writes ``benchmarks/results/bench_integrity.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_audit import four_hospitals  # noqa: E402  (this script's folder is on sys.path)
from web3 import Web3  # noqa: E402

from ledger import LedgerClient, collect, connect, save_state  # noqa: E402
from ledger.chain import read_state  # noqa: E402
from ledger.embedded import export_store  # noqa: E402
from ledger.integrity import verify_store  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "bench_integrity.json"


def _fill(w3: Web3, clients: list[LedgerClient], first: int, last: int) -> None:
    chain_id = w3.eth.chain_id
    ledger = clients[0].round_ledger
    accepted = 0b1111  # the accepted-set bitmask: the four commits of each round, in commit order

    def send(client: LedgerClient, fn) -> None:  # type: ignore[no-untyped-def]
        tx = {
            "to": ledger.address,
            "data": fn._encode_transaction_data(),
            "chainId": chain_id,
            "gas": 1_000_000,
            "nonce": w3.eth.get_transaction_count(client.address),
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        }
        w3.eth.send_raw_transaction(client.account.sign_transaction(tx).raw_transaction)  # type: ignore[union-attr]

    f = ledger.functions
    for rnd in range(first, last + 1):
        send(clients[rnd % 4], f.openRound())
        for i, c in enumerate(clients):
            send(
                c,
                f.commitUpdate(rnd, (rnd * 8 + i + 1).to_bytes(32, "big"), 100 + i, 1_000 * rnd, 1),
            )
        seen = w3.eth.get_block("latest")
        for c in clients[:3]:
            send(
                c,
                f.attest(
                    rnd,
                    (rnd + 7).to_bytes(32, "big"),
                    accepted,
                    seen["number"],
                    bytes(seen["hash"]),
                ),
            )
        send(clients[3], f.finalize(rnd))


def _point(w3: Web3, deployment: object, rounds: int, tmp: Path) -> dict[str, object]:
    path = tmp / f"chain-{rounds}.json"
    save_state(w3, path, deployment)  # type: ignore[arg-type]
    store, head = export_store(w3)
    t0 = time.perf_counter()
    verification = verify_store(store, head)
    verify_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    saved = read_state(path)
    read_s = time.perf_counter() - t0
    chain = saved.web3()
    t0 = time.perf_counter()
    report = collect(chain, saved.deployment, prior_checks=saved.checks())
    collect_s = time.perf_counter() - t0
    # the attack: the last aggregate hash edited wherever the store holds it, head unchanged
    real = (rounds + 7).to_bytes(32, "big")
    edited = {k: (v.replace(real, b"\xee" * 32) if real in v else v) for k, v in store.items()}
    caught = verify_store(edited, head)
    return {
        "rounds": rounds,
        "blocks": verification.blocks,
        "store_entries": verification.entries,
        "trie_nodes": verification.trie_nodes,
        "file_bytes": path.stat().st_size,
        "verify_store_s": round(verify_s, 3),
        "read_state_s": round(read_s, 3),
        "collect_s": round(collect_s, 3),
        "audit_ok": report["ok"],
        "checks": len(report["checks"]),
        "edit_detected": not caught.ok,
        "edit_first_problem": caught.problems[0] if caught.problems else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    w3 = connect()
    deployment, clients = four_hospitals(w3)
    checkpoints = sorted(
        {max(1, args.rounds // 8), max(1, args.rounds // 4), max(1, args.rounds // 2), args.rounds}
    )
    points, done = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for target in checkpoints:
            _fill(w3, clients, done + 1, target)
            done = target
            point = _point(w3, deployment, target, Path(tmp))
            print(json.dumps(point), flush=True)
            points.append(point)
    result = {
        "command": f"python scripts/bench_integrity.py --rounds {args.rounds}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "points": points,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    ok = all(p["audit_ok"] and p["edit_detected"] for p in points)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
