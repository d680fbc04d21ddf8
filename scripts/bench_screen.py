"""Benchmark: one committee seat's free-rider screen against the number of updates N.

``node.consensus.freeriding.screen_free_riders`` compares every pair of a round's updates
through a Gram matrix summed by a fixed tree (``node.consensus.rules.reductions.gram``: the same
bits on every machine), so a seat pays O(N² P) for N updates of P values. In ``medmesh
simulate`` the k seats run it one after the other in one process (docs/simulation.md).
Random float32 updates of 99,901 values (``mlp@300``, the simulator's 100k model) and a
previous step, seeded; one call per N, timed.

    .venv/bin/python scripts/bench_screen.py --out benchmarks/results/screen_gram.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from node.consensus.freeriding import screen_free_riders  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 128, 224])
    ap.add_argument("--params", type=int, default=99_901)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/screen_gram.json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n in args.sizes:
        updates = [rng.standard_normal(args.params).astype(np.float32) for _ in range(n)]
        previous = rng.standard_normal(args.params).astype(np.float32)
        load = os.getloadavg()
        started = time.perf_counter()
        flags = screen_free_riders(updates, previous)
        seconds = time.perf_counter() - started
        rows.append({"n": n, "seconds": round(seconds, 3), "flagged": len(flags), "load": load})
        print(f"N={n:>4}: {seconds:.2f} s (load average {load[0]:.1f})", flush=True)
    atomic_write_json(
        args.out,
        {
            "benchmark": "screen_free_riders, one seat",
            "command": "python scripts/bench_screen.py " + " ".join(sys.argv[1:]),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared (other work running)",
            "parameters": args.params,
            "runs": rows,
        },
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
