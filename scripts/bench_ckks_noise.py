"""The own-row check's tolerance against real SEAL: largest decrypted-Gram error / derived bound.

    .venv/bin/python scripts/bench_ckks_noise.py            # writes benchmarks/results/bench_ckks_noise.json
    .venv/bin/python scripts/bench_ckks_noise.py --quick    # 2 key draws; prints only

For each layout, fresh keys per draw (:class:`node.crypto.ckks.robust.RobustKeyHolder`), 6 vectors
encrypted, their Gram matrix evaluated and decrypted as in a robust ckks round, and compared with
numpy's float64 ``X X^T``; the figure is the largest ``|error| / bound`` over the draws, the bound
:meth:`node.crypto.ckks.noise.InnerProductNoise.bound` (below 1 everywhere, or a member would
accuse an honest key holder). Layouts: values spread at norm 0.01 (the value-independent floor
dominates) and 150, and "spiked" at 150: one large value in the slots whose roots lie nearest 1,
where the conjugation's key-switching error concentrates (a white-noise model, standard
deviation ``1.24e-9 (|a| + |b|) + 5.0e-9 max(|a|, |b|) + 3.3e-7``, is reported beside it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from node.crypto.ckks.noise import TAIL, inner_product_noise
from node.crypto.ckks.robust import ROBUST_PARAMS, GramEvaluator, RobustKeyHolder


def spread(rng: np.random.Generator, scale: float, d: int = 3000) -> np.ndarray:
    x = rng.normal(size=(6, d))
    return x * scale * rng.uniform(0.5, 1.5, (6, 1)) / np.linalg.norm(x, axis=1, keepdims=True)


def spiked(rng: np.random.Generator, scale: float) -> np.ndarray:
    x = spread(rng, scale / 100, 8192)
    for i, at in enumerate([0, 4096, 1, 4097, 0, 4096]):
        x[i, at] = scale * (1 - 2 * (i % 2))
    return x


def white_sd(a: float, b: float) -> float:
    return 1.24e-9 * (a + b) + 5.0e-9 * max(a, b) + 3.3e-7


def measure(layout, scale: float, draws: int, rng: np.random.Generator) -> dict:
    noise, worst, white, largest = inner_product_noise(ROBUST_PARAMS), 0.0, 0.0, 0.0
    for _ in range(draws):
        x = layout(rng, scale)
        holder = RobustKeyHolder()
        evaluator = GramEvaluator(holder.public, holder.evaluation_keys_bytes)
        vectors = [holder.public.load(holder.public.encrypt(row, 1), 1) for row in x]
        err = np.abs(holder.decrypt_gram(evaluator.gram(vectors, 1), 1, len(x)) - x @ x.T)
        n, d = np.linalg.norm(x, axis=1), x.shape[1]
        bound = np.array([[noise.bound(a, b, d, TAIL) for b in n] for a in n])
        sd = np.array([[white_sd(a, b) for b in n] for a in n])
        worst = max(worst, float((err / bound).max()))
        white = max(white, float((err / sd).max()))
        largest = max(largest, float(err.max()))
    return {
        "layout": layout.__name__,
        "norm": scale,
        "draws": draws,
        "max_error": largest,
        "max_error_over_bound": worst,
        "max_error_over_white_sd": white,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 key draws; print only")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_ckks_noise.json"))
    args = ap.parse_args(argv)
    rng, draws = np.random.default_rng(1), 2 if args.quick else 10
    rows = [
        measure(f, s, draws, rng) for f, s in [(spread, 0.01), (spread, 150.0), (spiked, 150.0)]
    ]
    for r in rows:
        print(
            f"{r['layout']:>6} norm {r['norm']:>6}: max |error| {r['max_error']:.3g}, "
            f"/ bound {r['max_error_over_bound']:.3f}, / white-noise sd {r['max_error_over_white_sd']:.1f}",
            flush=True,
        )
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        noise = inner_product_noise(ROBUST_PARAMS)
        meta = {
            "command": "python scripts/bench_ckks_noise.py",
            "tail": TAIL,
            "noise": noise._asdict(),
        }
        args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
