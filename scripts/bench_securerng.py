#!/usr/bin/env python3
"""What secure randomness costs DP-SGD: node.learning.securerng against torch's default RNG.

1. Noise alone: one step's Gaussian noise for a model of 10k, 100k and 1M parameters, as
   Opacus draws it without secure mode (one ``torch.normal``) and as ``SecureRandom.noise``
   draws it (ChaCha20, Box-Muller, four draws summed), median of ``--repeats`` in CPU
   seconds of one thread.
2. A whole local round (``train_local``, DP on) of the breast-cancer MLP and of the 1M-parameter
   ``mlp-wide``, secure_mode on against off, same data and step count.

    .venv/bin/python scripts/bench_securerng.py [--repeats 5] [--json benchmarks/results/bench_securerng.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.data.samples import Standardizer, breast_cancer_split  # noqa: E402
from node.learning.models import build_model, flat_parameters  # noqa: E402
from node.learning.privacy import DPConfig, PrivacyLedger  # noqa: E402
from node.learning.securerng import SecureRandom  # noqa: E402
from node.learning.training import TrainConfig, train_local  # noqa: E402


def cpu_median(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = SecureRandom()
    noise = []
    for n in (10_000, 100_000, 1_000_000):
        ref = torch.zeros(n)
        plain = cpu_median(lambda ref=ref: torch.normal(0.0, 1.0, size=ref.shape), args.repeats)
        secure = cpu_median(lambda ref=ref: rng.noise(1.0, ref), args.repeats)
        noise.append(
            {
                "parameters": n,
                "torch_s": round(plain, 5),
                "secure_s": round(secure, 5),
                "ratio": round(secure / plain, 1),
            }
        )
        print(
            f"noise, {n:>9,} parameters: torch {plain * 1e3:7.2f} ms, secure {secure * 1e3:7.2f} ms"
        )
    site = next(iter(breast_cancer_split(4, seed=0).hospitals.values()))
    site = Standardizer.fit(site).apply(site)
    rounds = []
    for model_name in ("mlp", "mlp-wide"):
        row = {
            "model": model_name,
            "rows": len(site),
            "parameters": flat_parameters(build_model(model_name, site.n_features)).size,
        }
        for secure in (False, True):
            dp = DPConfig(
                noise_multiplier=1.0,
                target_epsilon=1e6,
                steps_per_epoch=10,
                local_epochs=1,
                rounds=10_000,
                secure_mode=secure,
                accountant="rdp",
            )

            def one_round(model_name=model_name, dp=dp) -> None:
                model = build_model(model_name, site.n_features)
                train_local(
                    model, flat_parameters(model), site, PrivacyLedger(dp), TrainConfig(0.1)
                )

            row["secure_s" if secure else "torch_s"] = round(cpu_median(one_round, args.repeats), 4)
        row["ratio"] = round(row["secure_s"] / row["torch_s"], 2)
        rounds.append(row)
        print(
            f"round of 10 DP-SGD steps, {model_name} ({row['parameters']:,} parameters): "
            f"torch RNG {row['torch_s']:.3f} s, secure {row['secure_s']:.3f} s ({row['ratio']}x)"
        )
    report = {
        "command": " ".join(sys.argv),
        "machine": {"platform": platform.platform(), "load_average": list(os.getloadavg())},
        "noise": noise,
        "rounds": rounds,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
