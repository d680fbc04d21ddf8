"""The tables, the goal check and the timing grid of ``scripts/bench_robust.py``: what it prints
and what it writes under ``goal`` and ``timing`` in its JSON record (the campaign itself stays
in bench_robust.py)."""

from __future__ import annotations

import statistics
import time

import numpy as np

from node.consensus.rules import RULES, aggregate

BREAK_POINTS = 5.0  # FedAvg "breaks" when its accuracy drops by more than this (points)
TARGET_POINTS = 2.0  # the best robust rule should stay within this of the clean run

GOAL = {
    2: 2.0,
    3: 5.0,
}  # issue 16: within 2 points of the clean run at f <= 2 of 10, within 5 at f = 3


def goal(cells: list[dict], rules: list[str], attacks: list[str], fs: list[int]) -> dict:
    """Per rule, the worst mean-accuracy drop against the clean run (FedAvg, f = 0) over every
    attack at f <= 2 and at f = 3, where, and whether issue 16's goal holds."""
    look = {(c["rule"], c["attack"], c["f"]): c for c in cells}
    clean = look[("fedavg", "none", 0)]
    base = clean["accuracy"]
    base_by_seed = np.array(clean.get("accuracy_by_seed", [base]))
    out = {}
    for rule in rules:
        row = {}
        for label, group in (
            ("f<=2", [f for f in fs if 0 < f <= 2]),
            ("f=3", [f for f in fs if f == 3]),
        ):
            drops, seed_drops = [], []
            for attack in attacks:
                for f in group:
                    c = look.get((rule, attack, f))
                    if c is None or attack == "none" or c["status"] == "n/a":
                        continue
                    ok = c["status"] == "ok"
                    drops.append((100 * (base - c["accuracy"]) if ok else float("inf"), attack, f))
                    per_seed = np.array(c.get("accuracy_by_seed", [c.get("accuracy", 0.0)]))
                    seed_drops.append(
                        (
                            float((100 * (base_by_seed - per_seed)).max()) if ok else float("inf"),
                            attack,
                            f,
                        )
                    )
            if drops:
                worst, worst_seed = max(drops), max(seed_drops)
                limit = GOAL[2 if label == "f<=2" else 3]
                row[label] = {
                    "worst_drop_points": round(worst[0], 2) if np.isfinite(worst[0]) else None,
                    "where": f"{worst[1]}, f={worst[2]}",
                    "goal_points": limit,
                    "meets_goal": bool(worst[0] <= limit),
                    "worst_single_seed_drop_points": round(worst_seed[0], 2)
                    if np.isfinite(worst_seed[0])
                    else None,
                    "single_seed_where": f"{worst_seed[1]}, f={worst_seed[2]}",
                }
        out[rule] = row
    return out


def goal_markdown(g: dict) -> str:
    """The goal table in Markdown (mean over seeds; the worst single seed in brackets)."""

    def cell(v: dict | None) -> str:
        if v is None:
            return "n/a"
        mean = "diverged" if v["worst_drop_points"] is None else f"{v['worst_drop_points']:+.1f}"
        seed = (
            "diverged"
            if v["worst_single_seed_drop_points"] is None
            else f"{v['worst_single_seed_drop_points']:+.1f}"
        )
        return f"{mean} ({v['where']}) [{seed}] {'ok' if v['meets_goal'] else '**missed**'}"

    lines = ["| rule | f <= 2 (goal 2) | f = 3 (goal 5) |", "|---|---|---|"]
    lines += [
        f"| {rule} | {cell(row.get('f<=2'))} | {cell(row.get('f=3'))} |" for rule, row in g.items()
    ]
    return "\n".join(lines)


def print_goal(g: dict) -> None:
    print(
        "\nissue 16 goal (mean over seeds; drop against clean FedAvg): within 2 points at f <= 2, 5 at f = 3"
    )
    for rule, row in g.items():
        parts = [
            f"{k}: {'diverged' if v['worst_drop_points'] is None else format(v['worst_drop_points'], '+.1f')} "
            f"({v['where']}) {'ok' if v['meets_goal'] else 'MISSED'}"
            for k, v in row.items()
        ]
        print(f"  {rule:<20} " + " | ".join(parts))


def cell_text(c: dict | None) -> str:
    if c is None or c["status"] == "n/a":
        return "n/a"
    if c["status"] != "ok":
        return "diverged"
    auc = "nan" if c["auc"] is None else f"{c['auc']:.3f}"
    return f"{c['accuracy']:.3f}/{auc}"


def summaries(
    cells: list[dict], rules: list[str], attacks: list[str], fs: list[int], n: int
) -> dict:
    look = {(c["rule"], c["attack"], c["f"]): c for c in cells}
    clean = look.get(("fedavg", "none", 0))
    base = clean["accuracy"]
    byz_fs = [f for f in fs if 0 < f and 3 * f < n]
    out: dict = {
        "clean_accuracy": base,
        "clean_auc": clean["auc"],
        "f_below_n_over_3": byz_fs,
        "attacks": {},
    }
    robust = [r for r in rules if r != "fedavg"]
    worst_by_rule: dict[str, float] = {}
    for attack in attacks:
        if attack == "none":
            continue
        per_f = []
        for f in byz_fs:
            ok = [look[(r, attack, f)] for r in robust if look[(r, attack, f)]["status"] == "ok"]
            best = max(ok, key=lambda c: (c["accuracy"], c["auc"] or 0.0)) if ok else None
            fa = look[("fedavg", attack, f)]
            fa_drop = 100 * (base - fa["accuracy"]) if fa["status"] == "ok" else float("inf")
            per_f.append(
                {
                    "f": f,
                    "best_rule": best and best["rule"],
                    "best_accuracy": best and best["accuracy"],
                    "best_drop_points": None
                    if best is None
                    else round(100 * (base - best["accuracy"]), 2),
                    "fedavg_accuracy": fa.get("accuracy"),
                    "fedavg_drop_points": round(fa_drop, 2) if np.isfinite(fa_drop) else None,
                    "fedavg_breaks": fa_drop > BREAK_POINTS,
                }
            )
            for r in robust:
                c = look[(r, attack, f)]
                if c["status"] == "ok":
                    worst_by_rule[r] = max(worst_by_rule.get(r, -1e9), 100 * (base - c["accuracy"]))
                elif c["status"] != "n/a":
                    worst_by_rule[r] = float("inf")
        drops = [p["best_drop_points"] for p in per_f if p["best_drop_points"] is not None]
        out["attacks"][attack] = {
            "per_f": per_f,
            "best_robust_within_target": bool(drops) and max(drops) <= TARGET_POINTS,
            "fedavg_breaks": any(p["fedavg_breaks"] for p in per_f),
        }
    # rules that are n/a at some f < n/3 are ranked only over the f they can take
    out["worst_case_drop_by_rule"] = {
        r: round(v, 2) if np.isfinite(v) else None  # None: diverged somewhere
        for r, v in sorted(worst_by_rule.items(), key=lambda kv: kv[1])
    }
    return out


def print_tables(
    cells: list[dict], rules: list[str], attacks: list[str], fs: list[int], summary: dict
) -> None:
    look = {(c["rule"], c["attack"], c["f"]): c for c in cells}
    for attack in attacks:
        print(f"\nattack: {attack}   (cells: held-out accuracy/AUC)")
        print(f"{'rule':<13}" + "".join(f"{'f=' + str(f):>14}" for f in fs))
        for rule in rules:
            print(
                f"{rule:<13}" + "".join(f"{cell_text(look.get((rule, attack, f))):>14}" for f in fs)
            )
        if attack == "backdoor":
            print("backdoor success (triggered malignant held-out rows classified benign):")
            for rule in rules:
                vals = []
                for f in fs:
                    c = look.get((rule, attack, f))
                    vals.append(
                        "n/a"
                        if not c or c["status"] != "ok"
                        else f"{c.get('backdoor_success', float('nan')):.3f}"
                    )
                print(f"{rule:<13}" + "".join(f"{v:>14}" for v in vals))
        s = summary["attacks"].get(attack)
        if s:
            parts = []
            for p in s["per_f"]:
                best = (
                    "none"
                    if p["best_rule"] is None
                    else f"{p['best_rule']} {p['best_accuracy']:.3f} (drop {p['best_drop_points']:+.1f} pts)"
                )
                fa = (
                    "diverged"
                    if p["fedavg_drop_points"] is None
                    else f"{p['fedavg_drop_points']:+.1f} pts"
                )
                parts.append(
                    f"f={p['f']}: best robust {best}; FedAvg drop {fa}"
                    f"{' BREAKS' if p['fedavg_breaks'] else ''}"
                )
            print(
                f"summary vs clean (FedAvg, f=0: acc {summary['clean_accuracy']:.3f}): "
                + " | ".join(parts)
            )
            print(
                f"  best robust within {TARGET_POINTS:g} pts at every f < n/3: "
                f"{'yes' if s['best_robust_within_target'] else 'NO'}; FedAvg breaks (> {BREAK_POINTS:g} pts) "
                f"at some f: {'yes' if s['fedavg_breaks'] else 'no'}"
            )


def time_rules(ns: list[int], d: int, rules: list[str], repeats: int) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for n in ns:
        stack = rng.standard_normal((n, d), dtype=np.float32)
        for rule in rules:
            if RULES[rule].min_updates(1) > n:
                rows.append({"rule": rule, "n": n, "d": d, "seconds": None})
                continue
            runs = []
            for _ in range(repeats):
                t = time.perf_counter()
                aggregate(rule, stack, None, f=1)
                runs.append(time.perf_counter() - t)
            rows.append(
                {
                    "rule": rule,
                    "n": n,
                    "d": d,
                    "seconds": round(statistics.median(runs), 4),
                    "runs": [round(x, 4) for x in runs],
                }
            )
            print(f"  n={n:<3} {rule:<13} {rows[-1]['seconds']:.3f} s", flush=True)
        del stack
    return rows


def print_timing(rows: list[dict], ns: list[int], rules: list[str], d: int) -> None:
    look = {(r["rule"], r["n"]): r["seconds"] for r in rows}
    print(f"\naggregation time, {d:,} float32 parameters, f=1, median of repeats (seconds)")
    print(f"{'rule':<13}" + "".join(f"{'n=' + str(n):>12}" for n in ns))
    for rule in rules:
        print(
            f"{rule:<13}"
            + "".join(
                f"{('n/a' if look.get((rule, n)) is None else format(look[(rule, n)], '.3f')):>12}"
                for n in ns
            )
        )
