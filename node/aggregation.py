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
- :func:`krum`, :func:`multi_krum` — (Blanchard et al., 2017, "Machine Learning with
  Adversaries: Byzantine Tolerant Gradient Descent").
- :func:`bulyan` — (El Mhamdi et al., 2018, "The Hidden Vulnerability of Distributed
  Learning in Byzantium").
- :func:`geometric_median` — smoothed Weiszfeld, as in RFA (Pillutla et al., 2022, "Robust
  Aggregation for Federated Learning").
- :func:`clip_norms` — norm clipping, a pre-filter for any rule (Sun et al., 2019, "Can You
  Really Backdoor Federated Learning?").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["fedavg", "coordinate_median", "trimmed_mean", "krum_scores", "krum", "multi_krum",
           "bulyan", "geometric_median", "clip_norms", "RULES", "aggregate", "aggregate_by_peer", "minimum_updates",
           "selection", "selection_by_peer"]


def _stack(updates: np.ndarray | list[np.ndarray]) -> np.ndarray:
    stack = np.asarray(updates, dtype=np.float64)
    if stack.ndim != 2 or stack.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, d) stack of updates, got shape {stack.shape}")
    if not np.isfinite(stack).all():
        raise ValueError("updates contain NaN or infinite values")
    return stack


def _mean(rows: np.ndarray) -> np.ndarray:
    total = np.zeros(rows.shape[1])
    for row in rows:  # fixed summation order: bit-reproducible
        total += row
    return total / len(rows)


def fedavg(updates: np.ndarray | list[np.ndarray], weights: np.ndarray | list[float] | None = None) -> np.ndarray:
    """Weighted mean of the updates; weights default to equal (e.g. pass sample counts)."""
    stack = _stack(updates)
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(stack),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be one non-negative value per update, not all zero")
    total = np.zeros(stack.shape[1])
    for row, wi in zip(stack, w / w.sum()):
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


def _pairwise_sq_distances(stack: np.ndarray) -> np.ndarray:
    n = len(stack)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            diff = stack[i] - stack[j]
            dist[i, j] = dist[j, i] = float(diff @ diff)
    return dist


def krum_scores(updates: np.ndarray | list[np.ndarray], f: int) -> np.ndarray:
    """Krum score of each update: the sum of squared distances to its ``n - f - 2`` nearest
    other updates. Requires ``n >= 2f + 3``."""
    stack = _stack(updates)
    n = len(stack)
    if f < 0 or n < 2 * f + 3:
        raise ValueError(f"Krum needs n >= 2f + 3 updates; got n={n}, f={f}")
    return _scores(stack, n - f - 2)


def _scores(stack: np.ndarray, k: int) -> np.ndarray:
    dist = _pairwise_sq_distances(stack)
    return np.array([np.sort(np.delete(dist[i], i))[:k].sum() for i in range(len(stack))])


def _krum_order(stack: np.ndarray, f: int, *, k: int | None = None) -> list[int]:
    scores = krum_scores(stack, f) if k is None else _scores(stack, k)
    return sorted(range(len(stack)), key=lambda i: (scores[i], i))  # ties: lowest index


def krum(updates: np.ndarray | list[np.ndarray], weights: object = None, *, f: int = 1) -> np.ndarray:
    """The single update with the lowest Krum score (ties go to the lowest index)."""
    stack = _stack(updates)
    return stack[_krum_order(stack, f)[0]].astype(np.float32)


def multi_krum(updates: np.ndarray | list[np.ndarray], weights: object = None, *, f: int = 1,
               m: int | None = None) -> np.ndarray:
    """Mean of the ``m`` updates with the lowest Krum scores (default ``m = n - f``)."""
    stack = _stack(updates)
    m = len(stack) - f if m is None else m
    if not 1 <= m <= len(stack):
        raise ValueError(f"Multi-Krum needs 1 <= m <= n; got m={m}, n={len(stack)}")
    chosen = sorted(_krum_order(stack, f)[:m])
    return _mean(stack[chosen]).astype(np.float32)


def bulyan(updates: np.ndarray | list[np.ndarray], weights: object = None, *, f: int = 1) -> np.ndarray:
    """Bulyan: pick ``theta = n - 2f`` updates by repeated Krum, then per coordinate average
    the ``beta = theta - 2f`` values closest to the coordinate's median. Needs ``n >= 4f + 3``."""
    stack = _stack(updates)
    n = len(stack)
    if f < 0 or n < 4 * f + 3:
        raise ValueError(f"Bulyan needs n >= 4f + 3 updates; got n={n}, f={f}")
    theta = n - 2 * f
    chosen = stack[_bulyan_selection(stack, f)]
    beta = theta - 2 * f
    median = np.median(chosen, axis=0)
    # per coordinate, the beta values nearest the median (stable sort: ties by row order)
    order = np.argsort(np.abs(chosen - median), axis=0, kind="stable")[:beta]
    picked = np.take_along_axis(chosen, order, axis=0)
    return (np.sort(picked, axis=0).sum(axis=0) / beta).astype(np.float32)


def _bulyan_selection(stack: np.ndarray, f: int) -> list[int]:
    """Bulyan's first stage: ``n - 2f`` updates picked by repeated Krum, ascending indices."""
    remaining = list(range(len(stack)))
    selected: list[int] = []
    theta = len(stack) - 2 * f
    while len(selected) < theta:
        # Krum over what is left; as the set shrinks below Krum's own bound, score on at
        # least one neighbour (the paper's recursion; Flower's aggregate_bulyan does the same)
        k = max(1, len(remaining) - f - 2)
        best = remaining[_krum_order(stack[remaining], f, k=k)[0]]
        selected.append(best)
        remaining.remove(best)
    return sorted(selected)


def geometric_median(updates: np.ndarray | list[np.ndarray], weights: np.ndarray | list[float] | None = None,
                     *, iterations: int = 100, nu: float = 1e-6, tolerance: float = 1e-10) -> np.ndarray:
    """Weighted geometric median by the smoothed Weiszfeld algorithm (RFA, Algorithm 2)."""
    stack = _stack(updates)
    alpha = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    if alpha.shape != (len(stack),) or (alpha < 0).any() or alpha.sum() <= 0:
        raise ValueError("weights must be one non-negative value per update, not all zero")
    alpha = alpha / alpha.sum()
    z = fedavg(stack, alpha).astype(np.float64)
    for _ in range(iterations):
        dist = np.sqrt(((stack - z) ** 2).sum(axis=1))
        beta = alpha / np.maximum(nu, dist)
        new = np.zeros_like(z)
        for row, b in zip(stack, beta / beta.sum()):
            new += b * row
        done = float(np.sqrt(((new - z) ** 2).sum())) <= tolerance * max(1.0, float(np.sqrt((z * z).sum())))
        z = new
        if done:
            break
    return z.astype(np.float32)


def clip_norms(updates: np.ndarray | list[np.ndarray], max_norm: float | None = None) -> np.ndarray:
    """Scale each update down to L2 norm ``max_norm`` (default: the median norm). float64."""
    stack = _stack(updates)
    norms = np.sqrt((stack * stack).sum(axis=1))
    bound = float(np.median(norms)) if max_norm is None else float(max_norm)
    if bound <= 0:
        return np.zeros_like(stack) if max_norm is not None else stack
    scale = np.minimum(1.0, bound / np.maximum(norms, 1e-300))
    return stack * scale[:, None]


RULES: dict[str, Callable[..., np.ndarray]] = {
    "fedavg": fedavg,
    "median": coordinate_median,
    "trimmed-mean": trimmed_mean,
    "krum": krum,
    "multi-krum": multi_krum,
    "bulyan": bulyan,
    "geomed": geometric_median,
}
_NEEDS_F = {"krum", "multi-krum", "bulyan"}


def minimum_updates(rule: str, f: int = 1) -> int:
    """The fewest updates ``rule`` accepts while tolerating ``f`` Byzantine peers."""
    return {"krum": 2 * f + 3, "multi-krum": 2 * f + 3, "bulyan": 4 * f + 3}.get(rule, 1)


def selection(rule: str, updates: np.ndarray | list[np.ndarray], *, f: int = 1) -> list[int]:
    """Indices of the updates ``rule`` keeps whole (ascending). The Krum family and Bulyan
    drop updates outright; the coordinate-wise rules and FedAvg keep every update (they
    down-weight values, not senders). Peers attest this set as "accepted"."""
    stack = _stack(updates)
    if rule == "krum":
        return [_krum_order(stack, f)[0]]
    if rule == "multi-krum":
        return sorted(_krum_order(stack, f)[: len(stack) - f])
    if rule == "bulyan":
        if len(stack) < 4 * f + 3:
            raise ValueError(f"Bulyan needs n >= 4f + 3 updates; got n={len(stack)}, f={f}")
        return _bulyan_selection(stack, f)
    if rule not in RULES:
        raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {', '.join(RULES)}")
    return list(range(len(stack)))


def selection_by_peer(rule: str, updates: dict[str, np.ndarray], *, f: int = 1) -> list[str]:
    """:func:`selection` for updates keyed by registry address (canonical order)."""
    order = sorted(updates, key=str.lower)
    keep = selection(rule, np.stack([np.asarray(updates[a], dtype=np.float32) for a in order]), f=f)
    return [order[i] for i in keep]


def aggregate_by_peer(rule: str, updates: dict[str, np.ndarray], weights: dict[str, float] | None = None,
                      *, f: int = 1, clip: bool = False) -> np.ndarray:
    """Aggregate updates keyed by registry address in the canonical order (ascending
    lower-case address), so arrival order never changes a bit of the result."""
    order = sorted(updates, key=str.lower)
    if len({a.lower() for a in order}) != len(order):
        raise ValueError("two updates from the same address")
    stack = np.stack([np.asarray(updates[a], dtype=np.float32) for a in order])
    w = None if weights is None else [weights[a] for a in order]
    return aggregate(rule, stack, w, f=f, clip=clip)


def aggregate(rule: str, updates: np.ndarray | list[np.ndarray], weights: list[float] | None = None,
              *, f: int = 1, clip: bool = False) -> np.ndarray:
    """Apply the rule named ``rule`` (a key of :data:`RULES`), optionally after norm clipping.

    ``f`` is the number of Byzantine peers the Krum family and Bulyan must tolerate.
    """
    try:
        fn = RULES[rule]
    except KeyError:
        raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {', '.join(RULES)}") from None
    stack = clip_norms(updates) if clip else updates
    return fn(stack, weights, f=f) if rule in _NEEDS_F else fn(stack, weights)
