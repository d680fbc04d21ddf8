"""Benchmark: round time and bytes against link bandwidth and RTT, hospitals in network namespaces.

Each campaign builds the network lab of tests/netlab (one namespace per hospital and one for
anvil, joined through a bridge; ``tbf`` on every access link both ways, the RTT from a user-space
delay relay that every peer-to-peer byte crosses, no loss), runs ``medmesh node run`` per
hospital with the 1M-parameter ``mlp-wide`` model (sealed updates, the default robust rule)
until the chain's round R has ended, and reads the nodes' ``round_done`` lines
(scripts/bench_nodes.py ``summarize``: wall time first join to last done, payload bytes sent by
all nodes, stage means over rounds 2..R).

The grid: bandwidth 1000 / 100 / 10 Mbit/s at 50 ms RTT, and RTT 1 / 50 / 200 ms at 100 Mbit/s.
Needs root (namespaces), like the lab's tests. The relay is Python: at 1000 Mbit/s it, not the
link, can be the bottleneck on a small machine (the JSON records the machine).

    .venv/bin/python scripts/bench_netlab.py                   # 4 hospitals, 3 rounds, the grid
    .venv/bin/python scripts/bench_netlab.py --nodes 4 8       # also 8 hospitals
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]

from bench_nodes import campaign_overrides, summarize, wait_campaign  # noqa: E402
from netlab.consortium import running_lab  # noqa: E402
from netlab.lab import Lab, LinkSpec  # noqa: E402

from node.learning.models import build_model  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402

GRID = [(1000, 50), (100, 50), (10, 50), (100, 1), (100, 200)]  # (Mbit/s, RTT ms)


def run_one(n: int, mbit: float, rtt_ms: float, rounds: int, model: str, timeout: float) -> dict:
    started = time.perf_counter()
    with Lab(n, rtt_ms=rtt_ms, link=LinkSpec(mbit=mbit)) as lab:
        root = Path(tempfile.mkdtemp(prefix=f"bench-netlab-{n}-{mbit:g}-{rtt_ms:g}-"))
        # round_timeout 30 s: the floor of the derived waits (node/peer/deadlines.py), as a hospital would set it
        with running_lab(
            lab, root, 300, campaign_overrides(model, rounds, round_timeout=30.0)
        ) as net:
            timed_out = wait_campaign(net, timeout)
            events = {name: p.events for name, p in net.procs.items()}
        relayed = lab.relay.bytes_forwarded if lab.relay else None
    out = summarize(events, n, rounds)
    return {
        "mbit": mbit,
        "rtt_ms": rtt_ms,
        **out,
        "relay_bytes": relayed,
        "timed_out": timed_out,
        "campaign_wall_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[4])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="mlp-wide")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per campaign")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_netlab.json"
    )
    args = parser.parse_args(argv)
    params = int(sum(t.numel() for t in build_model(args.model, 30).state_dict().values()))
    runs = []
    for n in args.nodes:
        for mbit, rtt in GRID:
            print(
                f"{n} hospitals, {mbit} Mbit/s, {rtt} ms RTT, {args.model} ({params:,} parameters) ...",
                flush=True,
            )
            run = run_one(n, mbit, rtt, args.rounds, args.model, args.timeout)
            print(
                {
                    k: run["summary"].get(k)
                    for k in (
                        "round_wall_s_mean",
                        "bytes_per_round_mean",
                        "all_finalized_and_agreed",
                    )
                },
                flush=True,
            )
            runs.append(run)
            _write(args, params, runs)
    return 0 if all(r["summary"]["all_finalized_and_agreed"] for r in runs) else 1


def _write(args: argparse.Namespace, params: int, runs: list[dict]) -> None:
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_at_write": os.getloadavg(),
        },
        "model": args.model,
        "parameters": params,
        "rounds": args.rounds,
        "notes": "links: tbf both ways per hospital, no loss; RTT from the user-space relay; wall time per round: "
        "first round_joined to last round_done; bytes: payload all nodes sent (blobs + control); "
        "means over rounds 2..R",
        "runs": runs,
    }
    atomic_write_json(args.out, report)
    print(f"written {args.out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
