#!/usr/bin/env python3
"""DP vs no-DP on the SYNTHETIC imaging task with fixed image features and a linear model.

Tramer & Boneh (2021): under DP-SGD a linear model on data-independent features loses far less
than an end-to-end CNN. Each site's images go through a fixed feature map of
:mod:`node.learning.imagefeatures` (``blob``: difference-of-Gaussians statistics; ``scatter``: a 2-layer
scattering transform, J = 2, L = 8, pooled over space; ``scatter-rot``: the same averaged over
orientations; ``scatter+blob``, ``scatter-rot+blob``: side by side), whitened with the statistics
of a PUBLIC synthetic reference set (no site statistic is released), and a FedAvg campaign of
``logreg`` runs with and without DP-SGD (epsilon 1, delta 1e-5, clip 1, RDP) at each schedule
(De et al. 2022: few, large-batch steps and a large learning rate; 12 schedules).

Selection is by VALIDATION, never by the test set: every split seed also draws a validation set
(the same sites' scanner styles, another seed); for each feature set the schedule with the best
mean validation accuracy is picked (separately with and without DP), and the feature set whose
picked DP schedule has the best validation accuracy wins. Reported: validation and test accuracy
and AUC, mean over ``--seeds`` data splits (and ``--draws`` DP noise draws per split), and with
``--cnn-reference`` the shipped CNN without DP on the same splits (its schedule fixed, as in
scripts/bench_privacy_attacks.py).

    .venv/bin/python scripts/sweep_dp_imaging.py [--sites 4] [--site-size 200] [--seeds 3] \
        [--draws 1] [--features blob scatter-rot+blob ...] [--cnn-reference] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # this checkout's node/, not an installed one

from node.data.datasets.synthetic import synthetic_imaging_split
from node.learning.evaluation import evaluate
from node.learning.imagefeatures import FEATURE_SETS, feature_dim, to_features
from node.learning.privacy import DPConfig
from node.sim.simulation import run_campaign

EPSILON, DELTA = 1.0, 1e-5
VALIDATION_SEED = (
    5_000  # validation split seed = VALIDATION_SEED + split seed (test sets use the split seed)
)
SCHEDULES = [
    dict(rounds=r, epochs=e, steps=s, lr=lr, clip=1.0)
    for r, e, s in ((5, 1, 1), (10, 1, 1), (20, 1, 1), (10, 2, 2))
    for lr in (1.0, 4.0, 16.0)
]


def splits(seed: int, args):
    split = synthetic_imaging_split(
        args.sites, sizes=[args.site_size] * args.sites, n_test=args.test, size=args.size, seed=seed
    )
    val = synthetic_imaging_split(
        args.sites,
        sizes=[2] * args.sites,
        n_test=args.test,
        size=args.size,
        seed=VALIDATION_SEED + seed,
    ).test
    return split, val


def run_schedule(sites, val, test, sch: dict, dp_on: bool, seed: int) -> dict:
    dp = DPConfig(
        enabled=dp_on,
        target_epsilon=EPSILON,
        delta=DELTA,
        max_grad_norm=sch["clip"],
        rounds=sch["rounds"],
        local_epochs=sch["epochs"],
        steps_per_epoch=sch["steps"],
        accountant="rdp",
    )
    run = run_campaign("logreg", sites, dp.calibrated(), learning_rate=sch["lr"], seed=seed)
    v, t = evaluate(run.model, val), evaluate(run.model, test)
    return {
        "val_accuracy": v.accuracy,
        "val_auc": v.auc,
        "accuracy": t.accuracy,
        "auc": t.auc,
        "epsilon_spent": run.epsilon_spent,
    }


def cnn_reference(split, val, seed: int) -> dict:
    """The shipped CNN on the raw images of the same split, without DP, at the schedule of
    scripts/bench_privacy_attacks.py (20 rounds x 2 epochs x 8 steps, learning rate 0.1)."""
    dp = DPConfig(enabled=False, rounds=20, local_epochs=2, steps_per_epoch=8)
    run = run_campaign("cnn", list(split.hospitals.values()), dp, learning_rate=0.1, seed=seed)
    v, t = evaluate(run.model, val), evaluate(run.model, split.test)
    return {"val_accuracy": v.accuracy, "val_auc": v.auc, "accuracy": t.accuracy, "auc": t.auc}


def mean_of(cells: list[dict]) -> dict:
    return {k: round(float(np.mean([c[k] for c in cells])), 4) for k in cells[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--site-size", type=int, default=200)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument(
        "--test",
        type=int,
        default=400,
        help="held-out images (test set, and as many for validation)",
    )
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--draws",
        type=int,
        default=1,
        help="DP campaigns per split (fresh noise each; the mean is reported): less selection noise",
    )
    ap.add_argument("--features", nargs="+", default=list(FEATURE_SETS), choices=FEATURE_SETS)
    ap.add_argument("--quick", action="store_true", help="two schedules, one seed, 2 sites of 50")
    ap.add_argument(
        "--cnn-reference",
        action="store_true",
        help="also train the shipped CNN without DP on the same splits (slow: ~40 s per seed)",
    )
    ap.add_argument("--json", help="write the table as JSON here")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    schedules = SCHEDULES
    if args.quick:
        schedules, args.seeds, args.sites, args.site_size, args.test = SCHEDULES[:2], 1, 2, 50, 100
    started = time.perf_counter()
    data = [splits(seed, args) for seed in range(args.seeds)]
    result: dict = {"features": {}, "cnn_no_dp": None}
    for kind in args.features:
        t = time.perf_counter()
        mapped = [
            (
                [to_features(d, kind) for d in split.hospitals.values()],
                to_features(val, kind),
                to_features(split.test, kind),
            )
            for split, val in data
        ]
        rows = []
        for sch in schedules:
            row = dict(sch)
            for dp_on in (False, True):
                cells = [
                    run_schedule(sites, val, test, sch, dp_on, seed)
                    for seed, (sites, val, test) in enumerate(mapped)
                    for _ in range(args.draws if dp_on else 1)
                ]
                row["dp" if dp_on else "nodp"] = mean_of(cells)
            rows.append(row)
            print(
                f"{kind:<13} r {sch['rounds']:>2} e {sch['epochs']} s {sch['steps']} lr {sch['lr']:<4} | no DP val "
                f"{row['nodp']['val_accuracy']:.3f} test {row['nodp']['accuracy']:.3f} | DP eps "
                f"{row['dp']['epsilon_spent']:.2f} val {row['dp']['val_accuracy']:.3f} "
                f"test {row['dp']['accuracy']:.3f}",
                flush=True,
            )
        pick = {k: max(rows, key=lambda r: r[k]["val_accuracy"]) for k in ("nodp", "dp")}
        best = {
            k: {
                "schedule": {s: pick[k][s] for s in ("rounds", "epochs", "steps", "lr", "clip")},
                **pick[k][k],
            }
            for k in ("nodp", "dp")
        }
        best["dp_loss_points"] = round(100 * (best["nodp"]["accuracy"] - best["dp"]["accuracy"]), 2)
        result["features"][kind] = {
            "dim": feature_dim(kind),
            "rows": rows,
            "picked_by_validation": best,
            "seconds": round(time.perf_counter() - t, 1),
        }
        print(
            f"{kind}: picked by validation: no DP test {best['nodp']['accuracy']:.3f} / AUC "
            f"{best['nodp']['auc']:.3f}, "
            f"DP test {best['dp']['accuracy']:.3f} / AUC {best['dp']['auc']:.3f} "
            f"(loss {best['dp_loss_points']:+.1f} pts)",
            flush=True,
        )
    winner = max(
        result["features"],
        key=lambda k: result["features"][k]["picked_by_validation"]["dp"]["val_accuracy"],
    )
    result["winner_by_validation"] = winner
    if args.cnn_reference:
        cnn = mean_of([cnn_reference(split, val, seed) for seed, (split, val) in enumerate(data)])
        result["cnn_no_dp"] = cnn
        w = result["features"][winner]["picked_by_validation"]
        w["dp_loss_vs_cnn_points"] = round(100 * (cnn["accuracy"] - w["dp"]["accuracy"]), 2)
        print(
            f"shipped CNN, no DP (20 x 2 x 8, lr 0.1): val {cnn['val_accuracy']:.3f} test {cnn['accuracy']:.3f} "
            f"AUC {cnn['auc']:.3f}",
            flush=True,
        )
    print(f"winner by validation: {winner}", flush=True)
    result = {
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "task": "SYNTHETIC lesions",
        "sites": args.sites,
        "site_size": args.site_size,
        "image_size": args.size,
        "test": args.test,
        "validation": args.test,
        "seeds": args.seeds,
        "dp_draws": args.draws,
        "epsilon": EPSILON,
        "delta": DELTA,
        **result,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
