"""Benchmark: read N rounds of history from anvil with the audit (`ledger.collect`).

    .venv/bin/python scripts/bench_audit.py --rounds 1000

Starts anvil (node_modules), deploys, admits 4 hospitals, then fills N rounds (open, 4 commits,
3 attestations, finalize: 9 transactions and 14 events per round) by sending pre-signed raw
transactions without waiting for receipts (anvil mines each one on arrival). Then it times
`collect` three ways: a cold read (no index cache), a second read in the same process with the
warm in-memory index, and a read in a fresh index from the on-disk cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3 import Web3  # noqa: E402

from ledger import (
    Anvil,
    Deployment,
    LedgerClient,
    collect,
    connect,
    deploy,
    dev_account,
    institution_id,
)  # noqa: E402
from ledger.index import EventIndex  # noqa: E402
from ledger.records import PrivacyBudget  # noqa: E402


def four_hospitals(w3: Web3) -> tuple[Deployment, list[LedgerClient]]:
    """A deployment with windows no benchmark outlasts and four admitted hospitals (accounts
    1-4), each with a cohort of 1,000 and a budget its cumulative epsilon never reaches."""
    deployment = deploy(w3, dev_account(w3, 0), commit_window=10**8, attest_window=10**8)
    admin = LedgerClient(w3, deployment, dev_account(w3, 0))
    clients = [LedgerClient(w3, deployment, dev_account(w3, i)) for i in range(1, 5)]
    for i, c in enumerate(clients):
        c.register(
            institution_id(f"Hospital {i}"),
            f"12D3KooWbench{i}",
            bytes([i + 1]) * 32,
            bytes([i + 9]) * 32,
            1000,
        )
        admin.admit(c.address)
        c.declare_privacy_budget(
            PrivacyBudget(100.0, 1e-5, "rdp", 1.0, 1.0)
        )  # cumulative epsilon grows per round
    return deployment, clients


def _fill(w3: Web3, clients: list[LedgerClient], rounds: int) -> None:
    chain_id = w3.eth.chain_id
    fee = 100 * 10**9  # well above anvil's base fee, which only falls here
    nonces = {c.address: w3.eth.get_transaction_count(c.address) for c in clients}
    ledger = clients[0].round_ledger
    accepted = 0b1111  # the accepted-set bitmask: the four commits of each round, in commit order

    def send(client: LedgerClient, fn) -> None:  # type: ignore[no-untyped-def]
        tx = {
            "to": ledger.address,
            "data": fn._encode_transaction_data(),
            "gas": 400_000,
            "maxFeePerGas": fee,
            "maxPriorityFeePerGas": 10**9,
            "nonce": nonces[client.address],
            "chainId": chain_id,
            "value": 0,
            "type": 2,
        }
        nonces[client.address] += 1
        raw = client.account.sign_transaction(tx).raw_transaction  # type: ignore[union-attr]
        answer = w3.provider.make_request("eth_sendRawTransaction", ["0x" + raw.hex()])  # type: ignore[arg-type]
        if "error" in answer:
            raise RuntimeError(answer["error"])

    start = clients[0].current_round()
    f = ledger.functions
    for rnd in range(start + 1, start + rounds + 1):
        send(clients[rnd % 4], f.openRound())
        for i, c in enumerate(clients):
            send(
                c,
                f.commitUpdate(rnd, (rnd * 8 + i + 1).to_bytes(32, "big"), 100 + i, 1_000 * rnd, 1),
            )
        seen = w3.eth.get_block("latest")  # mined before these attests: blockhash knows it
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
        if rnd % 10 == 0:
            _drain(w3)  # a long mempool slows anvil down: let it mine what it has
    _drain(w3)


def _drain(w3: Web3) -> None:
    while int(w3.provider.make_request("txpool_status", [])["result"]["pending"], 16):  # type: ignore[arg-type]
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    with Anvil(extra_args=("--order", "fifo")) as rpc:
        w3 = connect(rpc)
        deployment, clients = four_hospitals(w3)
        t0 = time.perf_counter()
        _fill(w3, clients, args.rounds)
        fill_s = time.perf_counter() - t0
        assert clients[0].current_round() == args.rounds, clients[0].current_round()
        head = w3.eth.block_number
        print(flush=True)
        print(f"filled {args.rounds} rounds ({head} blocks) in {fill_s:.1f} s")

        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            index = EventIndex(w3, deployment, cache)
            report = collect(w3, deployment, index=index)
            cold = time.perf_counter() - t0
            events = len(index.events)
            t0 = time.perf_counter()
            collect(w3, deployment, index=index)
            warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            collect(w3, deployment, cache_dir=cache)
            disk = time.perf_counter() - t0
        finalized = sum(r["finalized"] for r in report["rounds"])
        print(
            f"collect over {len(report['rounds'])} rounds ({finalized} finalized, {events} events, "
            f"{len(report['checks'])} checks, ok={report['ok']}):"
        )
        print(f"  cold (read and index every event):   {cold:.2f} s")
        print(f"  warm (in-memory index, views only):  {warm:.2f} s")
        print(f"  from the on-disk index cache:        {disk:.2f} s")
        return 0 if report["ok"] and finalized == args.rounds else 1


if __name__ == "__main__":
    raise SystemExit(main())
