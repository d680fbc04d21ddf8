#!/usr/bin/env python3
"""Run the demo (real chain, libp2p, DP-SGD, sealing, consensus) with and without an
aggregation committee and report, per round: update bytes sent per committee member and per
follower (the ``update`` blobs each peer hands its host, counted by a mod; relays and the
followers' aggregate fetches are not updates), attestations, chain gas (every transaction of
the round: beacon, commits, attestations, finalize, settle) and wall time.

    .venv/bin/python scripts/bench_committee.py [--hospitals 6 8] [--rounds 2] \
        [--protection sealed|secagg|ckks] [--json benchmarks/results/bench_committee.json]

With ``--protection secagg`` (rule FedAvg; default output
``benchmarks/results/bench_committee_secagg.json``) it also counts the secagg side messages each
member sends (key adverts, Shamir shares, consistency statements, unmask shares): bytes and
blobs, per committee member and per follower. With ``--protection ckks`` (rule FedAvg; output
``bench_committee_ckks.json``) the side messages are ckks's (the key holder's context and
result, the aggregator's sum), under ``ckks_*`` keys, and each round also lists every member's
bytes with its place (``key_holder``, ``aggregator``, ``seat``, ``follower``).

k is the default of docs/committee.md for f = 1 (``committee_size(N, 1)``); k = 0 is every
hospital (today's behaviour). The demo's model has 31 parameters, so a blob is mostly the
sealed envelope: the figure that matters is how many blobs each member sends.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ledger import LedgerClient, load_state
from ledger.committee import committee_info, slot_of
from node.consensus.committee import committee_size, seat
from node.crypto.sealing import peek_context
from node.peer.mods import PeerMod
from node.sim.demo import DemoConfig, run_demo


class CountUpdates(PeerMod):
    """Run by every peer: bytes of the update blobs it sends, by (round, hospital), and of its
    secagg or ckks side messages (bytes and blobs); under ckks, who held which role."""

    def __init__(self) -> None:
        self.sent: dict[tuple[int, str], int] = defaultdict(int)
        self.side: dict[tuple[int, str], int] = defaultdict(int)
        self.side_blobs: dict[tuple[int, str], int] = defaultdict(int)
        self.roles: dict[int, dict[str, str]] = defaultdict(dict)  # round -> hospital -> role

    async def outgoing(self, peer, recipient, kind, blob):
        # the key holder sends the ckks context, the aggregator the encrypted sum
        if kind in ("ckks-context", "ckks-sum"):
            role = "key_holder" if kind == "ckks-context" else "aggregator"
            self.roles[peek_context(blob).round][peer.name] = role
        if kind == "update":
            self.sent[(peek_context(blob).round, peer.name)] += len(blob)
        elif kind.startswith(("secagg-", "ckks-")):
            key = (peek_context(blob).round, peer.name)
            self.side[key] += len(blob)
            self.side_blobs[key] += 1
        return blob


def _mean(counts: dict[tuple[int, str], int], round_: int, names: list[str]) -> float | None:
    return statistics.mean(counts[(round_, n)] for n in names) if names else None


def _round_gas(w3: Any, ledger: LedgerClient, rounds: int) -> list[int]:
    """Gas of every transaction from round r's opening to round r+1's (the last: to the head)."""
    opened = sorted(
        int(e["blockNumber"]) for e in ledger.round_ledger.events.RoundOpened.get_logs(from_block=0)
    )
    ends = opened[1:] + [int(w3.eth.block_number) + 1]
    gas = []
    for start, end in zip(opened[:rounds], ends[:rounds], strict=True):
        total = 0
        for number in range(start, end):
            for tx in w3.eth.get_block(number)["transactions"]:
                total += int(w3.eth.get_transaction_receipt(tx)["gasUsed"])
        gas.append(total)
    return gas


def _seated(ledger: LedgerClient, round_: int, address: str) -> bool:
    info = committee_info(ledger, round_)
    if info.size == 0 or info.key is None:
        return True
    return seat(info.key, slot_of(ledger, address).slot, info.domain) < info.size


def run(hospitals: int, k: int, rounds: int, protection: str = "sealed") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "chain.json"
        started = time.perf_counter()
        counter = CountUpdates()
        report = run_demo(
            DemoConfig(
                hospitals=hospitals,
                rounds=rounds,
                committee=k,
                protection=protection,
                rule="fedavg" if protection in ("secagg", "ckks") else DemoConfig.rule,
                chain_state=state,
                progress=False,
                state_dir=Path(tmp),
            ),
            mods=[counter],
        )
        wall = time.perf_counter() - started
        w3, deployment = load_state(state)
    ledger = LedgerClient(w3, deployment)
    addresses = {name: h["address"] for name, h in report["hospitals"].items()}
    gas = _round_gas(w3, ledger, rounds)
    side = "ckks" if protection == "ckks" else "secagg"
    rows = []
    for row, round_gas in zip(report["rounds"], gas, strict=True):
        r = row["round"]
        sent = {n: counter.sent[(r, n)] for n in addresses}
        inside = [n for n in sent if _seated(ledger, r, addresses[n])]
        outside = [n for n in sent if n not in inside]
        rows.append(
            {
                "round": r,
                "finalized": row["finalized"],
                "one_hash": row["aggregate_hash"] is not None,
                "attestations": ledger.round_info(r).attest_count,
                "committee": len(inside),
                "update_bytes_sent_committee_mean": statistics.mean(sent[n] for n in inside),
                "update_bytes_sent_follower_mean": (
                    statistics.mean(sent[n] for n in outside) if outside else None
                ),
                f"{side}_bytes_sent_committee_mean": _mean(counter.side, r, inside),
                f"{side}_bytes_sent_follower_mean": _mean(counter.side, r, outside),
                f"{side}_blobs_sent_committee_mean": _mean(counter.side_blobs, r, inside),
                f"{side}_blobs_sent_follower_mean": _mean(counter.side_blobs, r, outside),
                "gas": round_gas,
                "seconds": row["seconds"],
            }
        )
        if protection == "ckks":
            place = counter.roles[r]
            rows[-1]["by_member"] = {
                n: {
                    "place": place.get(
                        n, ("seat" if k else "member") if n in inside else "follower"
                    ),
                    "update_bytes": sent[n],
                    "ckks_bytes": counter.side[(r, n)],
                    "ckks_blobs": counter.side_blobs[(r, n)],
                }
                for n in addresses
            }
    return {
        "hospitals": hospitals,
        "k": k,
        "protection": protection,
        "wall_s": round(wall, 1),
        "rounds": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hospitals", type=int, nargs="+", default=[6, 8])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--protection", choices=("sealed", "secagg", "ckks"), default="sealed")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    suffix = "" if args.protection == "sealed" else f"_{args.protection}"
    args.json = args.json or Path(f"benchmarks/results/bench_committee{suffix}.json")
    logging.disable(logging.WARNING)
    runs = []
    for n in args.hospitals:
        for k in (0, committee_size(n, 1)):
            runs.append(run(n, k, args.rounds, args.protection))
            print(json.dumps(runs[-1]), flush=True)
    record = {
        "command": "python scripts/bench_committee.py "
        + f"--hospitals {' '.join(map(str, args.hospitals))} --rounds {args.rounds}"
        + ("" if args.protection == "sealed" else f" --protection {args.protection}"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}; busy shared 2-core host",
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
