#!/usr/bin/env python3
"""Detection rates and false alarms of a hospital's local alerts (issue 21, "Measure").

Campaigns of 4 breast-cancer hospitals run in process with the peers' arithmetic
(:func:`node.sim.simulation.run_campaign`: DP-SGD per site, the node defaults lr 2.0, ε 1 over the
campaign, one local step per round). Its ``protect`` hook sees each round's stack of deltas,
which is what a peer opens under ``sealed`` protection: there the scenario's attacker (site 3)
replaces its delta, and every honest hospital runs :mod:`node.monitoring.alerts` with the node's
default thresholds, scoring the new global model on its own validation rows (site k's share of
the held-out split) exactly as :class:`node.service.metrics.Monitor` does.

Scenarios, from round ``--attack-from`` on, under ``fedavg`` (the weak setting: no robust rule):
- ``clean``: no attacker (false alarms);
- ``scaling``: the attacker boosts its own update 5x (Bhagoji et al. 2019 boost by n = 4 and more);
- ``sign_flip``: the attacker sends minus the honest mean (Damaskinos et al. 2018 at scale 1);
- ``label_flip``: the attacker trains on its rows with every label flipped (Fang et al. 2020);
- ``backdoor``: the attacker trains (honest DP-SGD) on its rows plus 30 % triggered copies
  (features 0-2 set to 6 standardized units, labelled benign; BadNets, Gu et al. 2017, in FL as
  Bagdasaryan et al. 2020 without the boost); ``backdoor_boost``: the same, its update boosted
  4x (model replacement, gamma = n); ``backdoor_success_final`` is the share of triggered
  held-out malignant rows the final global model calls benign (for every scenario, so the clean
  row gives the trigger's own effect);
- ``legacy_scanner``: no attacker, but site 3's rows turn "legacy scanner": every feature goes
  through the affine map ``x -> a x + b sd_pooled`` (``--scanner-scale`` a, ``--scanner-shift`` b),
  and site 3 trains on the distorted rows from then on.

Reported per scenario: rounds where an anomalous-update alert names the attacker (detection)
or names an honest hospital (false alarm), and accuracy-drop / bias alerts at honest hospitals
(the rule as the node runs it: DeLong's paired test against every earlier round, Bonferroni over
the campaign's pairs of rounds at ``--auc-alpha``). Everything is seeded from the campaign's seed:
the split, the model, the drift windows and, ``secure_mode`` being off for speed, torch's default
RNG, from which Opacus draws the DP noise and the Poisson sampling; a rerun gives the same table.
Every hospital also runs the drift rule each round (:func:`feature_drift` of the standardized
mean differences of its current rows against the pooled statistics the standardizer agreed on,
as :class:`~node.service.metrics.Monitor` does); its "current rows" are a random ``--window``
share of its rows, redrawn each round (patients of the recent weeks), so the clean campaigns'
drift false alarms include sampling noise rather than comparing a fixed table with itself.

    .venv/bin/python scripts/bench_alerts.py --json benchmarks/results/bench_alerts.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from node.adversary.attacks import add_backdoor, backdoor_success, flip_labels, sign_flip  # noqa: E402
from node.consensus.rules import aggregate  # noqa: E402
from node.data.samples import FeatureStats, Standardizer, breast_cancer_split  # noqa: E402
from node.learning.evaluation import evaluate, predict_logits  # noqa: E402
from node.learning.models import build_model, load_flat_parameters  # noqa: E402
from node.learning.privacy import DPConfig, PrivacyLedger  # noqa: E402
from node.learning.training import TrainConfig, train_local  # noqa: E402
from node.monitoring.alerts import (
    AlertThresholds,
    AucComponents,
    accuracy_drop,
    anomalous_updates,
    campaign_z,
    feature_drift,
    standardized_mean_differences,
)  # noqa: E402
from node.sim.simulation import run_campaign  # noqa: E402

SCENARIOS = (
    "clean",
    "scaling",
    "sign_flip",
    "label_flip",
    "backdoor",
    "backdoor_boost",
    "legacy_scanner",
)
POISONING = ("scaling", "sign_flip", "label_flip", "backdoor", "backdoor_boost")
BOOST = 4.0  # model replacement's gamma = n (Bagdasaryan et al. 2020), n = 4 hospitals
#: node.adversary.attacks.add_backdoor's defaults, as scripts/bench_robust.py uses them: 30 % extra rows with
#: features 0, 1, 2 (mean radius, texture, perimeter) at 6 standardized units, labelled 0 (benign)
BACKDOOR = {"target": 0.0, "trigger_features": (0, 1, 2), "trigger_value": 6.0}
ATTACKER = 3
LR = 2.0


def campaign(
    scenario: str,
    seed: int,
    rounds: int,
    attack_from: int,
    th: AlertThresholds,
    window: float = 0.7,
    scanner: tuple[float, float] = (1.2, 0.25),
    rule: str = "fedavg",
) -> dict:
    torch.manual_seed(
        seed
    )  # secure_mode off: DP sampling and noise come from torch's default RNG, seeded here
    split = breast_cancer_split(4, seed=seed)
    raw = list(split.hospitals.values())
    total = FeatureStats.of(raw[0])
    for site in raw[1:]:
        total = total + FeatureStats.of(site)
    std = Standardizer.from_stats(total)
    sites = [std.apply(s) for s in raw]
    raw_x = [s.x.reshape(len(s), -1).astype(np.float64) for s in raw]
    drift_base: list[np.ndarray | None] = [None] * 4
    window_rng = np.random.default_rng(seed + 10_000)
    vals = [std.apply(split.test.subset(np.arange(k, len(split.test), 4))) for k in range(4)]
    dp = DPConfig(
        target_epsilon=1.0,
        delta=1e-5,
        steps_per_epoch=1,
        local_epochs=1,
        rounds=rounds,
        accountant="prv",
        secure_mode=False,
    )
    model = build_model("logreg", sites[0].n_features, seed=seed)
    from node.learning.models import flat_parameters

    state = {"params": flat_parameters(model), "round": 0}
    poisoned_rows = (
        add_backdoor(sites[ATTACKER], seed=seed, **BACKDOOR)
        if scenario.startswith("backdoor")
        else flip_labels(sites[ATTACKER])
    )
    flip_ledger = PrivacyLedger(dp, warn_if_off=False)
    auc_z = campaign_z(th.auc_alpha, rounds)
    test = std.apply(split.test)
    eval_model = build_model("logreg", sites[0].n_features, seed=seed)
    auc_hist: list[list[AucComponents]] = [
        [] for _ in range(4)
    ]  # each site's validation AUC, every round
    final_auc: list[float] = [float("nan")] * 4
    out = {
        "attacked_rounds": 0,
        "attacker_flagged": 0,
        "honest_flagged": 0,
        "accuracy_drop": 0,
        "accuracy_drop_attacked": 0,
        "rounds": rounds,
        "drift_detected": 0,
        "drift_false_alarm": 0,
    }
    poisoned = scenario in POISONING

    def drift_check(r: int) -> None:
        """Each hospital's drift rule on a window of its current rows (before this round's map)."""
        flagged = set()
        for k in range(4):
            rows = raw_x[k][window_rng.random(len(raw_x[k])) < window]
            smd = standardized_mean_differences(rows, std.mean, std.std)
            if drift_base[k] is None:
                drift_base[k] = smd
            elif feature_drift(smd, drift_base[k], r, th.drift_smd):
                flagged.add(k)
        distorted = scenario == "legacy_scanner" and r >= attack_from
        out["drift_detected"] += distorted and ATTACKER in flagged
        out["drift_false_alarm"] += bool(flagged - ({ATTACKER} if distorted else set()))

    weights_all = [float(len(s)) for s in sites]

    def protect(deltas: np.ndarray, weights: list[float], rule: str) -> np.ndarray:
        r = state["round"] = state["round"] + 1
        deltas = deltas.copy()
        attacked = scenario != "clean" and r >= attack_from
        drift_check(r)
        if attacked and poisoned:
            honest = np.delete(deltas, ATTACKER, axis=0)
            if scenario == "scaling":
                deltas[ATTACKER] = 5.0 * deltas[ATTACKER]
            elif scenario == "sign_flip":
                deltas[ATTACKER] = sign_flip(honest, 1)[0]
            else:  # label_flip, backdoor: trains honestly on its poisoned rows; backdoor_boost scales that
                deltas[ATTACKER] = train_local(
                    eval_model,
                    state["params"],
                    poisoned_rows,
                    flip_ledger,
                    TrainConfig(LR, seed=seed * 7919 + r, device="cpu"),
                ).delta
                deltas[ATTACKER] *= BOOST if scenario == "backdoor_boost" else 1.0
        out["attacked_rounds"] += attacked
        step = aggregate(rule, deltas, weights_all, f=1)
        alerts = anomalous_updates({f"site{k}": deltas[k] for k in range(4)}, step, r, th)
        flagged = {a.subject for a in alerts}
        out["attacker_flagged"] += attacked and f"site{ATTACKER}" in flagged
        out["honest_flagged"] += bool(flagged - {f"site{ATTACKER}"} if poisoned else flagged)
        state["params"] = (state["params"] + step).astype(np.float32)
        load_flat_parameters(eval_model, state["params"])
        drop = False
        for k in range(4):
            if poisoned and k == ATTACKER:
                continue
            parts = AucComponents.of(vals[k].y, predict_logits(eval_model, vals[k]))
            drop |= accuracy_drop(auc_hist[k], parts, r, th.auc_drop, auc_z) is not None
            auc_hist[k].append(parts)
            final_auc[k] = evaluate(eval_model, vals[k]).auc
        out["accuracy_drop"] += drop
        out["accuracy_drop_attacked"] += drop and attacked
        if (
            scenario == "legacy_scanner" and r + 1 == attack_from
        ):  # site 3 trains on the new scanner's rows
            a, b = scanner
            raw_x[ATTACKER] = a * raw_x[ATTACKER] + b * std.std
            shape = sites[ATTACKER].x.shape
            sites[ATTACKER].x[:] = (
                ((raw_x[ATTACKER] - std.mean) / std.std).astype(np.float32).reshape(shape)
            )
        return step

    run_campaign("logreg", sites, dp, learning_rate=LR, rule=rule, seed=seed, protect=protect)
    out["final_auc_mean_honest"] = float(
        np.nanmean([a for k, a in enumerate(final_auc) if auc_hist[k]])
    )
    out["backdoor_success"] = backdoor_success(
        eval_model, test, **BACKDOOR
    )  # the final global model
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--attack-from", type=int, default=4)
    ap.add_argument(
        "--auc-alpha",
        type=float,
        default=AlertThresholds().auc_alpha,
        help="campaign-wide false-alarm rate of the accuracy-drop rule",
    )
    ap.add_argument(
        "--rule", default="fedavg", help="aggregation rule (node.consensus.rules.RULES), f = 1"
    )
    ap.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    ap.add_argument(
        "--window", type=float, default=0.7, help="share of a site's rows in its current window"
    )
    ap.add_argument("--scanner-scale", type=float, default=1.2)
    ap.add_argument(
        "--scanner-shift", type=float, default=0.25, help="in pooled standard deviations"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    th = AlertThresholds(auc_alpha=args.auc_alpha)
    started = time.perf_counter()
    result: dict = {
        "thresholds": th.__dict__,
        "seeds": args.seeds,
        "rounds": args.rounds,
        "attack_from": args.attack_from,
        "rule": args.rule,
        "auc_z": round(campaign_z(th.auc_alpha, args.rounds), 4),
        "window": args.window,
        "backdoor": {**BACKDOOR, "trigger_features": list(BACKDOOR["trigger_features"])},
        "scanner": {"scale": args.scanner_scale, "shift_sd": args.scanner_shift},
        "scenarios": {},
    }
    for scenario in args.scenarios:
        runs = [
            campaign(
                scenario,
                seed,
                args.rounds,
                args.attack_from,
                th,
                args.window,
                (args.scanner_scale, args.scanner_shift),
                args.rule,
            )
            for seed in range(args.seeds)
        ]
        attacked = sum(r["attacked_rounds"] for r in runs)
        total = sum(r["rounds"] for r in runs)
        result["scenarios"][scenario] = {
            "campaigns": len(runs),
            "rounds": total,
            "attacked_rounds": attacked,
            "anomalous_update_detection_rate": (sum(r["attacker_flagged"] for r in runs) / attacked)
            if attacked
            else None,
            "campaigns_with_attacker_flagged": sum(r["attacker_flagged"] > 0 for r in runs),
            "rounds_with_honest_flagged": sum(r["honest_flagged"] for r in runs),
            "rounds_with_accuracy_drop": sum(r["accuracy_drop"] for r in runs),
            "campaigns_with_accuracy_drop_after_attack": sum(
                r["accuracy_drop_attacked"] > 0 for r in runs
            ),
            "drift_detection_rate": (sum(r["drift_detected"] for r in runs) / attacked)
            if scenario == "legacy_scanner" and attacked
            else None,
            "campaigns_with_drift_detected": sum(r["drift_detected"] > 0 for r in runs),
            "rounds_with_drift_false_alarm": sum(r["drift_false_alarm"] for r in runs),
            "final_auc_mean_honest": round(
                float(np.mean([r["final_auc_mean_honest"] for r in runs])), 4
            ),
            "backdoor_success_final": round(
                float(np.mean([r["backdoor_success"] for r in runs])), 4
            ),
        }
        print(scenario, json.dumps(result["scenarios"][scenario]), flush=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["command"] = "scripts/bench_alerts.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
