#!/usr/bin/env python3
"""Benchmark the robust aggregation rules against poisoning attacks (issue 6), and their cost.

1. Accuracy under attack. The federated campaign arithmetic (no network, no chain) on the
   breast-cancer cohort split across ``--peers`` (10) hospitals by a seeded Dirichlet(1.0)
   draw (``breast_cancer_split(10, seed=--seed)``), standardized with the federated
   :class:`FeatureStats` total of the clean data; logreg, ``--rounds`` (5) rounds of one
   full-batch local step at learning rate 2.0 (the demo's schedule); no DP unless
   ``--dp-epsilon E``. For every rule x attack x f, the final held-out accuracy and AUC.

   - The first ``f`` peers (hospital-a, -b, ... in registry order) are Byzantine.
   - Model attacks (:data:`node.adversary.attacks.MODEL_ATTACKS`) at their papers' strengths
     (:data:`node.adversary.attacks.PAPER_STRENGTHS`): sign-flip x4 of the honest mean (Li et al. 2019),
     Gaussian sigma 200 (Blanchard et al. 2017, seed = round), LIE with z_max(n, f) (Baruch et
     al. 2019), IPM epsilon 100 (Xie et al. 2020), free-rider zeros: the Byzantine peers do not
     train; each round they send the attack computed from that round's honest updates (an
     omniscient, colluding attacker).
   - ``scaling`` is model replacement (Bagdasaryan et al. 2020): each Byzantine peer trains on
     its label-flipped data and boosts its own update by gamma = n (server learning rate 1).
   - Data attacks: ``label-flip`` (:func:`flip_labels`) and ``backdoor``
     (:func:`add_backdoor` defaults: 30 % extra rows with features 0, 1, 2 — mean radius,
     texture, perimeter — set to 6.0 in standardized units, labelled 0 = benign). The
     Byzantine peers train honestly on their poisoned data.
   - Byzantine peers claim the largest sample count they can (``LIAR_CLAIM``, 2^63: a uint64
     commitment holds it); honest peers report their true counts. :func:`aggregate` caps every
     claim at the round's median claim before FedAvg uses it, and the robust rules count each
     member once (issue 16), so the lie buys at most the median honest weight.
   - Adaptive attacks (issue 16): min-max and min-sum with the unit, std and sign
     perturbations (Shejwalkar & Houmansadr 2021; ``min-max-std`` etc.), Fang et al. 2020's
     attacks on trimmed mean (``fang-tm``, b = 2) and on Krum (``fang-krum``), and ALIE with
     z = max(z_max(n, f), 1.0) (z_max(10, 1) = 0 would send the honest mean).
   - Each rule is told the true ``f`` (Krum, Multi-Krum with m = n - f, Bulyan, trimmed mean
     cutting f values per side, centered clipping's radius). ``rule+bucket`` applies the rule
     to bucket means of s = 2 (Karimireddy et al. 2022), the permutation seeded by the round.
     A rule/f pair below its ``min_updates(f)`` is "n/a" (Bulyan: n >= 4f + 3, so only
     f <= 1 at n = 10).
   - f = 0 has no attacker, so it is run once per rule and shared by every attack's table.
   - Backdoor success rate: of the held-out rows labelled MALIGNANT (y = 1, i.e. not the
     backdoor's target class 0), stamped with the trigger, the fraction the model classifies
     benign (logit <= 0). A malignant tumour waved through as benign is the harm the trigger
     buys; benign rows would be "classified as the target" without any backdoor. The f = 0
     value is the same measure on a model nobody poisoned (the trigger's natural effect).
   - Clean run = FedAvg, f = 0, no attack. Per attack and f < n/3, the summary names the best
     robust (non-FedAvg) rule, its accuracy drop against the clean run, and whether FedAvg
     "breaks" (drop > 5 points). The best rule is picked after the fact per (attack, f), an
     optimistic reading; the rule with the smallest worst-case drop is printed too.

2. Aggregation time per rule for n = 10 and n = 32 updates of 1,000,000 float32 parameters
   (standard normal), f = 1, median of 3 wall-clock timings of ``aggregate``.

3. ``--task imaging``: the SYNTHETIC imaging task (generated lesions, not patient data,
   :func:`node.data.datasets.synthetic_imaging_split`: 10 sites of 200 images, 32x32, one legacy
   scanner), the ``cnn`` model, no DP, 20 rounds of 2 local epochs of 8 SGD steps (batch 25)
   at learning rate 0.1; fedavg / median / multi-krum / geomed x every model attack but the
   free-rider, and label-flip, x f = 0, 3 (the largest f < n/3; Bulyan would need n >= 15).
   Replaces the tabular part.

4. ``--task imaging-features``: the SYNTHETIC imaging task through the ``imaging-features``
   map (31 fixed features, a linear head), 10 non-IID sites of 200 images (site styles, a
   legacy scanner, 20 % to 80 % positive), 20 rounds of one full-batch step at learning rate
   1.0, no DP. Writes ``bench_robust_features.json``.

``--seeds N`` runs every cell on N data splits and reports the mean accuracy (and each seed's);
``--rules`` / ``--attacks`` / ``--fs`` narrow the grid. The "issue 16 goal" lines give each
rule's worst mean drop against clean FedAvg at f <= 2 (goal: 2 points) and f = 3 (goal: 5).

``--quick``: f in {0, 2}, attacks none / sign-flip / lie / label-flip, rules fedavg / median /
multi-krum, timing at n = 10 only.

    .venv/bin/python scripts/bench_robust.py                  # full tabular + timing
    .venv/bin/python scripts/bench_robust.py --quick          # smoke run, ~1 min
    .venv/bin/python scripts/bench_robust.py --task imaging   # synthetic CNN

Writes ``benchmarks/results/bench_robust.json`` (``bench_robust_imaging.json`` for the
imaging task) with the exact command and the machine, and prints the tables.
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
from robust_report import (  # scripts/robust_report.py: this script runs with scripts/ on sys.path
    goal,
    goal_markdown,
    print_goal,
    print_tables,
    print_timing,
    summaries,
    time_rules,
)

from node.adversary.attacks import (
    MODEL_ATTACKS,
    PAPER_STRENGTHS,
    add_backdoor,
    backdoor_success,
    flip_labels,
    lie_z_max,
    scaling,
)
from node.consensus.rules import RULES, aggregate, make_rule
from node.data.datasets import synthetic_imaging_split
from node.data.samples import FeatureStats, LabelledData, Standardizer, breast_cancer_split
from node.learning.evaluation import evaluate
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, train_local

BUCKET = 2  # bucketing's s (Karimireddy et al. 2022 use s = 2 in most experiments)
ALL_RULES = (*RULES, *(f"{r}+bucket" for r in ("median", "trimmed-mean", "cclip", "multi-krum")))
DATA_ATTACKS = ("label-flip", "backdoor")
POISONED_TRAINING = ("label-flip", "backdoor", "scaling")  # Byzantine peers train on poisoned data
# min-max / min-sum with each of Shejwalkar & Houmansadr's perturbations (unit, std, sign)
VARIANTS = {
    f"{a}-{p}": (a, {"perturbation": p})
    for a in ("min-max", "min-sum")
    for p in ("unit", "std", "sign")
}
MODEL_ATTACK_NAMES = tuple(a for a in MODEL_ATTACKS if a not in ("min-max", "min-sum")) + tuple(
    VARIANTS
)
ALL_ATTACKS = ("none", *MODEL_ATTACK_NAMES, *DATA_ATTACKS)
LIE_Z_FLOOR = 1.0  # z_max(10, 1) = 0 is the honest mean: no attack; floor z at 1.0 (see node/adversary/attacks.py)
BACKDOOR = {
    "target": 0.0,
    "trigger_features": (0, 1, 2),
    "trigger_value": 6.0,
}  # add_backdoor's defaults
LIAR_CLAIM = float(2**63)  # what a Byzantine peer claims to have trained on (issue 16)


def poison(data: LabelledData, attack: str, seed: int) -> LabelledData:
    if attack in ("label-flip", "scaling"):
        return flip_labels(data)
    if attack == "backdoor":
        return add_backdoor(data, seed=seed, **BACKDOOR)
    return data


def attack_rows(attack: str, honest: np.ndarray, f: int, n: int, round_: int) -> np.ndarray:
    """What the ``f`` Byzantine peers send this round, at the attack's strongest parameter."""
    if attack in VARIANTS:
        base, kwargs = VARIANTS[attack]
        return MODEL_ATTACKS[base](honest, f, **kwargs)
    kwargs = dict(PAPER_STRENGTHS.get(attack, {}))
    if attack in ("gaussian", "fang-tm"):
        kwargs["seed"] = round_
    if attack == "lie":
        kwargs["z"] = max(lie_z_max(n, f), LIE_Z_FLOOR)
    return MODEL_ATTACKS[attack](honest, f, **kwargs)


CKKS_FAILED_ROUNDS: list[
    tuple[str, int, str]
] = []  # rule@ckks rounds that failed (reported in the output)


def apply_rule(
    rule: str, stack: np.ndarray, weights: list[float], f: int, round_: int
) -> np.ndarray:
    """``rule`` or ``rule+bucket`` (bucketing with s = BUCKET, permutation seeded by the round), or
    ``rule@ckks``: a Krum-family rule run over encrypted updates as robust ckks runs it
    (:func:`node.crypto.ckks.robust.encrypted_round`: selection from decrypted inner products)."""
    if rule.endswith("@ckks"):
        from node.crypto.ckks.robust import encrypted_round

        try:
            return encrypted_round(rule.removesuffix("@ckks"), stack, f=f, round=round_)
        except (
            ValueError
        ) as exc:  # the protocol's round fails (e.g. a wrapped norm caught): the model stays
            CKKS_FAILED_ROUNDS.append((rule, round_, str(exc)[:80]))
            return np.zeros(stack.shape[1], dtype=np.float32)
    base, _, bucket = rule.partition("+")
    return aggregate(base, stack, weights, f=f, bucket=BUCKET if bucket else 1, seed=round_)


def rule_minimum(rule: str, f: int) -> int:
    """The fewest peers ``rule`` takes at this f (bucketing: enough bucket means)."""
    base, _, bucket = rule.removesuffix("@ckks").partition("+")
    return make_rule(base, f, bucket=BUCKET if bucket else 1).fewest()


def campaign(setup: dict, rule: str, attack: str, f: int) -> dict:
    """One federated campaign; the first ``f`` peers are Byzantine."""
    sites, test, dp = setup["sites"], setup["test"], setup["dp"]
    n = len(sites)
    data = [
        poison(d, attack, seed=i) if i < f and attack in POISONED_TRAINING else d
        for i, d in enumerate(sites)
    ]
    ledgers = [PrivacyLedger(dp, warn_if_off=False) for _ in data]
    weights = [
        LIAR_CLAIM if i < f else float(len(d)) for i, d in enumerate(sites)
    ]  # claimed sample counts
    model = build_model(setup["model"], input_shape=sites[0].input_shape)
    params = flat_parameters(model)
    t = time.perf_counter()
    for r in range(setup["rounds"]):
        omniscient = attack in MODEL_ATTACK_NAMES and attack not in POISONED_TRAINING and f > 0
        trainers = range(f, n) if omniscient else range(n)
        deltas = [
            train_local(
                model,
                params,
                data[i],
                ledgers[i],
                TrainConfig(setup["lr"], seed=r * 1000 + i, device="cpu"),
            ).delta
            for i in trainers
        ]
        stack = np.stack(deltas)
        if omniscient:
            stack = np.concatenate([attack_rows(attack, stack, f, n, r), stack]).astype(np.float32)
        elif attack == "scaling" and f > 0:  # model replacement: gamma = n, server learning rate 1
            stack = np.concatenate(
                [scaling(stack[i : i + 1], 1, factor=float(n)) for i in range(f)] + [stack[f:]]
            )
        try:
            params = (params + apply_rule(rule, stack, weights, f, r)).astype(np.float32)
        except ValueError as e:  # e.g. non-finite parameters after a divergent round
            return {"rule": rule, "attack": attack, "f": f, "status": f"error: {e}"}
        if not np.isfinite(params).all():
            return {
                "rule": rule,
                "attack": attack,
                "f": f,
                "status": "diverged (non-finite parameters)",
            }
    load_flat_parameters(model, params)
    scores = evaluate(model, test)
    out = {
        "rule": rule,
        "attack": attack,
        "f": f,
        "status": "ok",
        "accuracy": round(scores.accuracy, 4),
        "auc": None if np.isnan(scores.auc) else round(scores.auc, 4),
        "seconds": round(time.perf_counter() - t, 3),
    }
    bsr = backdoor_success(model, test, **BACKDOOR)
    if bsr is not None:
        out["backdoor_success"] = round(bsr, 4)
    return out


def tabular_setup(args) -> dict:
    split = breast_cancer_split(args.peers, seed=args.seed)
    stats = [FeatureStats.of(d) for d in split.hospitals.values()]
    z = Standardizer.from_stats(sum(stats[1:], stats[0]))
    dp = DPConfig(
        enabled=args.dp_epsilon is not None,
        target_epsilon=args.dp_epsilon or 1.0,
        rounds=args.rounds,
        local_epochs=1,
        steps_per_epoch=1,
        max_grad_norm=1.0,
        accountant="rdp",
    )
    return {
        "task": "breast-cancer",
        "model": "logreg",
        "sites": [z.apply(d) for d in split.hospitals.values()],
        "test": z.apply(split.test),
        "dp": dp,
        "rounds": args.rounds,
        "lr": 2.0,
        "site_sizes": [len(d) for d in split.hospitals.values()],
    }


def features_setup(args) -> dict:
    """The SYNTHETIC imaging task through the ``imaging-features`` map (31 fixed features, a
    linear head): 10 non-IID sites (site styles, one legacy scanner, label mixes from 20 % to
    80 % positive), 20 rounds of the model's federated schedule without DP (one full-batch
    step at learning rate 1.0, :data:`node.learning.imagefeatures.DP_SCHEDULE`)."""
    from node.learning.imagefeatures import DP_SCHEDULE, to_features

    fractions = [0.2 + 0.6 * i / (args.peers - 1) for i in range(args.peers)]
    split = synthetic_imaging_split(
        args.peers,
        sizes=[args.img_site_size] * args.peers,
        n_test=args.img_test,
        size=args.img_size,
        seed=args.seed,
        positive_fractions=fractions,
    )
    sites = [to_features(d) for d in split.hospitals.values()]
    rounds = args.feat_rounds
    dp = DPConfig(
        enabled=False,
        rounds=rounds,
        local_epochs=DP_SCHEDULE["local_epochs"],
        steps_per_epoch=DP_SCHEDULE["steps_per_epoch"],
    )
    return {
        "task": "synthetic-imaging-features",
        "model": "logreg",
        "sites": sites,
        "test": to_features(split.test),
        "dp": dp,
        "rounds": rounds,
        "lr": DP_SCHEDULE["learning_rate"],
        "site_sizes": [len(d) for d in sites],
    }


def imaging_setup(args) -> dict:
    split = synthetic_imaging_split(
        args.peers,
        sizes=[args.img_site_size] * args.peers,
        n_test=args.img_test,
        size=args.img_size,
        seed=args.seed,
    )
    dp = DPConfig(
        enabled=False,
        rounds=args.img_rounds,
        local_epochs=args.img_epochs,
        steps_per_epoch=args.img_steps,
    )
    return {
        "task": "synthetic-imaging",
        "model": "cnn",
        "sites": list(split.hospitals.values()),
        "test": split.test,
        "dp": dp,
        "rounds": args.img_rounds,
        "lr": args.img_lr,
        "site_sizes": [len(d) for d in split.hospitals.values()],
    }


def run_grid(setup: dict, rules: list[str], attacks: list[str], fs: list[int]) -> list[dict]:
    n = len(setup["sites"])
    cells: list[dict] = []
    clean: dict[str, dict] = {}
    for attack in attacks:
        for f in fs:
            if attack == "none" and f > 0:  # no attacker: the f = 0 run says it all
                continue
            for rule in rules:
                if rule_minimum(rule, f) > n:
                    cells.append(
                        {
                            "rule": rule,
                            "attack": attack,
                            "f": f,
                            "status": "n/a",
                            "why": f"{rule} needs n >= {rule_minimum(rule, f)} for f={f}, n={n}",
                        }
                    )
                    continue
                if f == 0:  # no attacker: the same campaign for every attack
                    if rule not in clean:
                        clean[rule] = campaign(setup, rule, "none", 0)
                    cells.append({**clean[rule], "attack": attack})
                    continue
                cells.append(campaign(setup, rule, attack, f))
        print(f"  {attack}: done", flush=True)
    return cells


def merge_seeds(per_seed: list[list[dict]]) -> list[dict]:
    """One cell per (rule, attack, f): accuracy and AUC averaged over the seeds (each seed's
    kept in ``*_by_seed``); a cell that failed in any seed keeps that seed's status."""
    out = []
    for group in zip(*per_seed, strict=False):
        first = group[0]
        bad = next((c for c in group if c["status"] != "ok"), None)
        if bad is not None:
            out.append(bad)
            continue
        merged = {
            **first,
            "accuracy": round(float(np.mean([c["accuracy"] for c in group])), 4),
            "accuracy_by_seed": [c["accuracy"] for c in group],
            "seconds": round(sum(c["seconds"] for c in group), 3),
        }
        aucs = [c["auc"] for c in group if c["auc"] is not None]
        merged["auc"] = round(float(np.mean(aucs)), 4) if aucs else None
        if "backdoor_success" in first:
            merged["backdoor_success"] = round(
                float(np.mean([c["backdoor_success"] for c in group])), 4
            )
        out.append(merged)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer combinations: a ~1 minute smoke run")
    p.add_argument(
        "--task", choices=("breast-cancer", "imaging", "imaging-features"), default="breast-cancer"
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="data split seeds --seed, --seed + 1, ... (cells: means)",
    )
    p.add_argument(
        "--feat-rounds", type=int, default=20, help="rounds of the imaging-features task"
    )
    p.add_argument("--rules", nargs="+", default=None, help="only these rules")
    p.add_argument(
        "--attacks", nargs="+", default=None, help="only these attacks ('none' is always run)"
    )
    p.add_argument("--fs", nargs="+", type=int, default=None, help="only these f (0 is always run)")
    p.add_argument("--peers", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="data split seed")
    p.add_argument(
        "--dp-epsilon", type=float, default=None, help="DP-SGD at this epsilon (default: no DP)"
    )
    p.add_argument("--no-timing", action="store_true", help="skip the aggregation timing")
    p.add_argument("--time-dim", type=int, default=1_000_000)
    p.add_argument("--time-repeats", type=int, default=3)
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--img-site-size", type=int, default=200)
    p.add_argument("--img-test", type=int, default=400)
    p.add_argument("--img-rounds", type=int, default=20)
    p.add_argument("--img-epochs", type=int, default=2)
    p.add_argument("--img-steps", type=int, default=8)
    p.add_argument("--img-lr", type=float, default=0.1)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument(
        "--summarize",
        type=Path,
        default=None,
        help="print the goal table of an earlier JSON and exit",
    )
    args = p.parse_args()
    if args.summarize:
        old = json.loads(args.summarize.read_text())
        st = old["settings"]
        print(goal_markdown(goal(old["cells"], st["rules"], st["attacks"], st["f"])))
        return
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore", message="Optimal order")
    torch.set_num_threads(
        1
    )  # tiny models: thread hand-offs cost more than they save (10x on a busy machine)
    started = time.perf_counter()
    imaging = args.task == "imaging"
    make_setup = {"imaging": imaging_setup, "imaging-features": features_setup}.get(
        args.task, tabular_setup
    )
    if imaging:
        rules, fs = ["fedavg", "median", "multi-krum", "geomed"], [0, 3]
        attacks = ["none", *(a for a in MODEL_ATTACK_NAMES if a != "free-rider"), "label-flip"]
    else:
        rules, attacks, fs = list(ALL_RULES), list(ALL_ATTACKS), [0, 1, 2, 3]
    if args.quick:
        rules = [r for r in rules if r in ("fedavg", "median", "multi-krum")]
        attacks = [a for a in attacks if a in ("none", "sign-flip", "lie", "label-flip")]
        fs = [0, 2]
    rules = rules if args.rules is None else ["fedavg", *(r for r in args.rules if r != "fedavg")]
    attacks = (
        attacks if args.attacks is None else ["none", *(a for a in args.attacks if a != "none")]
    )
    fs = fs if args.fs is None else [0, *(f for f in args.fs if f != 0)]
    default_out = {
        "imaging": "bench_robust_imaging.json",
        "imaging-features": "bench_robust_features.json",
    }
    out_path = args.out or Path("benchmarks/results") / default_out.get(
        args.task, "bench_robust.json"
    )
    per_seed = []
    for seed in range(args.seed, args.seed + args.seeds):
        setup = make_setup(argparse.Namespace(**{**vars(args), "seed": seed}))
        n = len(setup["sites"])
        print(
            f"{setup['task']} ({setup['model']}), seed {seed}, {n} peers of {setup['site_sizes']} samples, "
            f"{len(setup['test'])} held out, {setup['rounds']} rounds, "
            f"{'DP epsilon ' + str(args.dp_epsilon) if setup['dp'].enabled else 'no DP'}",
            flush=True,
        )
        per_seed.append(run_grid(setup, rules, attacks, fs))
    cells = merge_seeds(per_seed)
    grid_seconds = round(time.perf_counter() - started, 1)
    summary = summaries(cells, rules, attacks, fs, n)
    timing: list[dict] = []
    time_ns = [10] if args.quick else [10, 32]
    time_rules_list = [r for r in rules if r in RULES]
    if not args.no_timing and args.task == "breast-cancer":
        print(f"aggregation timing ({args.time_dim:,} parameters):", flush=True)
        timing = time_rules(time_ns, args.time_dim, time_rules_list, args.time_repeats)
    result = {
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "settings": {
            **{k: v for k, v in vars(args).items() if k != "out"},
            "task": setup["task"],
            "model": setup["model"],
            "peers": n,
            "site_sizes": setup["site_sizes"],
            "held_out": len(setup["test"]),
            "learning_rate": setup["lr"],
            "local_epochs": setup["dp"].local_epochs,
            "steps_per_epoch": setup["dp"].steps_per_epoch,
            "rules": rules,
            "attacks": attacks,
            "attack_strengths": {**PAPER_STRENGTHS, "scaling": {"factor": n}},
            "f": fs,
            "byzantine": "the first f peers",
            "backdoor": {
                **BACKDOOR,
                "fraction": 0.3,
                "success_measured_on": "held-out rows with y=1 (malignant), trigger stamped, "
                "classified as target 0 (benign)",
            },
        },
        "cells": cells,
        "summary": summary,
        "goal": goal(cells, rules, attacks, fs),
        "timing": timing,
        "grid_seconds": grid_seconds,
        "ckks_failed_rounds": len(CKKS_FAILED_ROUNDS),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print_tables(cells, rules, attacks, fs, summary)
    worst = summary["worst_case_drop_by_rule"]
    print(
        "\nworst-case accuracy drop over every attack and f < n/3, per robust rule (points): "
        + ", ".join(
            f"{r} {'diverged' if v is None else format(v, '+.1f')}" for r, v in worst.items()
        )
    )
    print_goal(result["goal"])
    if timing:
        print_timing(timing, time_ns, time_rules_list, args.time_dim)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\ngrid {grid_seconds} s, total {result['seconds']} s; wrote {out_path}")


if __name__ == "__main__":
    main()
