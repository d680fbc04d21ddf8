"""Shapley values of a cooperative game over ``n`` players, exactly and by sampling.

A game is ``utility(mask) -> float`` over coalitions given as bitmasks (bit ``i`` set: player
``i`` is in). Wrap an expensive utility in :class:`CachedGame` so that each coalition is
evaluated once.

- :func:`exact_shapley` — Shapley's formula over all 2^n coalitions (Shapley, 1953, "A Value
  for n-Person Games"): the reference for small ``n``.
- :func:`tmc_shapley` — truncated Monte Carlo over random permutations (Ghorbani & Zou, 2019,
  "Data Shapley: Equitable Valuation of Data for Machine Learning", Algorithm 1).
- :func:`gtg_shapley` — one FL round's values with between-round truncation, within-round
  truncation and guided permutations (Liu et al., 2022, "GTG-Shapley: Efficient and Accurate
  Participant Contribution Evaluation in Federated Learning", Algorithm 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CachedGame", "exact_shapley", "tmc_shapley", "gtg_shapley"]

Utility = Callable[[int], float]


@dataclass
class CachedGame:
    """A utility evaluated at most once per coalition; ``evaluations`` counts the real calls."""

    utility: Utility
    n: int
    evaluations: int = 0
    _cache: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"a game needs at least one player, got n={self.n}")

    def __call__(self, mask: int) -> float:
        if not 0 <= mask < (1 << self.n):
            raise ValueError(f"coalition mask {mask} is outside {self.n} players")
        value = self._cache.get(mask)
        if value is None:
            value = float(self.utility(mask))
            if not math.isfinite(value):
                raise ValueError(f"the utility of coalition {mask:#b} is not finite: {value}")
            self._cache[mask] = value
            self.evaluations += 1
        return value


def exact_shapley(game: Utility, n: int) -> np.ndarray:
    """phi_i = sum over S not containing i of |S|! (n-|S|-1)! / n! * (v(S + i) - v(S))."""
    if not 1 <= n <= 20:
        raise ValueError(
            f"exact Shapley values need 1 <= n <= 20 players (2^n coalitions), got n={n}"
        )
    values = np.array([game(mask) for mask in range(1 << n)], dtype=np.float64)
    sizes = np.array([bin(mask).count("1") for mask in range(1 << n)])
    weight = np.array(
        [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    )
    phi = np.zeros(n)
    masks = np.arange(1 << n)
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = float(
            np.sum(weight[sizes[without]] * (values[without | (1 << i)] - values[without]))
        )
    return phi


def _permutation_pass(
    game: Utility, order: np.ndarray, v_empty: float, v_full: float, tolerance: float
) -> np.ndarray:
    """Marginal contributions along ``order``; once the running coalition is within
    ``tolerance`` of the grand coalition's value, the rest get zero (truncation)."""
    marginal = np.zeros(len(order))
    mask, previous = 0, v_empty
    for player in order:
        if abs(v_full - previous) < tolerance:
            break
        mask |= 1 << int(player)
        value = game(mask)
        marginal[player] = value - previous
        previous = value
    return marginal


def tmc_shapley(
    game: Utility, n: int, *, permutations: int = 200, tolerance: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Ghorbani & Zou (2019), Algorithm 1: the mean marginal contribution over ``permutations``
    random orders, truncated once a prefix is within ``tolerance`` of v(N)."""
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    rng = np.random.default_rng(seed)
    v_empty, v_full = game(0), game((1 << n) - 1)
    total = np.zeros(n)
    for _ in range(permutations):
        total += _permutation_pass(game, rng.permutation(n), v_empty, v_full, tolerance)
    return total / permutations


def gtg_shapley(
    game: Utility,
    n: int,
    *,
    max_permutations: int | None = None,
    round_tolerance: float = 1e-4,
    within_tolerance: float = 1e-4,
    convergence: float = 0.02,
    seed: int = 0,
) -> np.ndarray:
    """Liu et al. (2022), Algorithm 1, for one round's game (v(0) is the previous global model).

    Between-round truncation: a round whose total gain |v(N) - v(0)| is at most
    ``round_tolerance`` gives every player zero. Otherwise permutation ``k`` puts player
    ``k mod n`` first and shuffles the rest (guided sampling), each pass truncated like TMC at
    ``within_tolerance``; sampling stops once, after a full sweep of first players, the estimate
    moved by less than ``convergence`` of the round's gain |v(N) - v(0)| per player on average
    over that sweep, or after ``max_permutations`` (default 10 n)."""
    limit = 10 * n if max_permutations is None else int(max_permutations)
    if limit < 1:
        raise ValueError(f"max_permutations must be >= 1, got {limit}")
    v_empty, v_full = game(0), game((1 << n) - 1)
    if abs(v_full - v_empty) <= round_tolerance:
        return np.zeros(n)
    rng = np.random.default_rng(seed)
    total = np.zeros(n)
    checkpoint: np.ndarray | None = None
    for k in range(1, limit + 1):
        first = (k - 1) % n
        rest = rng.permutation([p for p in range(n) if p != first])
        total += _permutation_pass(
            game, np.concatenate([[first], rest]).astype(int), v_empty, v_full, within_tolerance
        )
        if k % n == 0:
            estimate = total / k
            if checkpoint is not None:
                change = np.abs(estimate - checkpoint) / abs(v_full - v_empty)
                if float(np.mean(change)) < convergence:
                    break
            checkpoint = estimate
    return total / k
