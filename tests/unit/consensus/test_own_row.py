"""A member's check of its own row of the key holder's scalars (robust_audit.check_own_row),
against numpy: the true Gram matrix ``X X^T`` and the true sum of the accepted rows, then
falsifications just inside and just outside the tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from node.consensus.robust_audit import (
    FACTOR_BITS,
    OwnRow,
    check_own_row,
    factor_integers,
    row_tolerance,
    select_from_gram,
)
from node.crypto.ckks.noise import TAIL, inner_product_noise
from node.crypto.ckks.robust import ROBUST_PARAMS, scalar_bound

NOISE, BOUND = inner_product_noise(ROBUST_PARAMS), scalar_bound(ROBUST_PARAMS)


def _round(clip: bool):
    rng = np.random.default_rng(3)
    base = rng.normal(0, 0.1, 400)
    x = base + rng.normal(0, 0.05, (6, 400))
    x[5] = -4.0 * base  # the poisoner, last
    gram = x @ x.T
    chosen = select_from_gram("multi-krum", gram, f=1, clip=clip)
    s = factor_integers(chosen.scales[chosen.accepted]) / 2.0**FACTOR_BITS
    total = (s[:, None] * x[chosen.accepted]).sum(axis=0)
    return x, gram, chosen, total


def _check(x, gram, chosen, total, row):
    check_own_row(OwnRow(x[row], total, row), gram, chosen, NOISE, bound=BOUND, tail=TAIL)


def _tol(x, gram, chosen, total, row):
    return row_tolerance(OwnRow(x[row], total, row), gram, chosen, NOISE, TAIL)


@pytest.mark.parametrize("clip", [False, True], ids=["plain", "norm-bound"])
def test_the_true_scalars_pass_every_row(clip):
    x, gram, chosen, total = _round(clip)
    assert 5 not in chosen.accepted
    for row in range(len(x)):
        _check(x, gram, chosen, total, row)


@pytest.mark.parametrize("row", [0, 5], ids=["accepted", "left-out"])
def test_the_norm_tolerance_edge(row):
    x, gram, chosen, total = _round(False)
    tol = _tol(x, gram, chosen, total, row).norm
    assert 0 < tol < 1e-4 * gram[row, row]
    for factor, passes in [(0.99, True), (1.01, False)]:
        g = gram.copy()
        g[row, row] += factor * tol
        if passes:
            _check(x, g, chosen, total, row)
        else:
            with pytest.raises(ValueError, match="squared norm"):
                _check(x, g, chosen, total, row)


@pytest.mark.parametrize("clip", [False, True], ids=["plain", "norm-bound"])
@pytest.mark.parametrize("row", [0, 5], ids=["accepted", "left-out"])
def test_the_row_sum_tolerance_edge(row, clip):
    x, gram, chosen, total = _round(clip)
    c = next(c for c in chosen.accepted if c != row)
    s = factor_integers(chosen.scales[[c]])[0] / 2.0**FACTOR_BITS
    tol = _tol(x, gram, chosen, total, row).row_sum
    for factor, passes in [(0.99, True), (1.01, False)]:
        g = gram.copy()
        g[row, c] = g[c, row] = gram[row, c] - factor * tol / s
        if passes:
            _check(x, g, chosen, total, row)
        else:
            with pytest.raises(ValueError, match="row sums to"):
                _check(x, g, chosen, total, row)


def test_falsifications_caught_and_the_one_left():
    x, gram, chosen, total = _round(False)
    a, (c1, c2) = 5, [c for c in chosen.accepted][:2]
    scaled = gram.copy()  # the row of a member whose ciphertext was multiplied by 30
    scaled[a, :] *= 30
    scaled[:, a] *= 30
    nan = gram.copy()  # "out of range": the victim left out
    nan[a, a] = np.nan
    for g, match in [(scaled, "squared norm"), (nan, "squared norm")]:
        with pytest.raises(ValueError, match=match):
            _check(x, g, chosen, total, a)
    # moving an amount between two accepted entries keeps the row's sum: caught only once one
    # entry leaves the Cauchy-Schwarz box |G[a, c]| <= |u_a| |u_c|
    room = np.linalg.norm(x[a]) * np.linalg.norm(x[c2]) - abs(gram[a, c2])
    for shift, caught in [(0.5 * room, False), (1.5 * room, True)]:
        g = gram.copy()
        sign = np.sign(gram[a, c2])
        g[a, c2] = g[c2, a] = gram[a, c2] + sign * shift
        g[a, c1] = g[c1, a] = gram[a, c1] - sign * shift
        if caught:
            with pytest.raises(ValueError, match="Cauchy-Schwarz"):
                _check(x, g, chosen, total, a)
        else:
            _check(x, g, chosen, total, a)


def test_a_row_beyond_the_scalar_bound_is_not_checked():
    """An honest key holder publishes NaN or a wrapped value for it: nothing to verify."""
    x, gram, chosen, total = _round(False)
    big = x[0] * np.sqrt(BOUND) / np.linalg.norm(x[0])
    g = gram.copy()
    g[0, 0] = np.nan
    check_own_row(OwnRow(big, total, 0), g, chosen, NOISE, bound=BOUND, tail=TAIL)
