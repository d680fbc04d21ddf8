"""FedAvg: the weighted mean (McMahan et al., 2017, "Communication-Efficient Learning of Deep
Networks from Decentralized Data"), weighted only by bounded claims.

**Weights are claims** (issue 16). A sample count is whatever its sender commits, so FedAvg
weighs by :func:`bounded_counts`: each claim capped at the round's lower median claim. With
f < n/2 liars the lower median is at most some honest claim, and at least ``floor(n/2) + 1``
claims reach it, so ``f`` colluders hold at most ``f / (floor(n/2) + 1)`` of FedAvg's weight
whatever they claim (1/6 at n = 10, f = 1). A per-member ceiling (the cohort declared at
admission, on chain) can be passed too. The median has the highest breakdown point (1/2;
Hampel, 1971; for FL, Yin et al., 2018).
"""

from __future__ import annotations

import numpy as np

from node.consensus.rules.base import AggregationRule, Outcome, register
from node.consensus.rules.reductions import check_weights, fsum, stack_updates
from node.errors import AggregationError

__all__ = ["fedavg", "bounded_counts", "cohort_weight", "FedAvg"]


def bounded_counts(
    claims: np.ndarray | list[float], ceilings: np.ndarray | list[float] | None = None
) -> np.ndarray:
    """Each claimed sample count capped at the round's lower median claim (and at its member's
    ``ceilings``, e.g. the cohort size declared at admission, if given).

    The lower median (the ``ceil(n/2)``-th smallest claim) is a claim some member made, and at
    least ``floor(n/2) + 1`` claims are at or above it. With ``f < n/2`` liars it is at most an
    honest claim, and those ``floor(n/2) + 1`` members hold exactly the cap after capping, so
    the liars' share of the total weight is at most ``f / (floor(n/2) + 1)`` whatever they claim.
    Honest members above the median lose weight (the price of not trusting claims); below
    it, nothing changes."""
    c = np.asarray(claims, dtype=np.float64)
    if c.ndim != 1 or len(c) == 0 or not np.isfinite(c).all() or (c < 0).any():
        raise AggregationError("claims must be one finite non-negative count per update")
    if ceilings is not None:
        top = np.asarray(ceilings, dtype=np.float64)
        if top.shape != c.shape or not np.isfinite(top).all() or (top < 0).any():
            raise AggregationError("ceilings must be one finite non-negative count per update")
        c = np.minimum(c, top)
    cap = float(np.sort(c)[(len(c) - 1) // 2])
    return np.minimum(c, cap)


def cohort_weight(claim: float, cohort: float, cohorts: list[float]) -> float:
    """A member's weight inside a masked or encrypted sum (secagg, ckks), where no peer sees the
    round's other claims before summing: its ``claim`` (the noised count Ñ it committed,
    :mod:`node.learning.privacy`) capped at its admission ``cohort`` and at the lower median of the active
    members' ``cohorts``, both read from the registry before training. As in
    :func:`bounded_counts`, with ``f`` liars among ``n`` members the median is at most an honest
    cohort, so the liars' share of the weight is at most ``f / (floor(n/2) + 1)``."""
    top = np.asarray(cohorts, dtype=np.float64)
    if top.ndim != 1 or len(top) == 0 or not np.isfinite(top).all() or (top < 0).any():
        raise AggregationError("cohorts must be one finite non-negative count per active member")
    if not (np.isfinite(claim) and claim >= 0 and np.isfinite(cohort) and cohort >= 0):
        raise AggregationError(
            f"claim and cohort must be finite and non-negative, got {claim} and {cohort}"
        )
    return float(min(claim, cohort, np.sort(top)[(len(top) - 1) // 2]))


def fedavg(
    updates: np.ndarray | list[np.ndarray], weights: np.ndarray | list[float] | None = None
) -> np.ndarray:
    """Weighted mean of the updates; weights default to equal (e.g. pass sample counts)."""
    stack = stack_updates(updates)
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    check_weights(w, len(stack))
    total = np.zeros(stack.shape[1])
    for row, wi in zip(stack, w / fsum(w), strict=False):
        total += wi * row
    return total.astype(np.float32)


@register
class FedAvg(AggregationRule):
    """:func:`fedavg`; the caller passes :func:`bounded_counts` as the weights. A sum serves it."""

    name = "fedavg"
    needs_individual_updates = False
    weighted = True

    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        stack = stack_updates(updates)
        return Outcome(fedavg(stack, weights), list(range(len(stack))))
