#!/usr/bin/env python3
"""What commit before reveal (node/peer/reveal.py) costs an honest round: 4 hospitals, the demo's
breast-cancer campaign on the embedded chain, real libp2p on 127.0.0.1, sealed updates.

Each peer records when its hold began (its commit transaction returned and was announced) and
when it released its blob. Per
round, the latency the hold adds is the time from the last commit landing to the last peer
releasing (without the hold each blob would leave as soon as its own commit landed, and no
round can end before the last commit anyway). The same campaign is then run with the hold
skipped, for the round times side by side.

    .venv/bin/python scripts/bench_commit_reveal.py --rounds 5

Writes ``benchmarks/results/commit_reveal.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _mods():
    from node.peer.mods import PeerMod

    marks: dict[int, dict[str, list[float]]] = {}  # round -> {"commit": [...], "release": [...]}

    class Timed(PeerMod):
        """Marks when the hold starts (the commit landed and was announced) and when it ends."""

        async def hold(self, peer, round_, call_next):
            marks.setdefault(round_, {"commit": [], "release": []})["commit"].append(
                time.perf_counter()
            )
            result = await call_next(round_)
            marks[round_]["release"].append(time.perf_counter())
            return result

    class Unheld(PeerMod):
        async def hold(self, peer, round_, call_next):
            return "skipped", 0.0

    return marks, Timed, Unheld


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/commit_reveal.json")
    args = p.parse_args()
    from node.sim.demo import DemoConfig, run_demo

    marks, timed, unheld = _mods()
    runs = {}
    for label, cls in (("held", timed), ("unheld", unheld)):
        with tempfile.TemporaryDirectory() as tmp:
            report = run_demo(
                DemoConfig(rounds=args.rounds, progress=False, state_dir=Path(tmp)), mods=[cls()]
            )
        runs[label] = {
            "round_seconds": [r["seconds"] for r in report["rounds"]],
            "finalized": [r["finalized"] for r in report["rounds"]],
        }
    added = [max(m["release"]) - max(m["commit"]) for _, m in sorted(marks.items())]
    result = {
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "a shared machine under load from other work",
        },
        "hospitals": 4,
        "rounds": args.rounds,
        "added_latency_s": [round(a, 3) for a in added],
        "added_latency_median_s": round(statistics.median(added), 3),
        "added_latency_max_s": round(max(added), 3),
        "runs": runs,
        "round_seconds_median": {k: statistics.median(v["round_seconds"]) for k, v in runs.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("added_latency_s", "added_latency_median_s", "round_seconds_median")
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
