"""The derived CKKS error of a decrypted inner product (node/crypto/ckks/noise.py) against real
SEAL: numpy's float64 Gram matrix of the same vectors is the reference."""

from __future__ import annotations

import numpy as np
import pytest

from node.crypto.ckks.noise import TAIL, inner_product_noise
from node.crypto.ckks.robust import ROBUST_PARAMS, GramEvaluator, RobustKeyHolder


@pytest.mark.parametrize("scale", [0.01, 150.0], ids=["floor", "message"])
def test_the_derived_error_bounds_real_seal_and_is_not_loose(scale):
    """At norm 0.01 the value-independent floor dominates, at 150 the part that grows with the
    norms (fresh noise, the conjugation's key switching). Every error is within the tolerance,
    and the model's standard deviation is that of the errors within a factor of 4."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 3000))
    x *= scale * rng.uniform(0.5, 1.5, (8, 1)) / np.linalg.norm(x, axis=1, keepdims=True)
    holder = RobustKeyHolder()
    evaluator = GramEvaluator(holder.public, holder.evaluation_keys_bytes)
    vectors = [holder.public.load(holder.public.encrypt(row, 1), 1) for row in x]
    got = holder.decrypt_gram(evaluator.gram(vectors, 1), 1, len(x))
    noise, norms = inner_product_noise(ROBUST_PARAMS), np.linalg.norm(x, axis=1)
    sd = np.array([[noise.sd(a, b) for b in norms] for a in norms])
    z = ((got - x @ x.T) / sd)[np.triu_indices(len(x))]
    assert np.abs(z).max() < TAIL
    assert 0.25 < np.sqrt(np.mean(z**2)) < 2.5
