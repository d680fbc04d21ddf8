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
- :func:`centered_clipping` — iterative clipping around a center (Karimireddy, He & Jaggi,
  2021, "Learning from History for Byzantine Robust Optimization", ICML, Eq. 2).
- :func:`bucketize` — averages of ``s`` updates drawn in a seeded random order, fed to any rule
  (Karimireddy, He & Jaggi, 2022, "Byzantine-Robust Learning on Heterogeneous Datasets via
  Bucketing", ICLR, Algorithm 1).
- :func:`bounded_counts` — self-reported sample counts capped at the round's median claim,
  the only weights :func:`aggregate` ever applies (FedAvg); the robust rules count each
  member once. :data:`DEFAULT_RULE` is the geometric median (see its comment).

Against an adaptive member (issue 16):

- **Weights are claims.** A sample count is whatever its sender commits. :func:`aggregate`
  hands the robust rules no weights at all (each member counts once, as in their papers'
  guarantees: Yin et al. 2018 and Blanchard et al. 2017 state them over n equal workers) and
  FedAvg only :func:`bounded_counts`: each claim capped at the round's lower median claim.
  With f < n/2 liars the lower median is at most some honest claim, and at least
  ``floor(n/2) + 1`` claims reach it, so ``f`` colluders hold at most ``f / (floor(n/2) + 1)``
  of FedAvg's weight whatever they claim (1/6 at n = 10, f = 1). A per-member ceiling (the
  cohort declared at admission, on chain) can be passed too.
- **Bits, not floats.** Every reduction here is an explicit, fixed-order sequence of IEEE-754
  additions (:func:`_row_sums`: a pairwise tree of elementwise adds; :func:`_sum_rows`: rows
  in order; ``math.fsum`` for short vectors, exactly rounded). Nothing goes through BLAS,
  whose dot products change bits with the kernel (``OPENBLAS_CORETYPE``) and the thread count,
  so a crafted near-tie cannot make peers on different machines pick different Krum winners.
  Exact ties break on the canonical row order (ascending registry address).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["fedavg", "coordinate_median", "trimmed_mean", "krum_scores", "krum", "multi_krum", "bulyan",
           "geometric_median", "centered_clipping", "bucketize", "bucket_members", "cohort_weight", "clip_norms",
           "bounded_counts", "gram", "RULES",
           "DEFAULT_RULE", "aggregate", "aggregate_by_peer", "minimum_updates", "selection", "selection_by_peer"]


def _stack(updates: np.ndarray | list[np.ndarray]) -> np.ndarray:
    stack = np.asarray(updates, dtype=np.float64)
    if stack.ndim != 2 or stack.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, d) stack of updates, got shape {stack.shape}")
    if not np.isfinite(stack).all():
        raise ValueError("updates contain NaN or infinite values")
    return stack


def _sum_rows(rows: np.ndarray) -> np.ndarray:
    """Column sums, adding the rows one after another (a fixed order: bit-reproducible)."""
    total = np.zeros(rows.shape[1])
    for row in rows:
        total += row
    return total


def _mean(rows: np.ndarray) -> np.ndarray:
    return _sum_rows(rows) / len(rows)


def _row_sums(matrix: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
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
    """All inner products ``<u_i, u_j>`` of the rows, in float64, by :func:`_row_sums` (the same
    bits on every machine: screens and credits that compare updates use it instead of ``@``)."""
    stack = _stack(rows)
    n = len(stack)
    out = np.zeros((n, n))
    for i in range(n):
        out[i, i:] = out[i:, i] = _row_sums(stack[i:] * stack[i], overwrite=True)
    return out


def _fsum(values: np.ndarray) -> float:
    """Exactly rounded sum of a short vector (Shewchuk's algorithm): order-independent."""
    return math.fsum(np.asarray(values, dtype=np.float64).tolist())


def _check_weights(w: np.ndarray, n: int) -> None:
    if w.shape != (n,):
        raise ValueError(f"expected one weight per update ({n}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or _fsum(w) <= 0:
        raise ValueError("weights must be finite and non-negative, not all zero")


def bounded_counts(claims: np.ndarray | list[float], ceilings: np.ndarray | list[float] | None = None) -> np.ndarray:
    """Each claimed sample count capped at the round's lower median claim (and at its member's
    ``ceilings``, e.g. the cohort size declared at admission, if given).

    The lower median (the ``ceil(n/2)``-th smallest claim) is a claim some member made, and at
    least ``floor(n/2) + 1`` claims are at or above it. With ``f < n/2`` liars it is at most an
    honest claim, and those ``floor(n/2) + 1`` members hold exactly the cap after capping, so
    the liars' share of the total weight is at most ``f / (floor(n/2) + 1)`` whatever they claim.
    Honest members above the median lose weight (the price of not trusting claims); below
    it, nothing changes. The median is the estimator with the highest breakdown point (1/2;
    Hampel, 1971; for FL, Yin et al., 2018), so no smaller coalition can move the cap outside
    the honest claims."""
    c = np.asarray(claims, dtype=np.float64)
    if c.ndim != 1 or len(c) == 0 or not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("claims must be one finite non-negative count per update")
    if ceilings is not None:
        top = np.asarray(ceilings, dtype=np.float64)
        if top.shape != c.shape or not np.isfinite(top).all() or (top < 0).any():
            raise ValueError("ceilings must be one finite non-negative count per update")
        c = np.minimum(c, top)
    cap = float(np.sort(c)[(len(c) - 1) // 2])
    return np.minimum(c, cap)


def fedavg(updates: np.ndarray | list[np.ndarray], weights: np.ndarray | list[float] | None = None) -> np.ndarray:
    """Weighted mean of the updates; weights default to equal (e.g. pass sample counts)."""
    stack = _stack(updates)
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    _check_weights(w, len(stack))
    total = np.zeros(stack.shape[1])
    for row, wi in zip(stack, w / _fsum(w)):
        total += wi * row
    return total.astype(np.float32)


def coordinate_median(updates: np.ndarray | list[np.ndarray], weights: object = None) -> np.ndarray:
    """Coordinate-wise median; with an even count, the mean of the two middle values."""
    return np.median(_stack(updates), axis=0).astype(np.float32)


def trimmed_mean(updates: np.ndarray | list[np.ndarray], weights: object = None, *, beta: float = 0.25,
                 f: int | None = None) -> np.ndarray:
    """Drop the ``floor(beta * n)`` largest and smallest values per coordinate, average the rest.
    Given ``f`` (as :func:`aggregate` does), drop exactly ``f`` per side: Yin et al. 2018's
    guarantee needs beta >= the Byzantine fraction, and a fixed beta = 0.25 lost 57.5 points
    to Fang et al.'s attack at f = 3 of 10 (issue 16)."""
    stack = _stack(updates)
    n = len(stack)
    if f is not None:
        if f < 0 or n - 2 * f < 1:
            raise ValueError(f"trimmed mean needs n >= 2f + 1 updates; got n={n}, f={f}")
    k = int(np.floor(beta * n)) if f is None else f
    if f is None and (not 0 <= beta < 0.5 or n - 2 * k < 1):
        raise ValueError(f"trimmed mean with beta={beta} leaves nothing of {n} updates")
    ordered = np.sort(stack, axis=0)[k : n - k]
    return (_sum_rows(ordered) / len(ordered)).astype(np.float32)


_CHUNK_VALUES = 1 << 22  # float64 values per block of differences (32 MiB)


def _pairwise_sq_distances(stack: np.ndarray) -> np.ndarray:
    """Squared L2 distances by :func:`_row_sums` (never BLAS: see the module docstring)."""
    n, d = stack.shape
    dist = np.zeros((n, n))
    step = max(1, _CHUNK_VALUES // max(d, 1))
    for i in range(n):
        for lo in range(i + 1, n, step):
            hi = min(n, lo + step)
            diff = stack[lo:hi] - stack[i]
            diff *= diff
            dist[i, lo:hi] = dist[lo:hi, i] = _row_sums(diff, overwrite=True)
    return dist


def krum_scores(updates: np.ndarray | list[np.ndarray], f: int) -> np.ndarray:
    """Krum score of each update: the sum of squared distances to its ``n - f - 2`` nearest
    other updates. Requires ``n >= 2f + 3``."""
    stack = _stack(updates)
    n = len(stack)
    if f < 0 or n < 2 * f + 3:
        raise ValueError(f"Krum needs n >= 2f + 3 updates; got n={n}, f={f}")
    return _scores(stack, n - f - 2)


def _scores(stack: np.ndarray, k: int, dist: np.ndarray | None = None) -> np.ndarray:
    dist = _pairwise_sq_distances(stack) if dist is None else dist
    return np.array([_fsum(np.sort(np.delete(dist[i], i))[:k]) for i in range(len(dist))])


def _krum_order(stack: np.ndarray, f: int, *, k: int | None = None, dist: np.ndarray | None = None) -> list[int]:
    """Indices by ascending Krum score; ``dist`` (the squared distances of ``stack``) saves
    recomputing them: each pair's value depends on its two rows only, so a sub-matrix of a
    larger set's distances is bit-identical to computing them afresh."""
    scores = krum_scores(stack, f) if k is None and dist is None else \
        _scores(stack, len(stack) - f - 2 if k is None else k, dist)
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
    return (_sum_rows(np.sort(picked, axis=0)) / beta).astype(np.float32)


def _bulyan_selection(stack: np.ndarray, f: int) -> list[int]:
    """Bulyan's first stage: ``n - 2f`` updates picked by repeated Krum, ascending indices."""
    remaining = list(range(len(stack)))
    selected: list[int] = []
    theta = len(stack) - 2 * f
    dist = _pairwise_sq_distances(stack)  # once: every round of the recursion reads a sub-matrix
    while len(selected) < theta:
        # Krum over what is left; as the set shrinks below Krum's own bound, score on at
        # least one neighbour (the paper's recursion; Flower's aggregate_bulyan does the same)
        k = max(1, len(remaining) - f - 2)
        best = remaining[_krum_order(stack[remaining], f, k=k, dist=dist[np.ix_(remaining, remaining)])[0]]
        selected.append(best)
        remaining.remove(best)
    return sorted(selected)


def geometric_median(updates: np.ndarray | list[np.ndarray], weights: np.ndarray | list[float] | None = None,
                     *, iterations: int = 100, nu: float = 1e-6, tolerance: float = 1e-10) -> np.ndarray:
    """Weighted geometric median by the smoothed Weiszfeld algorithm (RFA, Algorithm 2).

    :func:`aggregate` passes no weights: every member counts once (a claimed count is not a
    weight an adversary should control; see the module docstring)."""
    stack = _stack(updates)
    alpha = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    _check_weights(alpha, len(stack))
    alpha = alpha / _fsum(alpha)
    z = fedavg(stack, alpha).astype(np.float64)
    for _ in range(iterations):
        diff = stack - z
        dist = np.sqrt(_row_sums(diff * diff, overwrite=True))
        beta = alpha / np.maximum(nu, dist)
        new = np.zeros_like(z)
        for row, b in zip(stack, beta / _fsum(beta)):
            new += b * row
        moved, size = new - z, z * z
        done = math.sqrt(_row_sums(moved * moved, overwrite=True)[0]) <= tolerance * max(1.0, math.sqrt(_row_sums(size, overwrite=True)[0]))
        z = new
        if done:
            break
    return z.astype(np.float32)


def centered_clipping(updates: np.ndarray | list[np.ndarray], weights: object = None, *, f: int = 1,
                      center: np.ndarray | None = None, tau: float | None = None, iterations: int = 3) -> np.ndarray:
    """``v <- v + (1/n) sum_i clip_tau(x_i - v)``, ``iterations`` times (CC, Eq. 2), where
    ``clip_tau(z) = z * min(1, tau / ||z||)``. The paper starts from the previous round's
    aggregate (momentum); a stateless rule starts from ``center`` (default: the coordinate
    median, which f < n/2 attackers cannot drag outside the honest range) with ``tau``
    (default: the ``n - f``-th smallest distance to that center, so that the honest majority
    moves unclipped while f outliers are cut to the honest radius). ``f`` only sets tau."""
    stack = _stack(updates)
    n = len(stack)
    if iterations < 1 or not 0 <= f < n:
        raise ValueError(f"centered clipping needs iterations >= 1 and 0 <= f < n; got {iterations}, f={f}, n={n}")
    v = np.median(stack, axis=0) if center is None else np.asarray(center, dtype=np.float64).copy()
    if v.shape != (stack.shape[1],):
        raise ValueError(f"center has {v.size} values, the updates {stack.shape[1]}")
    for it in range(iterations):
        diff = stack - v
        dist = np.sqrt(_row_sums(diff * diff, overwrite=True))
        radius = float(np.sort(dist)[n - f - 1]) if tau is None else float(tau)
        if it == 0 and radius < 0:
            raise ValueError(f"tau must be >= 0, got {radius}")
        scale = np.where(dist > radius, radius / np.maximum(dist, 1e-300), 1.0)
        v = v + _sum_rows(diff * scale[:, None]) / n
    return v.astype(np.float32)


def bucketize(updates: np.ndarray | list[np.ndarray], size: int, seed: int) -> np.ndarray:
    """Bucketing, Algorithm 1: shuffle the updates with a seeded permutation, average each run
    of ``size`` (the last bucket may be smaller), and return the bucket means. A robust rule on
    them then sees at most f bad means out of ceil(n/size), while heterogeneity between honest
    updates shrinks by about sqrt(size). The permutation must be one every peer derives alike
    and no committer can choose (e.g. from the round number): the peers' aggregates must match."""
    stack = _stack(updates)
    return np.stack([_mean(stack[members]) for members in bucket_members(len(stack), size, seed)])


def bucket_members(n: int, size: int, seed: int) -> list[list[int]]:
    """The indices of the updates averaged into each of :func:`bucketize`'s buckets."""
    if size < 1:
        raise ValueError(f"bucket size must be >= 1, got {size}")
    order = np.random.default_rng(seed).permutation(n)
    return [[int(j) for j in order[i:i + size]] for i in range(0, n, size)]


def cohort_weight(claim: float, cohort: float, cohorts: list[float]) -> float:
    """A member's weight inside a masked or encrypted sum (secagg, ckks), where no peer sees the
    round's other claims before summing: its claim capped at its admission ``cohort`` and at the
    lower median of the active members' ``cohorts``, both read from the registry before training.
    As in :func:`bounded_counts`, with ``f`` liars among ``n`` members the median is at most an
    honest cohort, so the liars' share of the weight is at most ``f / (floor(n/2) + 1)``."""
    top = np.asarray(cohorts, dtype=np.float64)
    if top.ndim != 1 or len(top) == 0 or not np.isfinite(top).all() or (top < 0).any():
        raise ValueError("cohorts must be one finite non-negative count per active member")
    if not (np.isfinite(claim) and claim >= 0 and np.isfinite(cohort) and cohort >= 0):
        raise ValueError(f"claim and cohort must be finite and non-negative, got {claim} and {cohort}")
    return float(min(claim, cohort, np.sort(top)[(len(top) - 1) // 2]))


def clip_norms(updates: np.ndarray | list[np.ndarray], max_norm: float | None = None) -> np.ndarray:
    """Scale each update down to L2 norm ``max_norm`` (default: the median norm). float64."""
    stack = _stack(updates)
    norms = np.sqrt(_row_sums(stack * stack, overwrite=True))
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
    "cclip": centered_clipping,
}
#: The rule a consortium gets unless it picks another: the geometric median, each member counted
#: once (RFA, Pillutla et al. 2022). Picked by measurement (issue 16, docs/robustness.md): over 5
#: data splits, 10 peers and 14-16 attacks at their strongest (min-max, min-sum, Fang et al., ALIE,
#: IPM, model replacement, label flip, ...), the only rule within 2 accuracy points of the clean run
#: at f <= 2 and within 5 at f = 3 on both the breast-cancer task and the 20-round non-IID imaging
#: task; the coordinate median (the old default) lost 4.5 / 6.9 points on the imaging task.
DEFAULT_RULE = "geomed"
_NEEDS_F = {"krum", "multi-krum", "bulyan", "trimmed-mean", "cclip"}


def minimum_updates(rule: str, f: int = 1) -> int:
    """The fewest updates ``rule`` accepts while tolerating ``f`` Byzantine peers."""
    return {"krum": 2 * f + 3, "multi-krum": 2 * f + 3, "bulyan": 4 * f + 3, "trimmed-mean": 2 * f + 1,
            "cclip": f + 1}.get(rule, 1)


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


def selection_by_peer(rule: str, updates: dict[str, np.ndarray], *, f: int = 1, bucket: int = 1,
                      seed: int = 0) -> list[str]:
    """:func:`selection` for updates keyed by registry address (canonical order); with
    ``bucket > 1`` the members of every bucket the rule keeps (see :func:`aggregate`)."""
    order = sorted(updates, key=str.lower)
    stack = np.stack([np.asarray(updates[a], dtype=np.float32) for a in order])
    if bucket <= 1:
        return [order[i] for i in selection(rule, stack, f=f)]
    buckets = bucket_members(len(stack), bucket, seed)
    keep = selection(rule, bucketize(stack, bucket, seed), f=f)
    return [order[i] for i in sorted(i for b in keep for i in buckets[b])]


def aggregate_by_peer(rule: str, updates: dict[str, np.ndarray], weights: dict[str, float] | None = None,
                      *, f: int = 1, clip: bool = False, ceilings: dict[str, float] | None = None,
                      bucket: int = 1, seed: int = 0) -> np.ndarray:
    """Aggregate updates keyed by registry address in the canonical order (ascending
    lower-case address), so arrival order never changes a bit of the result. ``weights`` are
    claimed sample counts and ``ceilings`` optional per-member bounds (see :func:`aggregate`)."""
    order = sorted(updates, key=str.lower)
    if len({a.lower() for a in order}) != len(order):
        raise ValueError("two updates from the same address")
    stack = np.stack([np.asarray(updates[a], dtype=np.float32) for a in order])
    w = None if weights is None else [weights[a] for a in order]
    top = None if ceilings is None else [ceilings[a] for a in order]
    return aggregate(rule, stack, w, f=f, clip=clip, ceilings=top, bucket=bucket, seed=seed)


def aggregate(rule: str, updates: np.ndarray | list[np.ndarray], weights: list[float] | None = None,
              *, f: int = 1, clip: bool = False, ceilings: list[float] | None = None,
              bucket: int = 1, seed: int = 0) -> np.ndarray:
    """Apply the rule named ``rule`` (a key of :data:`RULES`), optionally after norm clipping.

    ``f`` is the number of Byzantine peers the Krum family and Bulyan must tolerate.
    ``weights`` are the senders' claimed sample counts: FedAvg uses them only through
    :func:`bounded_counts` (capped at the median claim, and at ``ceilings`` if given); every
    other rule counts each member once and ignores them. ``bucket > 1`` applies the rule to
    :func:`bucketize` means (the permutation seeded by ``seed``, e.g. the round number; FedAvg
    and weights do not mix with it).
    """
    try:
        fn = RULES[rule]
    except KeyError:
        raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {', '.join(RULES)}") from None
    stack = clip_norms(updates) if clip else updates
    if bucket > 1:
        if rule == "fedavg":
            raise ValueError("bucketing is for the robust rules; FedAvg of bucket means is FedAvg")
        stack = bucketize(stack, bucket, seed)
    if rule == "fedavg":
        bounded = None if weights is None else bounded_counts(weights, ceilings)
        return fn(stack, bounded)
    return fn(stack, None, f=f) if rule in _NEEDS_F else fn(stack, None)
