"""Secure aggregation arithmetic (Bonawitz et al. 2017): exact sums with dropouts, Shamir
sharing, and masked inputs that look uniform. References are numpy sums of the fixed-point
inputs and Lagrange interpolation written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from node.crypto.secagg import shamir
from node.crypto.secagg.masking import (
    MaskSecrets,
    RingParams,
    SecAggError,
    decode_fixed,
    default_threshold,
    encode_fixed,
    mask_input,
    share_secrets,
    unmask_sum,
)

CTX = b"31337|0xledger|7"
PEERS = [f"0x{c * 40}" for c in "12345"]


def run_protocol(xs: dict[str, np.ndarray], dropped: set[str], params: RingParams, threshold: int):
    """Every participant masks; the dropped ones never send y; survivors' shares reconstruct."""
    secrets = {p: MaskSecrets.generate() for p in xs}
    keys = {p: s.mask_public() for p, s in secrets.items()}
    shares = {
        p: share_secrets(secrets[p], list(xs), threshold) for p in xs
    }  # owner -> holder -> (x, yb, ys)
    masked = {
        p: mask_input(xs[p], p, secrets[p], keys, CTX, params) for p in xs if p not in dropped
    }
    survivors = sorted(masked)
    seeds = {
        u: shamir.reconstruct([shares[u][h][:2] for h in survivors], threshold, 32)
        for u in survivors
    }
    dkeys = {
        d: shamir.reconstruct(
            [(shares[d][h][0], shares[d][h][2]) for h in survivors], threshold, 32
        )
        for d in dropped
    }
    return masked, unmask_sum(masked, keys, seeds, dkeys, CTX, params)


@pytest.mark.parametrize("ring_bits", [32, 64])
@pytest.mark.parametrize("drop", [0, 1, 2])
def test_exact_sum_with_dropouts(ring_bits, drop):
    params = RingParams(ring_bits, 16)
    rng = np.random.default_rng(drop)
    floats = {p: rng.normal(0, 3, 1000) for p in PEERS}
    xs = {p: encode_fixed(v, params, len(PEERS)) for p, v in floats.items()}
    dropped = set(PEERS[1 : 1 + drop])
    _, total = run_protocol(xs, dropped, params, default_threshold(len(PEERS)))
    # reference: numpy's integer sum of the survivors' fixed-point values, wrapped into the ring
    ref = sum(np.rint(floats[p] * 2**16).astype(np.int64) for p in PEERS if p not in dropped)
    assert np.array_equal(total, ref.astype(params.dtype))
    assert np.array_equal(decode_fixed(total, params), ref / 2**16)


def test_a_masked_input_is_indistinguishable_from_uniform():
    params = RingParams(32, 16)
    xs = {
        p: encode_fixed(np.full(20000, 1.5), params, 5) for p in PEERS
    }  # a constant, very non-uniform input
    masked, _ = run_protocol(xs, set(), params, 3)
    y = masked[PEERS[0]]
    counts = np.bincount((y >> np.uint32(24)).astype(np.int64), minlength=256)  # top byte: 256 bins
    assert stats.chisquare(counts).pvalue > 1e-4
    mean = y.astype(np.float64).mean() / 2**32  # uniform on [0, 1): mean 1/2, sd 1/sqrt(12 n)
    assert abs(mean - 0.5) < 5 / np.sqrt(12 * y.size)
    assert (y == xs[PEERS[0]]).sum() <= 5  # the input does not show through


def test_too_many_dropouts_cannot_be_unmasked():
    params = RingParams()
    xs = {p: encode_fixed(np.ones(10), params, 5) for p in PEERS}
    with pytest.raises(shamir.ShamirError, match="need 3 shares"):
        run_protocol(xs, set(PEERS[:3]), params, 3)


def test_shamir_against_hand_worked_lagrange():
    shares = shamir.split(b"\x00" * 31 + b"\x2a", 5, 3)
    # any 3 points; Lagrange at 0 written out for x = 2, 4, 5
    (x1, y1), (x2, y2), (x3, y3) = shares[1], shares[3], shares[4]
    p = shamir.PRIME
    l1 = x2 * x3 * pow((x2 - x1) * (x3 - x1), -1, p)
    l2 = x1 * x3 * pow((x1 - x2) * (x3 - x2), -1, p)
    l3 = x1 * x2 * pow((x1 - x3) * (x2 - x3), -1, p)
    assert (y1 * l1 + y2 * l2 + y3 * l3) % p == 42
    assert shamir.reconstruct([shares[1], shares[3], shares[4]], 3, 32)[-1] == 42
    with pytest.raises(
        shamir.ShamirError, match="wrong shares"
    ):  # a forged share lands far off 32 bytes
        shamir.reconstruct(shares[:2] + [(3, 12345)], 3, 32)


def test_bad_parameters_fail_clearly():
    with pytest.raises(SecAggError, match="outside the fixed-point range"):
        encode_fixed(np.array([1e6]), RingParams(32, 16), 4)
    with pytest.raises(SecAggError, match="strict majority"):
        share_secrets(MaskSecrets.generate(), PEERS[:4], 2)
    with pytest.raises(SecAggError, match="ring_bits"):
        RingParams(48)
