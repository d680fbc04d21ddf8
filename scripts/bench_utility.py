#!/usr/bin/env python3
"""The utility comparison the medical FL literature reports (issue 9, part 1).

For each task, over ``--seeds`` seeds (split seed = DP noise seed = initialization seed):

- centralized: the pooled rows, no DP (:func:`node.learning.evaluation.centralized_baseline`);
- centralized + DP: the pooled rows with the federation's DP-SGD schedule at epsilon 1;
- local only, without and with DP: each hospital alone on the same schedule (scored on the
  shared held-out set, averaged over hospitals);
- medmesh FedAvg; + DP (epsilon 1 for the campaign); + DP + the robust rule (coordinate median,
  the demo's default); + DP + each protection mode in :data:`PROTECTION_MODES` (sealed with top-10%
  compression, secagg with the shared random 10%, ckks), running that mode's real arithmetic
  (:mod:`node.sim.simprotect`: sealing, fixed-point masking and unmasking, CKKS encrypt/add/decrypt).

The federated rows run the peers' arithmetic without network or chain
(:func:`node.sim.simulation.run_campaign`); the network's cost is measured by
``scripts/bench_demo_spread.py`` and ``scripts/bench_flower.py``. Each cell is the mean and a 95%
Student-t interval over the seeds of AUC, accuracy and F1 on the held-out set.

Tasks: ``breast-cancer`` (4 hospitals, the demo's non-IID split and schedule: 5 rounds of one
full-batch step at learning rate 2.0, clipping norm 1, PRV accountant) and ``imaging`` (the
SYNTHETIC lesions, 4 hospitals of 240/180/120/90 images of 32 x 32, ``imaging-features``: a linear
head on fixed scattering + blob features, its schedule :data:`node.learning.imagefeatures.DP_SCHEDULE`
picked on a validation split, RDP accountant). The imaging task adds one reference row: the
end-to-end ``cnn`` with plain FedAvg, no DP (20 rounds x 2 epochs x 8 steps at learning rate 0.1),
the best model without DP, so the DP rows' cost can be read against it too.

    .venv/bin/python scripts/bench_utility.py            # both tasks, 5 seeds
    .venv/bin/python scripts/bench_utility.py --quick    # breast cancer 3 seeds, imaging 2 seeds x 3 rounds

Writes ``benchmarks/results/bench_utility.json`` (``bench_utility_quick.json``) with the command
and the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import t as student_t

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # this checkout's node/, not an installed one

from node.consensus.compression import CompressionConfig
from node.data.datasets import synthetic_imaging_split
from node.data.samples import FeatureStats, LabelledData, Standardizer, breast_cancer_split
from node.learning.evaluation import centralized_baseline, evaluate
from node.learning.imagefeatures import DP_SCHEDULE
from node.learning.models import model_input
from node.learning.privacy import DPConfig
from node.sim.simprotect import make_protect
from node.sim.simulation import Protect, run_campaign

EPSILON = 1.0

# Protection modes: name -> a factory of a fresh hook per campaign (it keeps error-feedback
# residuals across rounds) that runs the mode's real arithmetic (node.sim.simprotect) and returns the
# aggregate it delivers. Each one adds a row "medmesh + DP + NAME" to every task.
TOP10 = CompressionConfig(topk=0.1)
PROTECTION_MODES: dict[str, Callable[[], Protect]] = {
    "sealed, top-10%": lambda: make_protect("sealed", TOP10),
    "secagg, shared 10%": lambda: make_protect("secagg", TOP10),
    "ckks": lambda: make_protect("ckks"),
}


@dataclass(frozen=True)
class Task:
    name: str
    model: str
    sites: list[LabelledData]
    test: LabelledData
    rounds: int
    epochs: int
    steps: int
    lr: float
    accountant: str
    reference: Task | None = None  # a model without DP on the same split, reported as one more row

    def dp(self, enabled: bool) -> DPConfig:
        return DPConfig(
            enabled=enabled,
            target_epsilon=EPSILON,
            delta=1e-5,
            max_grad_norm=1.0,
            rounds=self.rounds,
            local_epochs=self.epochs,
            steps_per_epoch=self.steps,
            accountant=self.accountant,
        )

    def pooled(self) -> LabelledData:
        return type(self.sites[0]).concat(self.sites)


def breast_cancer_task(seed: int, rounds: int) -> Task:
    split = breast_cancer_split(4, seed=seed)
    stats = [FeatureStats.of(d) for d in split.hospitals.values()]
    z = Standardizer.from_stats(sum(stats[1:], stats[0]))
    return Task(
        "breast-cancer",
        "logreg",
        [z.apply(d) for d in split.hospitals.values()],
        z.apply(split.test),
        rounds,
        1,
        1,
        2.0,
        "prv",
    )


CNN_REFERENCE = "medmesh FedAvg, cnn end-to-end (no DP)"


def imaging_task(seed: int, rounds: int) -> Task:
    split = synthetic_imaging_split(4, size=32, seed=seed)
    name = "imaging-features"
    cnn = Task(
        "synthetic-imaging",
        "cnn",
        list(split.hospitals.values()),
        split.test,
        rounds,
        2,
        8,
        0.1,
        "rdp",
    )
    return Task(
        "synthetic-imaging",
        name,
        [model_input(name, d) for d in split.hospitals.values()],
        model_input(name, split.test),
        rounds,
        DP_SCHEDULE["local_epochs"],
        DP_SCHEDULE["steps_per_epoch"],
        DP_SCHEDULE["learning_rate"],
        "rdp",
        reference=cnn,
    )


def scores(model: torch.nn.Module, test: LabelledData) -> dict[str, float]:
    s = evaluate(model, test)
    return {"auc": s.auc, "accuracy": s.accuracy, "f1": s.f1}


def one_seed(task: Task, seed: int) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    pooled = task.pooled()
    if task.model in ("logreg", "imaging-features"):  # a linear model: exact-ish full-batch optimum
        rows["centralized"] = centralized_baseline(
            task.model, pooled, task.test, seed=seed
        ).__dict__
    else:  # the same SGD schedule as one big site, without DP
        rows["centralized"] = scores(
            run_campaign(
                task.model, [pooled], task.dp(False), learning_rate=task.lr, seed=seed
            ).model,
            task.test,
        )
    rows["centralized + DP"] = scores(
        run_campaign(task.model, [pooled], task.dp(True), learning_rate=task.lr, seed=seed).model,
        task.test,
    )
    for dp_on, label in ((False, "local only"), (True, "local only + DP")):
        per_site = [
            scores(
                run_campaign(
                    task.model, [s], task.dp(dp_on), learning_rate=task.lr, seed=seed
                ).model,
                task.test,
            )
            for s in task.sites
        ]
        rows[label] = {k: float(np.nanmean([p[k] for p in per_site])) for k in per_site[0]}
    federated = {
        "medmesh FedAvg": (False, "fedavg", None),
        "medmesh + DP": (True, "fedavg", None),
        "medmesh + DP + median": (True, "median", None),
        **{f"medmesh + DP + {name}": (True, "fedavg", fn) for name, fn in PROTECTION_MODES.items()},
    }
    for label, (dp_on, rule, protect) in federated.items():
        run = run_campaign(
            task.model,
            task.sites,
            task.dp(dp_on),
            learning_rate=task.lr,
            rule=rule,
            seed=seed,
            protect=protect() if protect is not None else None,
        )
        rows[label] = scores(run.model, task.test)
    if task.reference is not None:
        ref = task.reference
        rows[CNN_REFERENCE] = scores(
            run_campaign(
                ref.model, ref.sites, ref.dp(False), learning_rate=ref.lr, seed=seed
            ).model,
            ref.test,
        )
    return {k: {m: float(v[m]) for m in ("auc", "accuracy", "f1")} for k, v in rows.items()}


def interval(values: list[float]) -> dict[str, float]:
    """Mean and the half-width of a 95% Student-t interval."""
    vals = [v for v in values if not math.isnan(v)]
    mean = statistics.fmean(vals)
    half = (
        float(student_t.ppf(0.975, len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals)))
        if len(vals) > 1
        else float("nan")
    )
    return {"mean": round(mean, 4), "ci95": round(half, 4), "n": len(vals)}


def run_task(make, seeds: int, rounds: int) -> dict:
    per_seed = []
    t = time.perf_counter()
    for seed in range(seeds):
        task = make(seed, rounds)
        per_seed.append(one_seed(task, seed))
        print(f"  {task.name}: seed {seed} done ({time.perf_counter() - t:.0f} s)", flush=True)
    rows = {
        label: {m: interval([s[label][m] for s in per_seed]) for m in ("auc", "accuracy", "f1")}
        for label in per_seed[0]
    }
    return {
        "task": task.name,
        "model": task.model,
        "site_sizes": [len(s) for s in task.sites],
        "held_out": len(task.test),
        "rounds": rounds,
        "local_epochs": task.epochs,
        "steps_per_epoch": task.steps,
        "learning_rate": task.lr,
        "accountant": task.accountant,
        "reference": None
        if task.reference is None
        else {
            "row": CNN_REFERENCE,
            "model": task.reference.model,
            "rounds": task.reference.rounds,
            "local_epochs": task.reference.epochs,
            "steps_per_epoch": task.reference.steps,
            "learning_rate": task.reference.lr,
        },
        "seeds": seeds,
        "rows": rows,
        "per_seed": per_seed,
        "seconds": round(time.perf_counter() - t, 1),
    }


def print_task(res: dict) -> None:
    print(f"\n{res['task']} ({res['model']}), {res['seeds']} seeds, mean ± 95% interval")
    print(f"{'setting':<36}{'AUC':>18}{'accuracy':>18}{'F1':>18}")
    for label, row in res["rows"].items():
        print(
            f"{label:<36}"
            + "".join(
                f"{row[m]['mean']:>10.3f} ± {row[m]['ci95']:.3f}" for m in ("auc", "accuracy", "f1")
            )
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="breast cancer 3 seeds, imaging 2 seeds x 3 rounds"
    )
    p.add_argument("--task", choices=("all", "breast-cancer", "imaging"), default="all")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore", message="Optimal order")
    torch.set_num_threads(1)
    started = time.perf_counter()
    results = []
    if args.task in ("all", "breast-cancer"):
        results.append(
            run_task(breast_cancer_task, min(args.seeds, 3) if args.quick else args.seeds, 5)
        )
    if args.task in ("all", "imaging"):
        results.append(
            run_task(
                imaging_task,
                2 if args.quick else args.seeds,
                3 if args.quick else DP_SCHEDULE["rounds"],
            )
        )
    out = {
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "epsilon": EPSILON,
        "delta": 1e-5,
        "protection_modes": sorted(PROTECTION_MODES),
        "tasks": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    for res in results:
        print_task(res)
    name = "bench_utility" + ("_quick" if args.quick else "") + ".json"
    path = args.out or Path(__file__).resolve().parents[1] / "benchmarks" / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\ntotal {out['seconds']} s; wrote {path}")


if __name__ == "__main__":
    main()
