"""Bulyan (El Mhamdi et al., 2018, "The Hidden Vulnerability of Distributed Learning in
Byzantium"): ``theta = n - 2f`` updates picked by repeated Krum, then per coordinate the mean of
the ``beta = theta - 2f`` values closest to the coordinate's median. Needs ``n >= 4f + 3``. The
distance matrix is computed once; every step of the recursion reads a sub-matrix of it."""

from __future__ import annotations

import numpy as np

from node.consensus.rules.base import AggregationRule, Outcome, register
from node.consensus.rules.krum import krum_order
from node.consensus.rules.reductions import pairwise_sq_distances, stack_updates, sum_rows
from node.errors import AggregationError

__all__ = ["bulyan", "bulyan_selection", "Bulyan"]


def _check(n: int, f: int) -> None:
    if f < 0 or n < 4 * f + 3:
        raise AggregationError(f"Bulyan needs n >= 4f + 3 updates; got n={n}, f={f}")


def bulyan_selection(stack: np.ndarray, f: int) -> list[int]:
    """Bulyan's first stage: ``n - 2f`` updates picked by repeated Krum, ascending indices."""
    remaining = list(range(len(stack)))
    selected: list[int] = []
    theta = len(stack) - 2 * f
    dist = pairwise_sq_distances(stack)  # once: every round of the recursion reads a sub-matrix
    while len(selected) < theta:
        # Krum over what is left; as the set shrinks below Krum's own bound, score on at
        # least one neighbour (the paper's recursion; Flower's aggregate_bulyan does the same)
        k = max(1, len(remaining) - f - 2)
        best = remaining[
            krum_order(stack[remaining], f, k=k, dist=dist[np.ix_(remaining, remaining)])[0]
        ]
        selected.append(best)
        remaining.remove(best)
    return sorted(selected)


def _coordinate_stage(chosen: np.ndarray, f: int) -> np.ndarray:
    beta = len(chosen) - 2 * f
    median = np.median(chosen, axis=0)
    # per coordinate, the beta values nearest the median (stable sort: ties by row order)
    order = np.argsort(np.abs(chosen - median), axis=0, kind="stable")[:beta]
    picked = np.take_along_axis(chosen, order, axis=0)
    return (sum_rows(np.sort(picked, axis=0)) / beta).astype(np.float32)


def bulyan(
    updates: np.ndarray | list[np.ndarray], weights: object = None, *, f: int = 1
) -> np.ndarray:
    """Bulyan's aggregate (see the module docstring)."""
    return Bulyan(f).aggregate(updates).params


@register
class Bulyan(AggregationRule):
    name = "bulyan"

    @classmethod
    def min_updates(cls, f: int = 1) -> int:
        return 4 * f + 3

    def select(self, updates: np.ndarray | list[np.ndarray]) -> list[int]:
        stack = stack_updates(updates)
        _check(len(stack), self.f)
        return bulyan_selection(stack, self.f)

    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        stack = stack_updates(updates)
        chosen = self.select(stack)
        return Outcome(_coordinate_stage(stack[chosen], self.f), chosen)
