"""Centered clipping (Karimireddy, He & Jaggi, 2021, "Learning from History for Byzantine Robust
Optimization", ICML, Eq. 2): ``v <- v + (1/n) sum_i clip_tau(x_i - v)``, stateless here. It
shrinks outliers rather than dropping senders, so it accepts every update."""

from __future__ import annotations

import numpy as np

from node.consensus.rules.base import AggregationRule, Outcome, register
from node.consensus.rules.reductions import row_sums, stack_updates, sum_rows
from node.errors import AggregationError

__all__ = ["centered_clipping", "CenteredClipping"]


def centered_clipping(
    updates: np.ndarray | list[np.ndarray],
    weights: object = None,
    *,
    f: int = 1,
    center: np.ndarray | None = None,
    tau: float | None = None,
    iterations: int = 3,
) -> np.ndarray:
    """``v <- v + (1/n) sum_i clip_tau(x_i - v)``, ``iterations`` times (CC, Eq. 2), where
    ``clip_tau(z) = z * min(1, tau / ||z||)``. The paper starts from the previous round's
    aggregate (momentum); a stateless rule starts from ``center`` (default: the coordinate
    median, which f < n/2 attackers cannot drag outside the honest range) with ``tau``
    (default: the ``n - f``-th smallest distance to that center, so that the honest majority
    moves unclipped while f outliers are cut to the honest radius). ``f`` only sets tau."""
    stack = stack_updates(updates)
    n = len(stack)
    if iterations < 1 or not 0 <= f < n:
        raise AggregationError(
            f"centered clipping needs iterations >= 1 and 0 <= f < n; got {iterations}, f={f}, "
            f"n={n}"
        )
    v = np.median(stack, axis=0) if center is None else np.asarray(center, dtype=np.float64).copy()
    if v.shape != (stack.shape[1],):
        raise AggregationError(f"center has {v.size} values, the updates {stack.shape[1]}")
    for it in range(iterations):
        diff = stack - v
        dist = np.sqrt(row_sums(diff * diff, overwrite=True))
        radius = float(np.sort(dist)[n - f - 1]) if tau is None else float(tau)
        if it == 0 and radius < 0:
            raise AggregationError(f"tau must be >= 0, got {radius}")
        scale = np.where(dist > radius, radius / np.maximum(dist, 1e-300), 1.0)
        v = v + sum_rows(diff * scale[:, None]) / n
    return v.astype(np.float32)


@register
class CenteredClipping(AggregationRule):
    name = "cclip"

    @classmethod
    def min_updates(cls, f: int = 1) -> int:
        return f + 1

    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        stack = stack_updates(updates)
        return Outcome(centered_clipping(stack, f=self.f), list(range(len(stack))))
