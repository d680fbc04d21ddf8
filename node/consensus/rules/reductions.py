"""Fixed-order reductions shared by the aggregation rules: the same bits on every machine.

Every reduction here is an explicit, fixed-order sequence of IEEE-754 additions
(:func:`row_sums`: a pairwise tree of elementwise adds; :func:`sum_rows`: rows in order;
``math.fsum`` for short vectors, exactly rounded). Nothing goes through BLAS, whose dot products
change bits with the kernel (``OPENBLAS_CORETYPE``) and the thread count, so a crafted near-tie
cannot make peers on different machines pick different Krum winners (issue 16).
"""

from __future__ import annotations

import math

import numpy as np

from node.errors import AggregationError

__all__ = [
    "stack_updates",
    "sum_rows",
    "mean_rows",
    "row_sums",
    "gram",
    "fsum",
    "check_weights",
    "pairwise_sq_distances",
]


def stack_updates(updates: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """The updates as a finite, non-empty (n, d) float64 array."""
    stack = np.asarray(updates, dtype=np.float64)
    if stack.ndim != 2 or stack.shape[0] == 0:
        raise AggregationError(
            f"expected a non-empty (n, d) stack of updates, got shape {stack.shape}"
        )
    if not np.isfinite(stack).all():
        raise AggregationError("updates contain NaN or infinite values")
    return stack


def sum_rows(rows: np.ndarray) -> np.ndarray:
    """Column sums, adding the rows one after another (a fixed order: bit-reproducible)."""
    total = np.zeros(rows.shape[1])
    for row in rows:
        total += row
    return total


def mean_rows(rows: np.ndarray) -> np.ndarray:
    """Column means by :func:`sum_rows`."""
    return sum_rows(rows) / len(rows)


def row_sums(matrix: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """The sum of each row of a 2-D array, in float64, by a fixed pairwise tree: column ``j`` is
    added to column ``j + ceil(w/2)`` halving the width ``w`` until one column is left. Only
    elementwise IEEE additions, so the bits are the same on every machine, NumPy build, BLAS
    and thread count (``ndarray.sum`` and ``@`` promise no order). ``overwrite``: ``matrix`` is a
    float64 temporary the sums may be built in."""
    m = np.asarray(matrix, dtype=np.float64) if overwrite else np.array(matrix, dtype=np.float64)
    m = m.reshape(1, -1) if m.ndim < 2 else m
    width = m.shape[1]
    if width == 0:
        return np.zeros(m.shape[0])
    while width > 1:
        half = (width + 1) // 2
        m[:, : width - half] += m[:, half:width]  # disjoint slices: width - half <= half
        width = half
    return m[:, 0].copy()


def gram(rows: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """All inner products ``<u_i, u_j>`` of the rows, in float64, by :func:`row_sums` (the same
    bits on every machine: screens and credits that compare updates use it instead of ``@``)."""
    stack = stack_updates(rows)
    n = len(stack)
    out = np.zeros((n, n))
    for i in range(n):
        out[i, i:] = out[i:, i] = row_sums(stack[i:] * stack[i], overwrite=True)
    return out


def fsum(values: np.ndarray) -> float:
    """Exactly rounded sum of a short vector (Shewchuk's algorithm): order-independent."""
    return math.fsum(np.asarray(values, dtype=np.float64).tolist())


def check_weights(w: np.ndarray, n: int) -> None:
    """Raise ValueError unless ``w`` is one finite non-negative weight per update, not all zero."""
    if w.shape != (n,):
        raise AggregationError(f"expected one weight per update ({n}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or fsum(w) <= 0:
        raise AggregationError("weights must be finite and non-negative, not all zero")


_CHUNK_VALUES = 1 << 22  # float64 values per block of differences (32 MiB)


def pairwise_sq_distances(stack: np.ndarray) -> np.ndarray:
    """Squared L2 distances between the rows by :func:`row_sums` (never BLAS). O(n^2 d): the
    Krum family and Bulyan compute it once per round and read sub-matrices of it."""
    n, d = stack.shape
    dist = np.zeros((n, n))
    step = max(1, _CHUNK_VALUES // max(d, 1))
    for i in range(n):
        for lo in range(i + 1, n, step):
            hi = min(n, lo + step)
            diff = stack[lo:hi] - stack[i]
            diff *= diff
            dist[i, lo:hi] = dist[lo:hi, i] = row_sums(diff, overwrite=True)
    return dist
