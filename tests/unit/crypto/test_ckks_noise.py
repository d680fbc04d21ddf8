"""The derived CKKS error of a decrypted inner product (node/crypto/ckks/noise.py) against real
SEAL: numpy's float64 Gram matrix of the same vectors is the reference."""

from __future__ import annotations

import numpy as np
import pytest

from node.crypto.ckks.noise import TAIL, inner_product_noise
from node.crypto.ckks.robust import ROBUST_PARAMS, GramEvaluator, RobustKeyHolder


def _spread(rng, scale):
    x = rng.normal(size=(6, 3000))
    return x * scale * rng.uniform(0.5, 1.5, (6, 1)) / np.linalg.norm(x, axis=1, keepdims=True)


def _spiked(rng, scale):
    """One large value in the slots whose roots lie nearest 1 (values 0, 1, 4096, 4097 of a
    chunk), where the conjugation's key-switching error concentrates, and a small spread."""
    x = _spread(rng, scale / 100).repeat(2, axis=1)[:, :8192]
    for i, at in enumerate([0, 4096, 1, 4097, 0, 4096]):
        x[i, at] = scale * (1 - 2 * (i % 2))
    return x


@pytest.mark.parametrize(
    "layout, scale",
    [(_spread, 0.01), (_spread, 150.0), (_spiked, 150.0)],
    ids=["floor", "spread", "spiked"],
)
def test_every_error_of_real_seal_is_within_the_bound(layout, scale):
    """Norm 0.01: the value-independent floor dominates; 150: the terms that grow with the norms.
    Two fresh key sets each; every decrypted entry within the bound, whose floor part (10 sds)
    still exceeds the largest measured error."""
    rng = np.random.default_rng(7)
    noise = inner_product_noise(ROBUST_PARAMS)
    for _ in range(2):
        x = layout(rng, scale)
        holder = RobustKeyHolder()
        evaluator = GramEvaluator(holder.public, holder.evaluation_keys_bytes)
        vectors = [holder.public.load(holder.public.encrypt(row, 1), 1) for row in x]
        got = holder.decrypt_gram(evaluator.gram(vectors, 1), 1, len(x))
        norms, d = np.linalg.norm(x, axis=1), x.shape[1]
        bound = np.array([[noise.bound(a, b, d, TAIL) for b in norms] for a in norms])
        assert np.all(np.abs(got - x @ x.T) <= bound)
    assert noise.bound(1.0, 1.0, 8192, TAIL) < 2e-5  # the tolerance stays far below unit norms
