"""The geometric median by the smoothed Weiszfeld algorithm, as in RFA (Pillutla, Kakade &
Harchaoui, 2022, "Robust Aggregation for Federated Learning", Algorithm 2). The registered rule
counts each member once: a claimed count is not a weight an adversary should control."""

from __future__ import annotations

import math

import numpy as np

from node.consensus.rules.base import AggregationRule, Outcome, register
from node.consensus.rules.fedavg import fedavg
from node.consensus.rules.reductions import check_weights, fsum, row_sums, stack_updates

__all__ = ["geometric_median", "GeometricMedian"]


def geometric_median(
    updates: np.ndarray | list[np.ndarray],
    weights: np.ndarray | list[float] | None = None,
    *,
    iterations: int = 100,
    nu: float = 1e-6,
    tolerance: float = 1e-10,
) -> np.ndarray:
    """Weighted geometric median (RFA, Algorithm 2); weights default to equal."""
    stack = stack_updates(updates)
    alpha = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    check_weights(alpha, len(stack))
    alpha = alpha / fsum(alpha)
    z = fedavg(stack, alpha).astype(np.float64)
    for _ in range(iterations):
        diff = stack - z
        dist = np.sqrt(row_sums(diff * diff, overwrite=True))
        beta = alpha / np.maximum(nu, dist)
        new = np.zeros_like(z)
        for row, b in zip(stack, beta / fsum(beta), strict=False):
            new += b * row
        moved, size = new - z, z * z
        done = math.sqrt(row_sums(moved * moved, overwrite=True)[0]) <= tolerance * max(
            1.0, math.sqrt(row_sums(size, overwrite=True)[0])
        )
        z = new
        if done:
            break
    return z.astype(np.float32)


@register
class GeometricMedian(AggregationRule):
    name = "geomed"

    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        stack = stack_updates(updates)
        return Outcome(geometric_median(stack), list(range(len(stack))))
