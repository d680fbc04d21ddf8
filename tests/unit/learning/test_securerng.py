"""node.learning.securerng against independent references: RFC 8439's ChaCha20 test vector, scipy's
normal distribution (Kolmogorov-Smirnov) and the binomial law of Poisson-sampled batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from scipy import stats

from node.learning.securerng import SecurePoissonLoader, SecureRandom


def test_uniforms_are_the_top_53_bits_of_the_chacha20_keystream():
    rng = SecureRandom()
    # RFC 8439, appendix A.1, test vector 1: all-zero key and nonce, block counter 0
    rng._stream = Cipher(algorithms.ChaCha20(bytes(32), bytes(16)), mode=None).encryptor()
    first = bytes.fromhex("76b8e0ada0f13d90405d6ae55386bd28")
    u = rng.uniform(2)
    expected = [((int.from_bytes(first[i : i + 8], "little") >> 11) + 0.5) / 2**53 for i in (0, 8)]
    assert u.tolist() == expected


def test_two_sources_never_repeat_each_other():
    assert not np.array_equal(SecureRandom().words(4), SecureRandom().words(4))


def test_standard_normal_passes_kolmogorov_smirnov_against_scipy():
    z = SecureRandom().standard_normal(100_001)
    assert z.shape == (100_001,)
    assert stats.kstest(z, stats.norm.cdf).pvalue > 1e-3


def test_noise_has_the_asked_std_shape_and_dtype():
    ref = torch.zeros(50_000, 3, dtype=torch.float32)
    noise = SecureRandom().noise(2.5, ref)
    assert noise.shape == ref.shape and noise.dtype == torch.float32
    # four draws of N(0, 2.5^2), summed and halved, are N(0, 2.5^2) again
    assert stats.kstest(noise.double().flatten().numpy() / 2.5, stats.norm.cdf).pvalue > 1e-3
    assert torch.equal(SecureRandom().noise(0.0, ref), ref)


def test_poisson_batches_follow_the_binomial_law():
    n, rate, steps = 400, 0.05, 2000
    rng = SecureRandom()
    x, y = torch.arange(n, dtype=torch.float32)[:, None], torch.zeros(n)
    sizes, counts = [], np.zeros(n)
    loader = SecurePoissonLoader(x, y, rate=rate, steps=steps, rng=rng)
    assert len(loader) == steps
    for xb, yb in loader:
        assert len(xb) == len(yb)
        sizes.append(len(xb))
        counts[xb[:, 0].long().numpy()] += 1
    assert len(sizes) == steps
    mean, var = n * rate, n * rate * (1 - rate)  # Binomial(n, q)
    assert abs(np.mean(sizes) - mean) < 4 * np.sqrt(var / steps)
    assert np.var(sizes) == pytest.approx(var, rel=0.15)
    # every example is drawn at rate q: a chi-square test of the per-example counts
    assert stats.chisquare(counts).pvalue > 1e-3


def test_a_bad_rate_is_refused():
    with pytest.raises(ValueError, match="sample rate"):
        SecurePoissonLoader(
            torch.zeros(3, 1), torch.zeros(3), rate=0.0, steps=1, rng=SecureRandom()
        )
