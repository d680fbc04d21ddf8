#!/usr/bin/env python3
"""Can a hospital game the credit schemes? Each gaming strategy against each scheme, before and
after issue 16, on the shipped 4-hospital scenario (``four``: 120, 60, 30 samples with 20 %
label noise, and a zero-update free-rider), paid through the real contracts on the embedded chain.

The gamer is hospital-c (30 samples). Its share of each scheme's credits is compared with its
share when it plays honestly under the same code (its "honest share"). Strategies:

- ``honest``: trains on its 30 samples and says so;
- ``claim-3000``: trains honestly but claims 3,000 samples;
- ``copy-10`` / ``copy-30``: does not train; sends the most central honest update it has seen
  (the highest cosine with the honest mean) plus Gaussian noise of 10 % / 30 % of its norm
  (Fraboni et al., 2021's disguised free-rider), committing after the site it copies. Under
  commit before reveal (node/peer/reveal.py, the new code) what it has seen is the previous
  round's updates; ``copy-10-unheld`` / ``copy-30-unheld`` are the new code with the hold off
  (``commit_before_reveal = false``: the round's own updates are seen before committing);
- ``copy-30-late``: trains honestly in round 1 and copies (30 %) from round 2: the copier's
  answer to value minting, which mints most in the first rounds, where under the hold there is
  nothing to copy;
- ``honest-plain`` / ``copy-30-plain`` / ``copy-30-late-plain``: as ``honest`` / ``copy-30`` /
  ``copy-30-late`` with
  leave-one-out and Shapley paying their plain values (``novelty = false``, the code before
  novelty valuation, node/incentives/novelty.py); the old column repeats the plain strategy;
- ``honest-pot`` / ``copy-30-pot``: as ``honest`` / ``copy-30`` with every round minting the
  whole budget (``mint = "pot"``, the code before value minting); the old column repeats the
  plain strategy;
- ``stale-10``: the previous global step plus 10 % noise (Lin et al., 2019, disguised);
- ``random``: a random direction at the median honest norm;
- ``honest-exact`` / ``copy-30-exact`` / ``copy-30-late-exact``: as ``honest`` / ``copy-30`` /
  ``copy-30-late`` with leave-one-out's novelty over exact replays only (``replay_draws = 0``,
  the code before noisy replays); the old column repeats the plain strategy;
- ``honest-undeclared`` / ``claim-3000-undeclared``: without declared cohorts
  (``declared_cohorts = false``, the opt-in labelled gameable: claims capped only at the
  round's median claim; the default before it declared cohorts); new code only, the old column
  repeats the plain strategy.

"old" is the code at ``--base`` (default: the commit before issue 16) exported with ``git
archive`` and run in a subprocess, the strategies patched in from outside (claimed counts,
rows replaced); "new" is this tree, the strategies set in the scenario. Also a sweep of the
copier's noise over 0 to 100 % (the screen alone, no chain, 5 seeds x 3 rounds): a copy of the
round's own updates under the old screen (cosine >= 0.999) and the new (against the round's
spread), a copy of the previous round's (all a copier sees under commit before reveal) under
the new (which also compares each update with the other sites' accepted updates of the
previous round), how often honest sites are flagged, and what the previous-round copier is
paid (seed 0, on the chain). The table's rows are seed 0's; ``SPREAD``'s copiers are also run
against their honest baseline at each of the ``--spread-seeds`` seeds (the gamer's share minus
its honest share).

    .venv/bin/python scripts/bench_incentive_gaming.py --seeds 5 --spread-seeds 10 --jobs 2

Writes ``benchmarks/results/incentive_gaming.json`` and prints the tables in Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
GAMER = "hospital-c"
SCHEMES = ("equal", "data-size", "leave-one-out", "shapley-gtg", "reputation")
STRATEGIES: dict[str, dict] = {
    "honest": {},
    "claim-3000": {"claimed_samples": 3000},
    "copy-10": {"role": "free-rider", "free_ride": "copy", "free_ride_noise": 0.1},
    "copy-30": {"role": "free-rider", "free_ride": "copy", "free_ride_noise": 0.3},
    "copy-10-unheld": {
        "role": "free-rider",
        "free_ride": "copy",
        "free_ride_noise": 0.1,
        "scenario": {"commit_before_reveal": False},
    },
    "copy-30-unheld": {
        "role": "free-rider",
        "free_ride": "copy",
        "free_ride_noise": 0.3,
        "scenario": {"commit_before_reveal": False},
    },
    # the adaptive copier under value minting: trains in round 1 (the round that mints most;
    # under the hold there is nothing to copy in it), copies from round 2
    "copy-30-late": {
        "role": "free-rider",
        "free_ride": "copy",
        "free_ride_noise": 0.3,
        "free_ride_from": 2,
    },
    # leave-one-out and Shapley pay their plain values (the code before novelty): what novelty does
    "honest-plain": {"scenario": {"novelty": False}},
    "copy-30-plain": {
        "role": "free-rider",
        "free_ride": "copy",
        "free_ride_noise": 0.3,
        "scenario": {"novelty": False},
    },
    "copy-30-late-plain": {
        "role": "free-rider",
        "free_ride": "copy",
        "free_ride_noise": 0.3,
        "free_ride_from": 2,
        "scenario": {"novelty": False},
    },
    # every round mints the whole budget (the code before value minting): what value minting does
    "honest-pot": {"scenario": {"mint": "pot"}},
    "copy-30-pot": {
        "role": "free-rider",
        "free_ride": "copy",
        "free_ride_noise": 0.3,
        "scenario": {"mint": "pot"},
    },
    "stale-10": {"role": "free-rider", "free_ride": "stale", "free_ride_noise": 0.1},
    "random": {"role": "free-rider", "free_ride": "random"},
    # leave-one-out novelty over exact replays only (the code before noisy replays)
    "honest-exact": {"scenario": {"replay_draws": 0}},
    "copy-30-exact": {
        "role": "free-rider",
        "free_ride": "copy",
        "free_ride_noise": 0.3,
        "scenario": {"replay_draws": 0},
    },
    "copy-30-late-exact": {
        "role": "free-rider",
        "free_ride": "copy",
        "free_ride_noise": 0.3,
        "free_ride_from": 2,
        "scenario": {"replay_draws": 0},
    },
    # without declared cohorts (the opt-in labelled gameable; the default declares them, and the
    # chain refuses a claim above the cohort, so a liar's best response is its cohort): "new" only
    "honest-undeclared": {"scenario": {"declared_cohorts": False}},
    "claim-3000-undeclared": {"claimed_samples": 3000, "scenario": {"declared_cohorts": False}},
}
BASELINE = {
    "copy-30-pot": "honest-pot",
    "copy-30-plain": "honest-plain",
    "copy-30-late-plain": "honest-plain",
    "copy-30-exact": "honest-exact",
    "copy-30-late-exact": "honest-exact",
    "honest-undeclared": "honest-undeclared",
    "claim-3000-undeclared": "honest-undeclared",
}  # else "honest"
SUFFIXES = (
    "-late-plain",
    "-plain",
    "-late-exact",
    "-exact",
    "-undeclared",
    "-unheld",
    "-late",
    "-pot",
)  # new-code-only variants: the old column repeats the plain strategy
NOISES = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
GOAL_POINTS = 5.0
# the copiers of issue 16's last goal, over seeds, paid by novelty and by the plain values
SPREAD = (
    "copy-30",
    "copy-30-late",
    "copy-30-exact",
    "copy-30-late-exact",
    "copy-30-plain",
    "copy-30-late-plain",
)


def _scenario_dict(strategy: str, legacy: bool) -> dict:
    import tomllib

    data = tomllib.loads((REPO / "node/incentives/scenarios/four.toml").read_text())
    groups = data["hospitals"]
    if not legacy:
        spec = dict(STRATEGIES[strategy])
        data.update(spec.pop("scenario", {}))
        groups[2] = {**groups[2], **spec}
    return data


def _patch_legacy(strategy: str, seed: int) -> None:
    """Put the strategy into the old simulator from outside: the claimed count through
    ``SimHospital.samples`` (what the old code commits and weighs), the sent row through
    ``Campaign.updates``. The old simulator screens in address order."""
    from node.incentives import cohort, simulate
    from node.incentives.schemes import cosine_similarity

    spec = STRATEGIES[strategy]
    if "claimed_samples" in spec:
        true = cohort.SimHospital.samples.fget
        cohort.SimHospital.samples = property(
            lambda self: spec["claimed_samples"] if self.name == GAMER else true(self)
        )
    if spec.get("role") != "free-rider":
        return
    campaign_class = getattr(simulate, "Campaign", None) or simulate._Campaign  # private before
    original = campaign_class.updates
    rng = np.random.default_rng([seed, 3])

    def updates(self, round_, players):
        rows = original(self, round_, players)
        names = [h.name for h in players]
        if GAMER not in names:
            return rows
        honest = [rows[i] for i, h in enumerate(players) if h.role == "honest" and h.name != GAMER]
        how = spec["free_ride"]
        if how == "random":
            d = rng.normal(size=rows.shape[1])
            new = d * float(np.median([np.linalg.norm(u) for u in honest])) / np.linalg.norm(d)
        else:
            source = (
                max(honest, key=lambda u: cosine_similarity(u, np.mean(honest, axis=0)))
                if how == "copy"
                else self.last_step
            )
            noise = rng.normal(size=rows.shape[1])
            new = (
                source
                + spec["free_ride_noise"]
                * float(np.linalg.norm(source))
                / np.linalg.norm(noise)
                * noise
            )
        rows[names.index(GAMER)] = new.astype(np.float32)
        return rows

    campaign_class.updates = updates


def run_one(strategy: str, legacy: bool) -> dict:
    """One simulation; the gamer's share of each scheme's credits, in percent."""
    from node.incentives.scenario import scenario_from_dict

    scenario = scenario_from_dict(_scenario_dict(strategy, legacy))
    if legacy:
        _patch_legacy(strategy, scenario.seed)
    return gamer_shares(scenario)


def gamer_shares(scenario) -> dict:
    """Simulate ``scenario`` on a fresh embedded chain: the gamer's share of each scheme's
    credits (percent) and the rounds in which it was rejected."""
    from node.incentives.simulate import simulate

    result = simulate(scenario, progress=False)
    shares = {}
    for scheme in SCHEMES:
        total = sum(result.computed[scheme].values())
        shares[scheme] = (
            0.0 if total == 0 else round(100 * result.computed[scheme][GAMER] / total, 2)
        )
    rejected = sorted(
        {f"r{r.round}:{r.rejected.get(GAMER)}" for r in result.rounds if GAMER in r.rejected}
    )
    return {"shares": shares, "gamer_rejected": rejected}


def _export_base(base: str, into: Path) -> Path:
    tree = into / "medmesh-base"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", base, "node", "ledger", "contracts", "scripts"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "node_modules").symlink_to((REPO / "node_modules").resolve())
    return tree


def run_legacy(strategy: str, tree: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, __file__, "--one", strategy, "--legacy"],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=1200,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _catch_rates(noise: float, seeds: int, held: bool) -> dict:
    """Screen a copier at ``noise`` over ``seeds`` x the scenario's rounds (no chain): the share
    of trials in which the copy is flagged, old screen (cosine >= 0.999) and new (against the
    round's spread), and the honest updates flagged. ``held``: commit before reveal, the copy is
    of the previous round (round 1, with nothing to copy, is left out of the trials)."""
    from node.consensus.rules import aggregate
    from node.incentives.cohort import build_cohort
    from node.incentives.scenario import scenario_from_dict
    from node.incentives.simulate import Campaign

    caught = {"old": 0, "new": 0}
    honest_flagged = {"old": 0, "new": 0}
    trials = honest_total = 0
    for seed in range(seeds):
        data = _scenario_dict("copy-10", legacy=False)
        data["hospitals"][2]["free_ride_noise"] = noise
        scenario = replace(scenario_from_dict(data), seed=seed, commit_before_reveal=held)
        cohort = build_cohort(scenario)
        campaign = Campaign(scenario, cohort)
        players = list(cohort.hospitals)
        for t in range(1, scenario.rounds + 1):
            stack = campaign.updates(t, players)
            order = campaign.commit_order(players)
            if not (held and t == 1):
                gamer = [h.name for h in players].index(GAMER)
                honest = [i for i, h in enumerate(players) if h.role == "honest"]
                for label, kw in (
                    ("old", {"spread_fraction": 0.0, "previous": False}),
                    ("new", {}),
                ):
                    flags = campaign.screen(stack, order, players, **kw)
                    caught[label] += gamer in flags
                    honest_flagged[label] += sum(i in flags for i in honest)
                trials += 1
                honest_total += len(honest)
            flags = campaign.screen(stack, order, players)
            kept = [i for i in order if i not in flags]
            step = aggregate(scenario.rule, stack[kept], f=scenario.f)
            campaign.advance(step, {players[i].name: stack[i] for i in kept})
    return {
        "trials": trials,
        "caught_old": round(caught["old"] / trials, 3),
        "caught_new": round(caught["new"] / trials, 3),
        "honest_flagged_old": honest_flagged["old"],
        "honest_flagged_new": honest_flagged["new"],
        "honest_updates": honest_total,
    }


def sweep(seeds: int) -> list[dict]:
    """The copier's noise against the screens: a copy of the round's own updates (``current``:
    what a copier could do before commit before reveal) and of the previous round's
    (``previous``: all it can copy now), and what the previous-round copier is paid (seed 0,
    on the chain)."""
    from node.incentives.scenario import scenario_from_dict

    rows = []
    for noise in NOISES:
        data = _scenario_dict("copy-10", legacy=False)
        data["hospitals"][2]["free_ride_noise"] = noise
        row = {
            "noise": noise,
            "current": _catch_rates(noise, seeds, held=False),
            "previous": _catch_rates(noise, seeds, held=True),
            "previous_paid": gamer_shares(scenario_from_dict(data))["shares"],
        }
        rows.append(row)
        print(
            f"  noise {noise:.2f}: current-round copy caught old {row['current']['caught_old']:.0%}, new "
            f"{row['current']['caught_new']:.0%}; previous-round copy caught {row['previous']['caught_new']:.0%}, "
            f"paid {row['previous_paid']}",
            flush=True,
        )
    return rows


def _seeded_shares(strategy: str, seed: int) -> dict:
    import torch

    from node.incentives.scenario import scenario_from_dict

    torch.set_num_threads(1)
    scenario = replace(scenario_from_dict(_scenario_dict(strategy, legacy=False)), seed=seed)
    return gamer_shares(scenario)["shares"]


def seed_spread(
    seeds: int, strategies: tuple[str, ...] = SPREAD, jobs: int = 1
) -> dict[str, list[dict]]:
    """The table's rows are seed 0's; here ``strategies`` against their honest baseline
    (``BASELINE``, else ``honest``) at each of ``seeds`` seeds (new code, on the chain, ``jobs``
    campaigns at a time): the gamer's share minus its honest share, points."""
    from concurrent.futures import ProcessPoolExecutor

    baselines = sorted({BASELINE.get(s, "honest") for s in strategies})
    runs = [(s, seed) for seed in range(seeds) for s in (*baselines, *strategies)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        done = dict(zip(runs, pool.map(_seeded_shares, *zip(*runs, strict=True)), strict=True))
    out: dict[str, list[dict]] = {s: [] for s in strategies}
    for seed in range(seeds):
        for s in strategies:
            base = done[BASELINE.get(s, "honest"), seed]
            excess = {k: round(done[s, seed][k] - base[k], 2) for k in SCHEMES}
            out[s].append({"seed": seed, "excess_points": excess})
            print(f"  seed {seed} {s}: over its honest share {excess}", flush=True)
    return out


def markdown(table: dict, sweep_rows: list[dict], spread: dict[str, list[dict]]) -> str:
    lines = ["| strategy | " + " | ".join(SCHEMES) + " |", "|---|" + "---|" * len(SCHEMES)]
    for strategy in STRATEGIES:
        cells = []
        for scheme in SCHEMES:
            old, new = (
                table["old"][strategy]["shares"][scheme],
                table["new"][strategy]["shares"][scheme],
            )
            honest_new = table["new"][BASELINE.get(strategy, "honest")]["shares"][scheme]
            mark = (
                ""
                if strategy.startswith("honest") or new <= honest_new + GOAL_POINTS
                else " **over**"
            )
            cells.append(f"{old:.1f} → {new:.1f}{mark}")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| copy noise | this round's update: caught, old / new screen | previous round's: caught "
        "(new screen) | honest flagged | previous-round copier paid: LOO / Shapley / reputation |",
        "|---|---|---|---|---|",
    ]
    for r in sweep_rows:
        cur, prev, paid = r["current"], r["previous"], r["previous_paid"]
        lines.append(
            f"| {r['noise']:.0%} | {cur['caught_old']:.0%} / {cur['caught_new']:.0%} | "
            f"{prev['caught_new']:.0%} | {cur['honest_flagged_new'] + prev['honest_flagged_new']} of "
            f"{cur['honest_updates'] + prev['honest_updates']} | {paid['leave-one-out']:.1f} / "
            f"{paid['shapley-gtg']:.1f} / {paid['reputation']:.1f} |"
        )
    lines += [
        "",
        "| strategy, seed | " + " | ".join(SCHEMES) + " |",
        "|---|" + "---|" * len(SCHEMES),
    ]
    for strategy, rows in spread.items():
        for r in rows:
            cells = [
                f"{v:+.1f}" + (" **over**" if v > GOAL_POINTS else "")
                for v in (r["excess_points"][k] for k in SCHEMES)
            ]
            lines.append(f"| {strategy}, {r['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--base", default="2da4825", help="the commit before issue 16 (the 'old' column)"
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds of the noise sweep")
    p.add_argument(
        "--spread-seeds", type=int, default=10, help="seeds the copiers are run at against honest"
    )
    p.add_argument("--jobs", type=int, default=1, help="campaigns of the seed spread at a time")
    p.add_argument("--one", choices=tuple(STRATEGIES), help=argparse.SUPPRESS)
    p.add_argument("--legacy", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/incentive_gaming.json")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.one:
        print(json.dumps(run_one(args.one, args.legacy)))
        return 0
    table: dict[str, dict] = {"old": {}, "new": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tree = _export_base(args.base, Path(tmp))
        for strategy in STRATEGIES:
            legacy = next(
                (strategy.removesuffix(s) for s in SUFFIXES if strategy.endswith(s)), strategy
            )
            table["old"][strategy] = table["old"].get(legacy) or run_legacy(legacy, tree)
            table["new"][strategy] = run_one(strategy, legacy=False)
            print(
                f"{strategy}: old {table['old'][strategy]['shares']}\n{'':>{len(strategy)}}  new "
                f"{table['new'][strategy]['shares']}",
                flush=True,
            )
    print("noise sweep:", flush=True)
    sweep_rows = sweep(args.seeds)
    print("seed spread:", flush=True)
    spread = seed_spread(args.spread_seeds, jobs=args.jobs)
    over = {
        s: [
            k
            for k in SCHEMES
            if table["new"][s]["shares"][k]
            > table["new"][BASELINE.get(s, "honest")]["shares"][k] + GOAL_POINTS
        ]
        for s in STRATEGIES
        if not s.startswith("honest")
    }
    result = {
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "scenario": "four",
        "gamer": GAMER,
        "base": args.base,
        "goal_points": GOAL_POINTS,
        "strategies": STRATEGIES,
        "shares_percent": table,
        "over_goal_new": over,
        "noise_sweep": sweep_rows,
        "seed_spread": spread,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n" + markdown(table, sweep_rows, spread))
    print(f"\nover honest share + {GOAL_POINTS:g} points (new code): {over}\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
