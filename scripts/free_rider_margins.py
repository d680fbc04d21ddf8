#!/usr/bin/env python3
"""How close honest updates come to the free-rider screen's threshold (node/consensus/freeriding.py).

For each shipped incentive scenario and seed, the simulator's campaign arithmetic (no chain,
no DP noise: the hardest case, since DP noise only lowers similarities) is run round by
round, the consortium's rule aggregating every update. Per run it records the largest cosine
between two honest sites' updates of one round, and between an honest update and the
previous global step, the smallest ratio of an honest update's nearest other update (its
sine) to the round's spread S (:func:`node.consensus.freeriding.round_spread`; the duplicate test flags
below SPREAD_FRACTION = 0.2), the same ratio for an honest update's nearest *other* site's
update of the previous round (what a screen against revealed earlier updates would test), and
which sites the screen flagged. Writes a JSON summary.

    .venv/bin/python scripts/free_rider_margins.py            # 4 scenarios x 5 seeds
    .venv/bin/python scripts/free_rider_margins.py --quick    # 2 scenarios x 1 seed
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.consensus.freeriding import (
    SIMILARITY_THRESHOLD,
    SPREAD_FRACTION,
    round_spread,
    screen_free_riders,
)  # noqa: E402
from node.consensus.rules import aggregate  # noqa: E402
from node.incentives.cohort import build_cohort  # noqa: E402
from node.incentives.scenario import load_scenario  # noqa: E402
from node.incentives.schemes import cosine_similarity  # noqa: E402
from node.incentives.simulate import Campaign  # noqa: E402


def margins(name: str, seed: int) -> dict:
    scenario = replace(load_scenario(name), seed=seed)
    cohort = build_cohort(scenario)
    campaign = Campaign(scenario, cohort)
    players = list(cohort.hospitals)
    honest = [i for i, h in enumerate(players) if h.role == "honest"]
    samples = [float(h.samples) for h in players]
    pair, previous, flagged, ratio, earlier_ratio = 0.0, 0.0, set(), float("inf"), float("inf")
    last = None  # the previous round's updates
    for t in range(1, scenario.rounds + 1):
        stack = campaign.updates(t, players)
        pair = max(
            [pair] + [cosine_similarity(stack[i], stack[j]) for i, j in combinations(honest, 2)]
        )
        spread = round_spread(list(stack))
        for i in honest if spread > 0 else []:
            cosines = [cosine_similarity(stack[i], stack[j]) for j in range(len(stack)) if j != i]
            sines = [(1 - c * c) ** 0.5 for c in cosines if c > 0]
            ratio = min([ratio] + [min(sines) / spread] if sines else [ratio])
            if last is not None:
                cosines = [cosine_similarity(stack[i], last[j]) for j in honest if j != i]
                sines = [(1 - c * c) ** 0.5 for c in cosines if c > 0]
                earlier_ratio = min(
                    [earlier_ratio] + [min(sines) / spread] if sines else [earlier_ratio]
                )
        last = stack.copy()
        previous = max(
            [previous] + [cosine_similarity(stack[i], campaign.last_step) for i in honest]
        )
        flagged |= {
            players[i].name + ":" + players[i].role
            for i in screen_free_riders(list(stack), campaign.last_step)
        }
        step = aggregate(scenario.rule, stack, samples, f=scenario.f)
        campaign.params = (campaign.params + step).astype(np.float32)
        campaign.last_step = step.astype(np.float32)
    return {
        "scenario": name,
        "seed": seed,
        "rounds": scenario.rounds,
        "max_cos_honest_pair": pair,
        "max_cos_honest_vs_previous_step": previous,
        "min_honest_nearest_over_spread": ratio,
        "min_honest_vs_others_previous_over_spread": earlier_ratio,
        "flagged": sorted(flagged),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 scenarios, 1 seed (a smoke run)")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/free_rider_margins.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = (
        ["four", "free-riders"] if args.quick else ["default", "free-riders", "poisoners", "four"]
    )
    runs = [margins(n, s) for n in names for s in range(1 if args.quick else args.seeds)]
    for r in runs:
        print(
            f"{r['scenario']:<12} seed {r['seed']}: honest pair {r['max_cos_honest_pair']:.4f}, "
            f"honest vs previous step {r['max_cos_honest_vs_previous_step']:.4f}, flagged {r['flagged']}"
        )
    honest_flagged = [r for r in runs if any(f.endswith(":honest") for f in r["flagged"])]
    summary = {
        "threshold": SIMILARITY_THRESHOLD,
        "runs": runs,
        "max_cos_honest_pair": max(r["max_cos_honest_pair"] for r in runs),
        "max_cos_honest_vs_previous_step": max(r["max_cos_honest_vs_previous_step"] for r in runs),
        "spread_fraction": SPREAD_FRACTION,
        "min_honest_nearest_over_spread": min(r["min_honest_nearest_over_spread"] for r in runs),
        "min_honest_vs_others_previous_over_spread": min(
            r["min_honest_vs_others_previous_over_spread"] for r in runs
        ),
        "runs_with_an_honest_site_flagged": len(honest_flagged),
    }
    print(
        f"threshold {SIMILARITY_THRESHOLD}: max honest pair {summary['max_cos_honest_pair']:.4f}, max honest vs "
        f"previous step {summary['max_cos_honest_vs_previous_step']:.4f}, smallest honest nearest/spread "
        f"{summary['min_honest_nearest_over_spread']:.3f} (flagged below {SPREAD_FRACTION}), "
        f"runs flagging an honest site: "
        f"{len(honest_flagged)} of {len(runs)}"
    )
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"written to {args.out}")
    return 1 if honest_flagged else 0


if __name__ == "__main__":
    raise SystemExit(main())
