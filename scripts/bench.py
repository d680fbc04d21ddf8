#!/usr/bin/env python3
"""`make bench`: the whole evaluation suite (issue 9) in one command.

Runs the four parts one after another, each as its own process (a failure or a missing Flower
stays in its part), each writing its own ``benchmarks/results/*.json`` with the command and the
machine:

1. utility   ``scripts/bench_utility.py``          centralized / local / federated / + DP / + rules / + modes
2. cost      ``scripts/bench_cost.py``             time per round by stage, bytes per peer, vs a bare FedAvg loop
3. flower    ``scripts/bench_flower.py``           medmesh beside Flower (skipped if its venv cannot be built)
4. privacy   ``scripts/bench_privacy_attacks.py``  gradient inversion and membership inference

Settings (chosen to fit a quiet 2-core machine: the full suite in under 30 minutes, ``--quick``
in under 5): the full run is each part's full default except Flower at 2 repeats and the
gradient-inversion attack at 4 images x 600 iterations per setting; ``--quick`` is each
part's ``--quick``. The suite's own record, ``benchmarks/results/bench_suite[_quick].json``,
holds every part's command, exit status, wall time and summary.

    .venv/bin/python scripts/bench.py            # make bench
    .venv/bin/python scripts/bench.py --quick    # make bench QUICK=1
    .venv/bin/python scripts/bench.py --only cost flower
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FLOWER_SKIPPED = 3  # scripts/bench_flower.py's exit status when Flower cannot be installed


@dataclass(frozen=True)
class Part:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    result: str  # file stem under benchmarks/results/ ("_quick" is added for --quick)

    def result_path(self, quick: bool) -> Path:
        return RESULTS / f"{self.result}{'_quick' if quick else ''}.json"

    def argv(self, quick: bool) -> list[str]:
        return [
            sys.executable,
            str(ROOT / "scripts" / self.script),
            *(self.quick if quick else self.full),
            "--out",
            str(self.result_path(quick)),
        ]


# Flower and privacy run reduced settings here, so their records get their own names and the
# parts' own full runs (bench_flower.json, bench_privacy_attacks.json) stay as they are.
PARTS = (
    Part("utility", "bench_utility.py", (), ("--quick",), "bench_utility"),
    Part("cost", "bench_cost.py", (), ("--quick",), "bench_cost"),
    Part("flower", "bench_flower.py", ("--repeats", "2"), ("--quick",), "bench_flower_suite"),
    Part(
        "privacy",
        "bench_privacy_attacks.py",
        ("--images", "4", "--iterations", "600"),
        ("--quick",),
        "bench_privacy_attacks_suite",
    ),
)


def summarize(name: str, data: dict) -> dict:
    """The few figures the README tables lead with."""
    if name == "utility":
        return {
            t["task"]: {label: row["auc"]["mean"] for label, row in t["rows"].items()}
            for t in data["tasks"]
        }
    if name == "cost":
        return {
            f"{r['model']}/{r['protection']}": {
                "seconds_per_round": r["seconds_per_round"],
                "x_bare": r["ratio"]["time_per_round"],
                "split": r["split_per_peer_mean"],
                "bytes_per_peer": r["bytes_per_peer"],
                "bytes_x_floor": r["ratio"]["bytes_per_peer"],
            }
            for r in data["runs"]
        }
    if name == "flower":
        return data["summary"]
    return {
        "targets": data["targets"],
        "membership": [
            {k: r.get(k, "cnn") for k in ("model", "dp", "mia_auc", "test_accuracy")}
            for r in data["membership"]["runs"]
        ],
    }


def run_part(part: Part, quick: bool) -> dict:
    argv = part.argv(quick)
    command = " ".join(
        shlex.quote(
            os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) or a == sys.executable else a
        )
        for a in argv
    )
    print(f"\n== {part.name}: {command}", flush=True)
    started = time.perf_counter()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "PYTHONPATH": str(ROOT),
    }
    rc = subprocess.run(argv, cwd=ROOT, env=env).returncode
    seconds = round(time.perf_counter() - started, 1)
    entry = {"command": command, "exit_status": rc, "seconds": seconds, "result": None}
    if rc == FLOWER_SKIPPED and part.name == "flower":
        entry["status"] = "skipped (Flower's venv could not be built; see the line above)"
    elif rc != 0:
        entry["status"] = "failed"
    else:
        entry["status"] = "ok"
        path = part.result_path(quick)
        entry["result"] = str(path.relative_to(ROOT))
        entry["summary"] = summarize(part.name, json.loads(path.read_text()))
    print(f"== {part.name}: {entry['status']} in {seconds} s", flush=True)
    return entry


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="every part's --quick (under 5 minutes)")
    p.add_argument("--only", nargs="+", choices=[x.name for x in PARTS], default=None)
    args = p.parse_args()
    started = time.perf_counter()
    parts = {
        x.name: run_part(x, args.quick) for x in PARTS if args.only is None or x.name in args.only
    }
    out = {
        "command": " ".join(
            shlex.quote(a) for a in [os.path.relpath(sys.executable, ROOT), *sys.argv]
        ),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "parts": parts,
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = RESULTS / f"bench_suite{'_quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"\nsuite: {out['seconds']} s; "
        + ", ".join(f"{k} {v['status']} ({v['seconds']} s)" for k, v in parts.items())
    )
    print(f"wrote {path}")
    if any(v["status"] == "failed" for v in parts.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
