#!/usr/bin/env python3
"""Benchmark DP-SGD: its cost against plain SGD, and final AUC against epsilon.

1. Time ratio: ``train_local`` with DP-SGD (Opacus, per-sample clipping) over the same call
   without DP, on the same model, data and step count, in CPU seconds of one torch thread
   (robust to other load on the machine), median of ``--repeats`` runs after one warm-up: the
   MLP on one breast-cancer hospital (155 rows, 100 steps), the CNN on one SYNTHETIC imaging
   site (240 images of 64x64, 4 steps).
2. Final held-out AUC of a federated campaign (the peers' arithmetic without network or
   chain: local DP-SGD, then an aggregation rule) for epsilon 0.5, 1, 2, 4, 8 and no DP:
   - breast cancer: logreg, the demo's schedule (4 hospitals, 5 rounds of one full-batch
     step, learning rate 2.0, coordinate median), mean ± std over ``--seeds`` split seeds;
   - SYNTHETIC imaging (generated lesions, not patient data): the CNN on 32x32 images
     (``--img-size``), 4 sites of 240/180/120/90 images (one a legacy scanner), FedAvg,
     ``--img-rounds`` rounds of ``--img-epochs`` local epochs of ``--img-steps``
     Poisson-sampled steps, mean ± std over ``--img-runs`` runs (fresh noise each).

    .venv/bin/python scripts/bench_dp.py            # ~5 min on 2 cores
    .venv/bin/python scripts/bench_dp.py --quick    # a smoke run, ~1 min

Writes ``benchmarks/results/bench_dp.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from node.consensus.rules import aggregate
from node.data.datasets import synthetic_imaging_split
from node.data.samples import FeatureStats, LabelledData, Standardizer, breast_cancer_split
from node.learning.evaluation import evaluate
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, train_local

EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0, None)


def time_ratio(
    name: str, data: LabelledData, steps: int, epochs: int, lr: float, repeats: int
) -> dict:
    model = build_model(name, input_shape=data.input_shape)
    start = flat_parameters(model)
    times = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU time of one thread: robust to other load on a shared machine
    for label, enabled in (("sgd", False), ("dp_sgd", True)):
        dp = DPConfig(
            enabled=enabled,
            noise_multiplier=1.0,
            target_epsilon=1e6,
            steps_per_epoch=steps,
            local_epochs=epochs,
            rounds=repeats + 1,
            accountant="rdp",
        )
        runs = []
        for i in range(repeats + 1):
            t = time.process_time()
            train_local(
                model,
                start,
                data,
                PrivacyLedger(dp, warn_if_off=False),
                TrainConfig(lr, seed=i, device="cpu"),
            )
            runs.append(time.process_time() - t)
        times[label] = statistics.median(runs[1:])  # the first run warms up
    torch.set_num_threads(threads)
    return {
        "model": name,
        "samples": len(data),
        "input_shape": list(data.input_shape),
        "steps": steps * epochs,
        "sgd_s": round(times["sgd"], 3),
        "dp_sgd_s": round(times["dp_sgd"], 3),
        "ratio": round(times["dp_sgd"] / times["sgd"], 2),
    }


def campaign(
    model_name: str,
    sites: list[LabelledData],
    test: LabelledData,
    epsilon: float | None,
    *,
    rounds: int,
    epochs: int,
    steps: int,
    lr: float,
    rule: str,
    max_grad_norm: float,
    seed: int,
) -> dict:
    dp = DPConfig(
        enabled=epsilon is not None,
        target_epsilon=epsilon or 1.0,
        rounds=rounds,
        local_epochs=epochs,
        steps_per_epoch=steps,
        max_grad_norm=max_grad_norm,
        accountant="rdp",
    )
    ledgers = [PrivacyLedger(dp, warn_if_off=False) for _ in sites]
    model = build_model(model_name, input_shape=sites[0].input_shape)
    params = flat_parameters(model)
    for r in range(rounds):
        deltas = [
            train_local(
                model, params, d, led, TrainConfig(lr, seed=seed * 1000 + r, device="cpu")
            ).delta
            for d, led in zip(sites, ledgers, strict=False)
        ]
        params = (params + aggregate(rule, np.stack(deltas), [len(d) for d in sites])).astype(
            np.float32
        )
    load_flat_parameters(model, params)
    return {
        "auc": evaluate(model, test).auc,
        "epsilon": max(led.spent() for led in ledgers),
        "noise_multiplier": ledgers[0].config.noise_multiplier if epsilon is not None else 0.0,
    }


def breast_cancer(seeds: int) -> list[dict]:
    rows = []
    for eps in EPSILONS:
        aucs, spent = [], []
        for seed in range(seeds):
            split = breast_cancer_split(seed=seed)
            stats = [FeatureStats.of(d) for d in split.hospitals.values()]
            z = Standardizer.from_stats(sum(stats[1:], stats[0]))
            sites = [z.apply(d) for d in split.hospitals.values()]
            out = campaign(
                "logreg",
                sites,
                z.apply(split.test),
                eps,
                rounds=5,
                epochs=1,
                steps=1,
                lr=2.0,
                rule="median",
                max_grad_norm=1.0,
                seed=seed,
            )
            aucs.append(out["auc"])
            spent.append(out["epsilon"])
        rows.append(
            {
                "target_epsilon": eps,
                "auc_mean": round(float(np.mean(aucs)), 4),
                "auc_std": round(float(np.std(aucs)), 4),
                "epsilon_spent_max": round(max(spent), 3),
            }
        )
        print(
            f"  breast cancer  eps={eps}: AUC {rows[-1]['auc_mean']:.4f} ± {rows[-1]['auc_std']:.4f}",
            flush=True,
        )
    return rows


def imaging(args) -> list[dict]:
    split = synthetic_imaging_split(
        4, sizes=args.img_sizes, n_test=args.img_test, size=args.img_size, seed=0
    )
    sites = list(split.hospitals.values())
    rows = []
    for eps in EPSILONS:
        t = time.perf_counter()
        outs = [
            campaign(
                "cnn",
                sites,
                split.test,
                eps,
                rounds=args.img_rounds,
                epochs=args.img_epochs,
                steps=args.img_steps,
                lr=args.img_lr if eps is not None else args.img_lr_nodp,
                rule="fedavg",
                max_grad_norm=args.img_clip,
                seed=run,
            )
            for run in range(args.img_runs)
        ]
        aucs = [o["auc"] for o in outs]
        rows.append(
            {
                "target_epsilon": eps,
                "auc": round(float(np.mean(aucs)), 4),
                "auc_std": round(float(np.std(aucs)), 4),
                "runs": len(outs),
                "epsilon_spent_max": round(max(o["epsilon"] for o in outs), 3),
                "noise_multiplier": round(outs[0]["noise_multiplier"], 3),
                "seconds": round(time.perf_counter() - t, 1),
            }
        )
        print(
            f"  synthetic CNN  eps={eps}: AUC {rows[-1]['auc']:.4f} ± {rows[-1]['auc_std']:.4f} "
            f"({rows[-1]['seconds']} s)",
            flush=True,
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--time-size", type=int, default=64)
    p.add_argument("--img-sizes", type=int, nargs=4, default=[240, 180, 120, 90])
    p.add_argument("--img-test", type=int, default=400)
    p.add_argument("--img-rounds", type=int, default=6)
    p.add_argument("--img-epochs", type=int, default=3)
    p.add_argument("--img-steps", type=int, default=3)
    p.add_argument(
        "--img-lr", type=float, default=2.0, help="learning rate under DP (clipped gradients)"
    )
    p.add_argument("--img-lr-nodp", type=float, default=1.0)
    p.add_argument("--img-clip", type=float, default=1.0)
    p.add_argument(
        "--img-runs", type=int, default=3, help="runs per epsilon (fresh DP noise and batches)"
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_dp.json"))
    args = p.parse_args()
    if args.quick:
        args.repeats, args.seeds, args.img_sizes, args.img_test, args.img_rounds = (
            1,
            1,
            [60, 50, 40, 30],
            80,
            2,
        )
        args.time_size, args.img_runs = 32, 1
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore", message="Optimal order")
    started = time.perf_counter()

    print("DP-SGD time relative to plain SGD (same model, data and steps):", flush=True)
    bc = breast_cancer_split().hospitals["hospital-a"]
    bc = Standardizer.fit(bc).apply(bc)
    img = synthetic_imaging_split(
        4, sizes=args.img_sizes, n_test=8, size=args.time_size, seed=0
    ).hospitals["hospital-a"]
    timing = [
        time_ratio("mlp", bc, steps=4, epochs=25, lr=0.1, repeats=args.repeats),
        time_ratio("cnn", img, steps=4, epochs=1, lr=0.1, repeats=args.repeats),
    ]
    for t in timing:
        print(
            f"  {t['model']:<4} {t['samples']} samples x {t['input_shape']}, {t['steps']} steps: "
            f"SGD {t['sgd_s']:.3f} s, DP-SGD {t['dp_sgd_s']:.3f} s, ratio {t['ratio']:.2f}x",
            flush=True,
        )
    print("Final held-out AUC against the campaign's epsilon (delta 1e-5):", flush=True)
    result = {
        "machine": {
            "cores": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "timing": timing,
        "breast_cancer_logreg": breast_cancer(args.seeds),
        "synthetic_imaging_cnn": imaging(args),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {args.out} in {result['seconds']} s")


def table(r: dict) -> str:
    lines = [
        "",
        f"{'epsilon':>8} {'breast cancer AUC (logreg)':>28} {'synthetic imaging AUC (CNN)':>29}",
    ]
    for bc, im in zip(r["breast_cancer_logreg"], r["synthetic_imaging_cnn"], strict=False):
        eps = "no DP" if bc["target_epsilon"] is None else f"{bc['target_epsilon']:g}"
        lines.append(
            f"{eps:>8} {bc['auc_mean']:>20.4f} ± {bc['auc_std']:.4f} {im['auc']:>21.4f} ± {im['auc_std']:.4f}"
        )
    lines.append("")
    for t in r["timing"]:
        lines.append(
            f"DP-SGD / SGD time, {t['model']}: {t['ratio']:.2f}x ({t['dp_sgd_s']:.3f} s vs {t['sgd_s']:.3f} s)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
