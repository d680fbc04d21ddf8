"""The DP-SGD sample rate the loader uses against the one the noise was calibrated for (issue 15,
section 4), over hospital sizes N = 1..200 and steps_per_epoch in {10, 16, 20, 32}.

For each (steps_per_epoch, N) it replays one campaign (target epsilon 1, delta 1e-5, PRV,
5 rounds x 3 local epochs) with the ledger's own round check, twice:

- ``before``: the loader Opacus built from batches of ceil(N / steps): rate 1 / L and L steps
  an epoch, L = ceil(N / ceil(N / steps)), while calibration and check_round assumed 1 / steps;
- ``after``: :func:`node.learning.training.private_loader` (rate 1 / steps, exactly steps batches).

and reports how many rounds ran and the epsilon spent, by the ledger (PRV) and by Google's
dp-accounting PLD at the rate and step count the loader used.

    python scripts/sweep_sample_rate.py --out benchmarks/results/sample_rate_grid.json
"""

from __future__ import annotations

import argparse
import json
import math
from functools import cache
from pathlib import Path

import torch
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from torch.utils.data import TensorDataset

from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.securerng import SecureRandom
from node.learning.training import private_loader

TARGET, DELTA, ROUNDS, EPOCHS = 1.0, 1e-5, 5, 3


def calibrated(spe: int) -> DPConfig:
    # DP-SGD's steps alone, as the PLD reference composes them (no row-count release)
    return DPConfig(
        target_epsilon=TARGET,
        delta=DELTA,
        steps_per_epoch=spe,
        local_epochs=EPOCHS,
        rounds=ROUNDS,
        accountant="prv",
        count_noise=None,
    ).calibrated()


@cache
def campaign(spe: int, q: float, steps: int) -> dict:
    """Rounds the ledger lets run when each round really takes ``steps`` x EPOCHS steps at ``q``."""
    dp = calibrated(spe)
    ledger = PrivacyLedger(dp)
    rounds = 0
    while rounds < ROUNDS:
        if ledger.projected(dp.steps_per_round) > TARGET * (1 + 1e-3):  # PrivacyLedger.check_round
            break
        ledger.accountant.history.append((dp.noise_multiplier, q, steps * EPOCHS))
        rounds += 1
    total = rounds * steps * EPOCHS
    pld = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-3)
    pld.compose(
        dp_event.SelfComposedDpEvent(
            dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(dp.noise_multiplier)), total
        )
    )
    return {
        "rounds": rounds,
        "epsilon_ledger": round(ledger.spent(), 4),
        "epsilon_pld": round(pld.get_epsilon(DELTA), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sample_rate_grid.json"))
    ap.add_argument("--max-n", type=int, default=200)
    args = ap.parse_args()
    rows, summary = [], {}
    for spe in (10, 16, 20, 32):
        dp = calibrated(spe)
        for n in range(1, args.max_n + 1):
            batches = math.ceil(n / math.ceil(n / spe))
            loader = private_loader(
                TensorDataset(torch.zeros(n, 1), torch.zeros(n)), dp, SecureRandom()
            )
            before = {"q": 1 / batches, "steps_per_epoch": batches} | campaign(
                spe, 1 / batches, batches
            )
            after = {"q": loader.rate, "steps_per_epoch": len(loader)} | campaign(
                spe, loader.rate, len(loader)
            )
            rows.append(
                {
                    "steps_per_epoch": spe,
                    "n": n,
                    "noise_multiplier": dp.noise_multiplier,
                    "before": before,
                    "after": after,
                }
            )
        mine = [r for r in rows if r["steps_per_epoch"] == spe]
        summary[spe] = {
            side: {
                "configs": len(mine),
                "rate_differs": sum(r[side]["q"] != dp.sample_rate for r in mine),
                "ended_early": sum(r[side]["rounds"] < ROUNDS for r in mine),
                "above_target_pld": sum(r[side]["epsilon_pld"] > TARGET for r in mine),
                "max_epsilon_pld": max(r[side]["epsilon_pld"] for r in mine),
            }
            for side in ("before", "after")
        }
        print(spe, json.dumps(summary[spe]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "target_epsilon": TARGET,
                "delta": DELTA,
                "rounds": ROUNDS,
                "local_epochs": EPOCHS,
                "accountant": "prv",
                "summary": summary,
                "rows": rows,
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
