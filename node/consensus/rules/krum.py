"""Krum and Multi-Krum (Blanchard et al., 2017, "Machine Learning with Adversaries: Byzantine
Tolerant Gradient Descent"). Both drop updates outright: Krum keeps the one with the lowest
score, Multi-Krum the ``n - f`` lowest. Scores come from one O(n^2 d) distance matrix per round
(:func:`~node.consensus.rules.reductions.pairwise_sq_distances`), read by the selection and the
aggregate alike. Exact ties break on the canonical row order (ascending registry address)."""

from __future__ import annotations

import numpy as np

from node.consensus.rules.base import AggregationRule, Outcome, register
from node.consensus.rules.reductions import fsum, mean_rows, pairwise_sq_distances, stack_updates
from node.errors import AggregationError

__all__ = [
    "krum_scores",
    "krum_order",
    "krum_order_from_distances",
    "krum",
    "multi_krum",
    "Krum",
    "MultiKrum",
]


def _check(n: int, f: int) -> None:
    if f < 0 or n < 2 * f + 3:
        raise AggregationError(f"Krum needs n >= 2f + 3 updates; got n={n}, f={f}")


def _scores(k: int, dist: np.ndarray) -> np.ndarray:
    return np.array([fsum(np.sort(np.delete(dist[i], i))[:k]) for i in range(len(dist))])


def krum_scores(updates: np.ndarray | list[np.ndarray], f: int) -> np.ndarray:
    """Krum score of each update: the sum of squared distances to its ``n - f - 2`` nearest
    other updates. Requires ``n >= 2f + 3``."""
    stack = stack_updates(updates)
    _check(len(stack), f)
    return _scores(len(stack) - f - 2, pairwise_sq_distances(stack))


def krum_order(
    stack: np.ndarray, f: int, *, k: int | None = None, dist: np.ndarray | None = None
) -> list[int]:
    """Indices by ascending Krum score over ``k`` neighbours (default ``n - f - 2``, checked);
    ``dist`` (the squared distances of ``stack``) saves recomputing them: each pair's value depends
    on its two rows only, so a sub-matrix of a larger set's distances is bit-identical to
    computing them afresh."""
    return krum_order_from_distances(pairwise_sq_distances(stack) if dist is None else dist, f, k=k)


def krum_order_from_distances(dist: np.ndarray, f: int, *, k: int | None = None) -> list[int]:
    """:func:`krum_order` from the (n, n) squared distances alone: what a mode that reveals only
    the distances (ckks with encrypted inner products) runs, and what an audit recomputes."""
    dist = np.asarray(dist, dtype=np.float64)
    n = len(dist)
    if dist.shape != (n, n):
        raise ValueError(f"Krum needs a square distance matrix; got shape {dist.shape}")
    if k is None:
        _check(n, f)
    scores = _scores(n - f - 2 if k is None else k, dist)
    return sorted(range(n), key=lambda i: (scores[i], i))  # ties: lowest index


def krum(
    updates: np.ndarray | list[np.ndarray], weights: object = None, *, f: int = 1
) -> np.ndarray:
    """The single update with the lowest Krum score (ties go to the lowest index)."""
    return Krum(f).aggregate(updates).params


def multi_krum(
    updates: np.ndarray | list[np.ndarray],
    weights: object = None,
    *,
    f: int = 1,
    m: int | None = None,
) -> np.ndarray:
    """Mean of the ``m`` updates with the lowest Krum scores (default ``m = n - f``)."""
    stack = stack_updates(updates)
    m = len(stack) - f if m is None else m
    if not 1 <= m <= len(stack):
        raise AggregationError(f"Multi-Krum needs 1 <= m <= n; got m={m}, n={len(stack)}")
    chosen = sorted(krum_order(stack, f)[:m])
    return mean_rows(stack[chosen]).astype(np.float32)


@register
class Krum(AggregationRule):
    name = "krum"
    from_distances = True

    @classmethod
    def min_updates(cls, f: int = 1) -> int:
        return 2 * f + 3

    def select(self, updates: np.ndarray | list[np.ndarray]) -> list[int]:
        return self.select_from_distances(pairwise_sq_distances(stack_updates(updates)))

    def select_from_distances(self, dist: np.ndarray) -> list[int]:
        return [krum_order_from_distances(dist, self.f)[0]]

    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        stack = stack_updates(updates)
        best = krum_order(stack, self.f)[0]
        return Outcome(stack[best].astype(np.float32), [best])


@register
class MultiKrum(Krum):
    """:func:`multi_krum` with ``m = n - f``: it accepts the ``n - f`` it averages."""

    name = "multi-krum"

    def select(self, updates: np.ndarray | list[np.ndarray]) -> list[int]:
        return self.select_from_distances(pairwise_sq_distances(stack_updates(updates)))

    def select_from_distances(self, dist: np.ndarray) -> list[int]:
        return sorted(krum_order_from_distances(dist, self.f)[: len(dist) - self.f])

    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        stack = stack_updates(updates)
        chosen = self.select(stack)
        return Outcome(mean_rows(stack[chosen]).astype(np.float32), chosen)
