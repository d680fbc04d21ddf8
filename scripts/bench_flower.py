#!/usr/bin/env python3
"""medmesh side by side with Flower (issue 9, part 3): FedAvg and Krum on the same split and model.

- medmesh: the full demo campaign (:func:`node.sim.demo.run_demo`: embedded chain, libp2p hosts,
  DP-SGD, sealed and signed updates, consensus on the aggregate) with ``--rule fedavg`` and
  ``--rule krum`` (f = 1).
- Flower: ``scripts/flower_side.py`` inside ``build/flower-venv`` (created on first use with
  ``flwr==1.41.0``, which needs newer dependencies than this project pins, so it never
  touches .venv; a ``.pth`` file lets it import this checkout and .venv's torch and opacus):
  a gRPC server with Flower's ``FedAvg`` / ``Krum(num_malicious_clients=1)`` and one client per
  hospital, each training with medmesh's own ``train_local`` and DP schedule.

Same breast-cancer split (``--hospitals`` 5: Krum needs n >= 2f + 3), same federated z-scorer,
logreg, the demo's schedule (one full-batch DP-SGD step per round at learning rate 2.0,
epsilon 1 for the campaign, PRV accountant), ``--rounds`` 5. Both run all hospitals in one
process on 127.0.0.1. DP noise is fresh in every run, so accuracy differences of a point or two
are one draw; ``--repeats`` runs each pair several times.

    .venv/bin/python scripts/bench_flower.py            # 3 repeats
    .venv/bin/python scripts/bench_flower.py --quick    # 1 repeat

Writes ``benchmarks/results/bench_flower.json`` with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.sim.demo import DemoConfig, run_demo  # noqa: E402

VENV = ROOT / "build" / "flower-venv"
PIN = "flwr==1.41.0"
SKIPPED = 3  # exit status when Flower cannot be installed: `make bench` goes on without this part


class FlowerUnavailable(RuntimeError):
    """build/flower-venv cannot be built (no package registry, no network)."""


def flower_python() -> Path:
    """build/flower-venv with flwr, and a .pth that adds this checkout and .venv's packages."""
    py = VENV / "bin" / "python"
    if not (VENV / "flwr-installed").exists():
        try:
            venv.create(VENV, with_pip=True)
            pip = subprocess.run(
                [str(py), "-m", "pip", "install", "--quiet", PIN], capture_output=True, text=True
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise FlowerUnavailable(f"cannot create {VENV}: {exc}") from None
        if pip.returncode != 0:
            last = (pip.stderr.strip().splitlines() or ["no output"])[-1]
            raise FlowerUnavailable(
                f"pip could not install {PIN} into {VENV} (package registry unreachable?): {last}"
            )
        (VENV / "flwr-installed").write_text(PIN + "\n")
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # after flower-venv's own packages: this checkout, then the project's .venv (torch, opacus...)
    Path(site, "medmesh.pth").write_text(f"{ROOT}\n{sysconfig.get_paths()['purelib']}\n")
    return py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def medmesh_run(rule: str, hospitals: int, rounds: int, seed: int) -> dict:
    t = time.perf_counter()
    report = run_demo(
        DemoConfig(hospitals=hospitals, rounds=rounds, rule=rule, seed=seed, progress=False)
    )
    total = time.perf_counter() - t
    rows = report["rounds"]
    return {
        "system": "medmesh",
        "rule": rule,
        "hospitals": hospitals,
        "rounds": [{"round": r["round"], "accuracy": r["accuracy"], "auc": r["auc"]} for r in rows],
        "seconds_per_round": [r["seconds"] for r in rows],
        "seconds_total": round(total, 2),
        "final_accuracy": rows[-1]["accuracy"],
        "final_auc": rows[-1]["auc"],
        "all_finalized": all(r["finalized"] for r in rows),
    }


def flower_run(py: Path, rule: str, hospitals: int, rounds: int, seed: int) -> dict:
    out = subprocess.run(
        [
            str(py),
            str(ROOT / "scripts" / "flower_side.py"),
            "--rule",
            rule,
            "--hospitals",
            str(hospitals),
            "--rounds",
            str(rounds),
            "--seed",
            str(seed),
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:  # gRPC's threads sometimes abort the process at exit, after the result line is out
        run = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(
            f"flower_side.py failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}"
        ) from None
    run["exit_status"] = out.returncode
    return run


def summary(runs: list[dict]) -> dict:
    out = {}
    for system in ("medmesh", "flower"):
        for rule in ("fedavg", "krum"):
            rs = [r for r in runs if r["system"] == system and r["rule"] == rule]
            per_round = [s for r in rs for s in r["seconds_per_round"]]
            out[f"{system}/{rule}"] = {
                "runs": len(rs),
                "final_accuracy_mean": round(statistics.mean(r["final_accuracy"] for r in rs), 4),
                "final_auc_mean": round(statistics.mean(r["final_auc"] for r in rs), 4),
                "seconds_per_round_median": round(statistics.median(per_round), 3),
            }
    for rule in ("fedavg", "krum"):
        m, f = out[f"medmesh/{rule}"], out[f"flower/{rule}"]
        out[f"ratio/{rule}"] = {
            "time_per_round_medmesh_over_flower": round(
                m["seconds_per_round_median"] / f["seconds_per_round_median"], 2
            ),
            "accuracy_medmesh_minus_flower": round(
                m["final_accuracy_mean"] - f["final_accuracy_mean"], 4
            ),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one repeat")
    p.add_argument("--hospitals", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_flower.json"
    )
    args = p.parse_args()
    repeats = 1 if args.quick else args.repeats
    logging.disable(logging.WARNING)
    try:
        py = flower_python()
    except FlowerUnavailable as exc:
        print(f"flower: skipped, {exc}", file=sys.stderr)
        raise SystemExit(SKIPPED) from None
    runs = []
    for seed in range(repeats):
        for rule in ("fedavg", "krum"):
            for system in ("medmesh", "flower"):
                run = (
                    medmesh_run(rule, args.hospitals, args.rounds, seed)
                    if system == "medmesh"
                    else flower_run(py, rule, args.hospitals, args.rounds, seed)
                )
                run["seed"] = seed
                runs.append(run)
                print(
                    f"  seed {seed} {system:<8} {rule:<6} accuracy {run['final_accuracy']:.3f} AUC "
                    f"{run['final_auc']:.3f}, {statistics.median(run['seconds_per_round']):.3f} s/round",
                    flush=True,
                )
    result = {
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "settings": {
            "hospitals": args.hospitals,
            "rounds": args.rounds,
            "repeats": repeats,
            "flower": PIN,
            "model": "logreg",
            "data": "breast cancer, breast_cancer_split(hospitals, seed)",
            "schedule": "demo: 1 full-batch DP-SGD step per round, lr 2.0, epsilon 1, PRV",
        },
        "runs": runs,
        "summary": summary(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result["summary"].items():
        print(f"{key:<16} {value}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
