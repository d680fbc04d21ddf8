"""Benchmark: `medmesh simulate` at N = 16 and 64 members (256 with --sizes), 100k parameters.

Each size runs the real round pipeline (HospitalPeer, sealed mode, fedavg) for N members over
the in-memory transport on the embedded py-evm chain (node.sim.consortium), ``--rounds`` rounds.
Per size the JSON keeps every round's row (bytes per member, chain transactions and gas, wall
time, finalized with one hash) and a summary of the last round (round 1 carries one-off
transactions such as the privacy budget declarations).

``--committee`` lists the committee sizes to run at each N: ``all`` (K = N: every member sends
its update to every other, so bytes per member grow with N), ``auto`` (the default k for N and
f = 1, ``node.consensus.committee.committee_size``, the node's default ``[aggregation] f``) or a
number. With a committee the rows split the bytes between committee members and followers.
``--seeds`` runs one campaign per seed. ``--engine ray`` runs the campaigns as Ray tasks
(``node.sim.engine``: a local Ray by default, ``--ray-address`` for a cluster).
``--transport libp2p`` gives every member a real libp2p host on 127.0.0.1 (Noise, Yamux,
GossipSub, direct streams), all in this one process, instead of the in-memory transport.

    .venv/bin/python scripts/bench_simulate.py                      # N = 16, 64; K = N; 2 rounds
    .venv/bin/python scripts/bench_simulate.py --sizes 16 --committee all auto \
        --out benchmarks/results/simulate_committee.json
    .venv/bin/python scripts/bench_simulate.py --sizes 8 --rounds 1 --out /tmp/x.json
    .venv/bin/python scripts/bench_simulate.py --sizes 16 --committee auto --seeds 0 1 \
        --engine ray --out /tmp/seeds.json
    .venv/bin/python scripts/bench_simulate.py --sizes 64 --committee auto --rounds 3 \
        --transport libp2p --out benchmarks/results/simulate_libp2p_64.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from node.consensus.committee import committee_size  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402
from node.sim.consortium import SimConfig, simulate  # noqa: E402
from node.sim.engine import ENGINES, run_all  # noqa: E402


def _summary(report: dict) -> dict:
    last = report["rounds"][-1]
    roles = last["bytes_by_role"]
    return {
        "n": report["config"]["peers"],
        "k": report["config"]["committee"],
        "seed": report["config"]["seed"],
        "round": last["round"],
        "round_s": last["seconds"],
        "bytes_sent_per_member": last["bytes_sent_per_member"]["mean"],
        "bytes_received_per_member": last["bytes_received_per_member"]["mean"],
        "bytes_sent_per_follower": roles["follower"] and roles["follower"]["sent"],
        "bytes_received_per_follower": roles["follower"] and roles["follower"]["received"],
        "bytes_sent_per_committee_member": roles["committee"] and roles["committee"]["sent"],
        "bytes_received_per_committee_member": roles["committee"]
        and roles["committee"]["received"],
        "attestations": last["attestations"],
        "chain_transactions": last["transactions"],
        "gas": last["gas"],
        "gas_per_member": round(last["gas"] / report["config"]["peers"]),
        "all_finalized_one_hash": report["all_finalized_one_hash"],
        "transport": report["config"]["transport"],
        "load_average_before": report["load_average_before"],
        "load_average_after": os.getloadavg(),
    }


def _write(out: Path, runs: list[dict], summaries: list[dict]) -> None:
    atomic_write_json(
        out,
        {
            "benchmark": "simulate",
            "command": "python scripts/bench_simulate.py " + " ".join(sys.argv[1:]),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared and busy (other work running)",
            "load_average": os.getloadavg(),
            "committee": "k per run in config.committee (K = N: every member aggregates)",
            "summary": summaries,
            "runs": runs,
        },
    )


def _k(n: int, choice: str) -> int:
    if choice == "all":
        return n
    if choice == "auto":
        return committee_size(n, 1)
    return int(choice)


def _campaign(cfg: SimConfig) -> dict:
    """One campaign's report, timed, with the load average around it (a Ray task too)."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    started, load_before = time.perf_counter(), os.getloadavg()
    report = simulate(cfg)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    report["load_average_before"] = load_before
    for row in report["rounds"]:
        row.pop("members")  # per-member pairs: thousands of numbers at N = 256
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 64])
    ap.add_argument(
        "--committee",
        nargs="+",
        default=["all"],
        help="committee sizes to run at each N: all (K = N), auto (committee_size(N, f=1)) or K",
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--params", type=int, default=100_000)
    ap.add_argument("--transport", choices=("memory", "libp2p"), default="memory")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one campaign per seed")
    ap.add_argument("--engine", choices=ENGINES, default="local", help="node.sim.engine")
    ap.add_argument("--ray-address", help="a Ray cluster (--engine ray); default: a local Ray")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/simulate.json")
    args = ap.parse_args()
    runs: list[dict] = []
    summaries: list[dict] = []

    def done(_i: int, report: dict) -> None:
        runs.append(report)
        summaries.append(_summary(report))
        s = summaries[-1]
        print(
            f"N={s['n']:>4} k={s['k']:>4} seed={s['seed']}: round {s['round']} {s['round_s']} s, "
            f"{s['bytes_sent_per_member'] / 1e6:.2f} MB sent per member, "
            f"{s['chain_transactions']} txs, {s['gas']:,} gas, one hash: {s['all_finalized_one_hash']} "
            f"(whole run {report['wall_s']} s)",
            flush=True,
        )
        _write(args.out, runs, summaries)  # after every campaign: a long run keeps what it measured

    jobs = [
        (
            SimConfig(
                peers=n,
                committee=_k(n, c),
                rounds=args.rounds,
                params=args.params,
                seed=seed,
                transport=args.transport,
                progress=False,
            ),
        )
        for n in args.sizes
        for c in args.committee
        for seed in args.seeds
    ]
    run_all(_campaign, jobs, engine=args.engine, address=args.ray_address, on_result=done)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
