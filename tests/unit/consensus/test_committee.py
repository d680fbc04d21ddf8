"""Committee size from the hypergeometric tail (issue 19), against scipy.stats.hypergeom and
hand-computed cases, and the keyed permutation's shape (a bijection with exactly k seats)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from scipy.stats import hypergeom

from node.consensus.committee import (
    TAIL_TARGET,
    CommitteeError,
    byzantine_tail,
    committee_key,
    committee_size,
    committee_slots,
    seat,
)


def _scipy_tail(n: int, f: int, k: int) -> float:
    # scipy's parametrisation: M population, n successes in it, N draws; sf(x) = P[X > x]
    return float(hypergeom(n, f, k).sf(math.ceil(k / 3) - 1))


def test_hand_computed_tails() -> None:
    # n=4, f=1, k=3: a third of 3 is 1 seat; P[X >= 1] = 1 - C(3,3)/C(4,3) = 3/4
    assert byzantine_tail(4, 1, 3) == Fraction(3, 4)
    # n=10, f=2, k=4: ceil(4/3) = 2 seats; P[X >= 2] = C(2,2) C(8,2) / C(10,4) = 28/210
    assert byzantine_tail(10, 2, 4) == Fraction(2, 15)
    # k = n: the committee is the consortium, X = f exactly
    assert byzantine_tail(9, 2, 9) == 0
    assert byzantine_tail(9, 3, 9) == 1


@pytest.mark.parametrize("n", [4, 7, 16, 33, 64, 100, 256])
def test_tail_matches_scipy(n: int) -> None:
    for f in {n // 10, n // 5, max(0, n // 3 - 1), n // 3}:
        for k in range(1, n + 1):
            exact = float(byzantine_tail(n, f, k))
            assert exact == pytest.approx(_scipy_tail(n, f, k), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("n", [4, 10, 32, 64, 128, 256])
def test_size_is_the_smallest_that_meets_the_target(n: int) -> None:
    for f in (n // 10, n // 5, max(0, n // 3 - 1)):
        k = committee_size(n, f)
        if k < n:
            assert _scipy_tail(n, f, k) <= TAIL_TARGET * (1 + 1e-9)
        smaller = [_scipy_tail(n, f, j) for j in range(1, k)]
        assert all(p > TAIL_TARGET for p in smaller)


def test_size_edges() -> None:
    assert committee_size(50, 0) == 1  # nobody Byzantine: one seat is enough
    assert committee_size(6, 2) == 6  # 3f >= n: no committee helps, everyone sits
    with pytest.raises(CommitteeError, match="tolerated faults f=7"):
        committee_size(6, 7)


@pytest.mark.parametrize("n,k", [(1, 1), (4, 3), (6, 4), (17, 5), (64, 20), (100, 99)])
def test_seats_are_a_permutation_with_exactly_k_members(n: int, k: int) -> None:
    for r in range(5):
        key = committee_key(bytes([r]) * 32, r + 1)
        seats = [seat(key, slot, n) for slot in range(n)]
        assert sorted(seats) == list(range(n))
        assert len(committee_slots(key, n, k)) == k


def test_whole_consortium_when_k_is_zero_or_n() -> None:
    key = committee_key(b"\x01" * 32, 1)
    assert committee_slots(key, 6, 0) == list(range(6))
    assert committee_slots(key, 6, 6) == list(range(6))
