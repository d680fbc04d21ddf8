#!/usr/bin/env python3
"""DP vs no-DP on the SYNTHETIC imaging task with fixed blob features and a linear model.

Tramer & Boneh (2021): under DP-SGD a linear model on data-independent features loses far
less than an end-to-end CNN. Each site's images go through :func:`node.blobfeatures.blob_features`
(no learned part, no privacy spent), are whitened (ZCA) with the mean/covariance of a PUBLIC reference
set (synthetic images from a different seed, so no site statistic is released), and a FedAvg
campaign of ``logreg`` runs with and without DP-SGD at the same schedule (De et al. 2022: few,
large-batch steps and a large learning rate). Accuracy and AUC on the held-out set, mean over
``--seeds`` data splits.

    .venv/bin/python scripts/sweep_dp_imaging.py [--site-size 200] [--seeds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
import warnings

import numpy as np
import torch

from node.blobfeatures import DEFAULT_SCALES, SURROUND, blob_features
from node.data import TabularData
from node.datasets.synthetic import synthetic_imaging_split
from node.evaluation import evaluate
from node.privacy import DPConfig
from node.simulation import run_campaign

EPSILON, DELTA = 1.0, 1e-5


def public_whitener(size: int, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Mean and ZCA whitening matrix of the features of a PUBLIC synthetic reference set: the
    blob features are strongly correlated, and whitening makes the linear model's loss well
    conditioned, so few DP-SGD steps go far (no private statistic is used)."""
    ref = synthetic_imaging_split(4, sizes=[n // 4] * 4, n_test=4, size=size, seed=10_007)
    x = np.concatenate([blob_features(d).x for d in ref.hospitals.values()]).astype(np.float64)
    mu = x.mean(0)
    vals, vecs = np.linalg.eigh(np.cov(x - mu, rowvar=False))
    return mu, (vecs / np.sqrt(vals + 1e-6 * vals.max())) @ vecs.T


def scaled(d, mu: np.ndarray, w: np.ndarray) -> TabularData:
    f = blob_features(d)
    return TabularData(((f.x - mu) @ w).astype(np.float32), f.y, patients=f.patients, source=f.source)


def cell(seed: int, args, schedule: dict, mu, sd) -> dict:
    split = synthetic_imaging_split(args.sites, sizes=[args.site_size] * args.sites, n_test=args.test,
                                    size=args.size, seed=seed)
    sites = [scaled(d, mu, sd) for d in split.hospitals.values()]
    test = scaled(split.test, mu, sd)
    out = {}
    for dp_on in (False, True):
        dp = DPConfig(enabled=dp_on, target_epsilon=EPSILON, delta=DELTA, max_grad_norm=schedule["clip"],
                      rounds=schedule["rounds"], local_epochs=schedule["epochs"], steps_per_epoch=schedule["steps"])
        run = run_campaign("logreg", sites, dp.calibrated(), learning_rate=schedule["lr"], seed=seed)
        s = evaluate(run.model, test)
        out["dp" if dp_on else "nodp"] = {"accuracy": float(s.accuracy), "auc": float(s.auc),
                                          "epsilon_spent": float(run.epsilon_spent)}
    return out


def cnn_reference(seed: int, args) -> dict:
    """The shipped CNN on the raw images of the same split, without DP, at the schedule of
    scripts/bench_privacy_attacks.py (20 rounds x 2 epochs x 8 steps, learning rate 0.1)."""
    split = synthetic_imaging_split(args.sites, sizes=[args.site_size] * args.sites, n_test=args.test,
                                    size=args.size, seed=seed)
    dp = DPConfig(enabled=False, rounds=20, local_epochs=2, steps_per_epoch=8)
    run = run_campaign("cnn", list(split.hospitals.values()), dp, learning_rate=0.1, seed=seed)
    s = evaluate(run.model, split.test)
    return {"accuracy": float(s.accuracy), "auc": float(s.auc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--site-size", type=int, default=200)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one schedule, one seed")
    ap.add_argument("--cnn-reference", action="store_true",
                    help="also train the shipped CNN without DP on the same splits (slow: ~40 s per seed)")
    ap.add_argument("--json", help="write the table as JSON here")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    schedules = [dict(rounds=r, epochs=e, steps=s, lr=lr, clip=1.0)
                 for r, e, s in ((5, 1, 1), (10, 1, 1), (20, 1, 1), (10, 2, 2), (20, 2, 8)) for lr in (1.0, 4.0, 16.0)]
    if args.quick:
        schedules, args.seeds = schedules[:1], 1
    mu, sd = public_whitener(args.size)
    started = time.perf_counter()
    rows = []
    for sch in schedules:
        cells = [cell(seed, args, sch, mu, sd) for seed in range(args.seeds)]
        row = dict(sch)
        for k in ("nodp", "dp"):
            for m in ("accuracy", "auc"):
                row[f"{k}_{m}"] = round(float(np.mean([c[k][m] for c in cells])), 4)
        row["dp_epsilon_spent"] = round(max(c["dp"]["epsilon_spent"] for c in cells), 4)
        row["accuracy_loss_points"] = round(100 * (row["nodp_accuracy"] - row["dp_accuracy"]), 2)
        rows.append(row)
        print(f"rounds {sch['rounds']:>2} epochs {sch['epochs']} steps {sch['steps']} lr {sch['lr']:<4} | "
              f"no DP acc {row['nodp_accuracy']:.3f} AUC {row['nodp_auc']:.3f} | DP eps {row['dp_epsilon_spent']:.2f} "
              f"acc {row['dp_accuracy']:.3f} AUC {row['dp_auc']:.3f} | loss {row['accuracy_loss_points']:+.1f} pts",
              flush=True)
    cnn = None
    if args.cnn_reference:
        refs = [cnn_reference(seed, args) for seed in range(args.seeds)]
        cnn = {m: round(float(np.mean([r[m] for r in refs])), 4) for m in ("accuracy", "auc")}
        print(f"shipped CNN, no DP (20 x 2 x 8, lr 0.1): acc {cnn['accuracy']:.3f} AUC {cnn['auc']:.3f}", flush=True)
    result = {"command": " ".join([sys.executable.rsplit("/", 1)[-1]] + sys.argv), "machine": platform.platform(),
              "task": "SYNTHETIC lesions", "features": {"scales": list(DEFAULT_SCALES), "surround": SURROUND},
              "sites": args.sites, "site_size": args.site_size, "image_size": args.size, "test": args.test,
              "seeds": args.seeds, "epsilon": EPSILON, "delta": DELTA, "rows": rows, "cnn_no_dp": cnn,
              "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
