"""Aggregation rules: plain functions on a stack of flat float32 updates.

Each rule takes ``updates`` of shape (n, d) — rows already in the canonical order (ascending
registry address), which every honest peer uses — and returns one float32 vector of length d.
All arithmetic is done in float64 with a fixed reduction order and rounded once to float32,
so every peer computes the same bits from the same committed set.

- :func:`fedavg` — weighted mean (McMahan et al., 2017, "Communication-Efficient Learning
  of Deep Networks from Decentralized Data").
- :func:`coordinate_median` — coordinate-wise median (Yin et al., 2018, "Byzantine-Robust
  Distributed Learning: Towards Optimal Statistical Rates").
- :func:`trimmed_mean` — coordinate-wise beta-trimmed mean (Yin et al., 2018).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["fedavg", "coordinate_median", "trimmed_mean", "RULES", "aggregate"]


def _stack(updates: np.ndarray | list[np.ndarray]) -> np.ndarray:
    stack = np.asarray(updates, dtype=np.float64)
    if stack.ndim != 2 or stack.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, d) stack of updates, got shape {stack.shape}")
    if not np.isfinite(stack).all():
        raise ValueError("updates contain NaN or infinite values")
    return stack


def fedavg(updates: np.ndarray | list[np.ndarray], weights: np.ndarray | list[float] | None = None) -> np.ndarray:
    """Weighted mean of the updates; weights default to equal (e.g. pass sample counts)."""
    stack = _stack(updates)
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(stack),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be one non-negative value per update, not all zero")
    total = np.zeros(stack.shape[1])
    for row, wi in zip(stack, w / w.sum()):  # fixed summation order: bit-reproducible
        total += wi * row
    return total.astype(np.float32)


def coordinate_median(updates: np.ndarray | list[np.ndarray], weights: object = None) -> np.ndarray:
    """Coordinate-wise median; with an even count, the mean of the two middle values."""
    return np.median(_stack(updates), axis=0).astype(np.float32)


def trimmed_mean(updates: np.ndarray | list[np.ndarray], weights: object = None, *, beta: float = 0.25) -> np.ndarray:
    """Drop the ``floor(beta * n)`` largest and smallest values per coordinate, average the rest."""
    stack = _stack(updates)
    n = len(stack)
    k = int(np.floor(beta * n))
    if not 0 <= beta < 0.5 or n - 2 * k < 1:
        raise ValueError(f"trimmed mean with beta={beta} leaves nothing of {n} updates")
    ordered = np.sort(stack, axis=0)[k : n - k]
    return (ordered.sum(axis=0) / len(ordered)).astype(np.float32)


RULES: dict[str, Callable[..., np.ndarray]] = {
    "fedavg": fedavg,
    "median": coordinate_median,
    "trimmed-mean": trimmed_mean,
}


def aggregate(rule: str, updates: np.ndarray | list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """Apply the rule named ``rule`` (a key of :data:`RULES`)."""
    try:
        fn = RULES[rule]
    except KeyError:
        raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {', '.join(RULES)}") from None
    return fn(updates, weights)
