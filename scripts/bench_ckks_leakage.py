"""Leakage of robust ckks: what a member learns from the published Gram matrix of DP-noised updates.

    .venv/bin/python scripts/bench_ckks_leakage.py            # writes benchmarks/results/bench_ckks_leakage.json
    .venv/bin/python scripts/bench_ckks_leakage.py --quick    # fewer trials; prints only

Robust ckks publishes, to every member, the inner products ``G[a, b] = <u_a, u_b>`` of all
updates (so the squared distances and norms); plain ckks publishes only the aggregate. Two
attacks by a member who also knows its own update(s) and the aggregate, each against the
baseline of what plain ckks already reveals:

1. **Who is similar to whom.** Members come from two groups (two populations: non-IID data);
   the attacker scores each pair by its negative distance and is measured by the ROC AUC of
   "same group" (0.5 = chance, which is the baseline: the aggregate alone says nothing about
   pairs).
2. **Reconstruct a victim's update.** A coalition of ``k`` members knows its own updates and
   the aggregate ``m``; the Gram matrix gives the victim's inner products with each of them,
   so the best linear estimate of the victim's update is its projection onto their span
   (least squares). Measured: cosine similarity with the victim's true update, against the
   baseline estimate ``m`` (the aggregate, which plain ckks reveals; a cosine ignores the norm,
   which the Gram matrix also gives away).

Updates are synthetic: ``u_i = g_group(i) + h_i + z_i``, group directions ``g`` of norm 1,
member heterogeneity ``h`` of norm 0.5, and Gaussian DP noise ``z`` (what DP-SGD adds to a
clipped update) whose norm is ``1 / snr``; ``snr = inf`` is no DP. d = 10,000 values, 10
members (5 per group); the accepted set is everyone (no poisoner), so ``m`` is the mean.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

SNRS = (math.inf, 3.0, 1.0, 0.3, 0.1)
N, D, GROUP = 10, 10_000, 5


def _round(rng: np.random.Generator, snr: float) -> tuple[np.ndarray, np.ndarray]:
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    groups = unit(rng.normal(size=(2, D)))
    labels = np.repeat([0, 1], GROUP)
    x = groups[labels] + 0.5 * unit(rng.normal(size=(N, D)))
    if math.isfinite(snr):
        x += unit(rng.normal(size=(N, D))) / snr
    return x, labels


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    pos, neg = scores[positive], scores[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def attack(snr: float, trials: int, coalition: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    aucs, recon, base = [], [], []
    iu = np.triu_indices(N, 1)
    for _ in range(trials):
        x, labels = _round(rng, snr)
        gram = x @ x.T  # what the key holder publishes (decrypted scalars)
        dist = np.diag(gram)[:, None] + np.diag(gram)[None, :] - 2 * gram
        aucs.append(_auc(-dist[iu], (labels[:, None] == labels[None, :])[iu]))
        mean = x.mean(axis=0)  # the aggregate every mode publishes
        known = list(range(coalition))  # the attackers: members 0..k-1 (group 0)
        for victim in range(coalition, N):
            basis = np.vstack([x[known], mean])  # what the coalition holds
            # the victim's inner products with each basis vector, from the Gram matrix alone
            target = np.append(gram[victim, known], gram[victim].mean())
            coef = np.linalg.lstsq(basis @ basis.T, target, rcond=None)[0]
            recon.append(_cos(coef @ basis, x[victim]))
            base.append(_cos(mean, x[victim]))
    return {
        "snr": None if math.isinf(snr) else snr,
        "coalition": coalition,
        "trials": trials,
        "similarity_auc": float(np.mean(aucs)),
        "similarity_auc_baseline": 0.5,
        "reconstruction_cosine": float(np.mean(recon)),
        "baseline_cosine_aggregate": float(np.mean(base)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 trials; print only")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_ckks_leakage.json"))
    args = ap.parse_args(argv)
    trials = 5 if args.quick else 50
    rows = [attack(snr, trials, k) for snr in SNRS for k in (1, 3)]
    for r in rows:
        print(
            f"snr {r['snr'] or 'inf':>5} coalition {r['coalition']}: same-group AUC {r['similarity_auc']:.3f} "
            f"(chance 0.5); reconstruction cosine {r['reconstruction_cosine']:.3f} vs aggregate "
            f"{r['baseline_cosine_aggregate']:.3f}",
            flush=True,
        )
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "command": "python scripts/bench_ckks_leakage.py",
            "members": N,
            "values": D,
            "groups": 2,
            "note": "synthetic updates: group direction (norm 1) + member heterogeneity (norm 0.5) + "
            "Gaussian DP noise of norm 1/snr",
        }
        args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
