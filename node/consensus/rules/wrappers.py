"""Pre-filters that wrap any rule (as Flower's wrapper strategies wrap any strategy):

- :class:`Clipped` — norm clipping before the rule (Sun et al., 2019, "Can You Really Backdoor
  Federated Learning?"), :func:`clip_norms`;
- :class:`Bucketed` — the rule on bucket means of ``s`` updates drawn in a seeded random order
  (Karimireddy, He & Jaggi, 2022, "Byzantine-Robust Learning on Heterogeneous Datasets via
  Bucketing", ICLR, Algorithm 1), :func:`bucketize`. A member is accepted when its bucket is.
"""

from __future__ import annotations

import numpy as np

from node.consensus.rules.base import AggregationRule, Outcome
from node.consensus.rules.reductions import mean_rows, row_sums, stack_updates
from node.errors import AggregationError

__all__ = ["clip_norms", "norm_scales", "bucketize", "Clipped", "Bucketed"]


def clip_norms(updates: np.ndarray | list[np.ndarray], max_norm: float | None = None) -> np.ndarray:
    """Scale each update down to L2 norm ``max_norm`` (default: the median norm). float64."""
    stack = stack_updates(updates)
    norms = np.sqrt(row_sums(stack * stack, overwrite=True))
    if max_norm is not None and max_norm <= 0:
        return np.zeros_like(stack)
    return stack * norm_scales(norms, max_norm)[:, None]


def norm_scales(norms: np.ndarray, max_norm: float | None = None) -> np.ndarray:
    """The factors ``min(1, M / |u|)`` (Sun et al., 2019) that clip updates of L2 norms ``norms``
    to ``M = max_norm`` (default: the median norm): what :func:`clip_norms` multiplies by, and what
    a mode that sees only the norms (ckks) applies to each ciphertext as a public plaintext."""
    norms = np.asarray(norms, dtype=np.float64)
    bound = float(np.median(norms)) if max_norm is None else float(max_norm)
    if bound <= 0:
        return np.zeros_like(norms) if max_norm is not None else np.ones_like(norms)
    return np.minimum(1.0, bound / np.maximum(norms, 1e-300))


def _buckets(n: int, size: int, seed: int) -> list[np.ndarray]:
    if size < 1:
        raise AggregationError(f"bucket size must be >= 1, got {size}")
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + size] for i in range(0, n, size)]


def bucketize(updates: np.ndarray | list[np.ndarray], size: int, seed: int) -> np.ndarray:
    """Bucketing, Algorithm 1: shuffle the updates with a seeded permutation, average each run
    of ``size`` (the last bucket may be smaller), and return the bucket means. A robust rule on
    them then sees at most f bad means out of ceil(n/size), while heterogeneity between honest
    updates shrinks by about sqrt(size). The permutation must be one every peer derives alike
    and no committer can choose (e.g. from the round number): the peers' aggregates must match."""
    stack = stack_updates(updates)
    return np.stack([mean_rows(stack[b]) for b in _buckets(len(stack), size, seed)])


class _Wrapper(AggregationRule):
    def __init__(self, inner: AggregationRule) -> None:
        super().__init__(inner.f)
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # a wrapper answers to its rule's name
        self.weighted = inner.weighted  # type: ignore[misc]

    def fewest(self) -> int:
        return self.inner.fewest()


class Clipped(_Wrapper):
    """``inner`` on the updates clipped to ``max_norm`` (default: the median norm)."""

    def __init__(self, inner: AggregationRule, max_norm: float | None = None) -> None:
        super().__init__(inner)
        self.max_norm = max_norm

    def select(self, updates: np.ndarray | list[np.ndarray]) -> list[int]:
        return self.inner.select(clip_norms(updates, self.max_norm))

    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        return self.inner.aggregate(clip_norms(updates, self.max_norm), weights)


class Bucketed(_Wrapper):
    """``inner`` on :func:`bucketize` means of ``size`` updates, the permutation seeded by ``seed``
    (e.g. the round number). Unweighted rules only: FedAvg of bucket means is FedAvg."""

    def __init__(self, inner: AggregationRule, size: int, seed: int) -> None:
        if inner.weighted:
            raise AggregationError(
                "bucketing is for the robust rules; FedAvg of bucket means is FedAvg"
            )
        super().__init__(inner)
        self.size, self.seed = size, seed

    def fewest(self) -> int:
        """Enough members for ``inner.fewest()`` bucket means."""
        return (self.inner.fewest() - 1) * self.size + 1

    def _members(self, n: int, kept: list[int]) -> list[int]:
        buckets = _buckets(n, self.size, self.seed)
        return sorted(int(i) for j in kept for i in buckets[j])

    def select(self, updates: np.ndarray | list[np.ndarray]) -> list[int]:
        stack = stack_updates(updates)
        return self._members(len(stack), self.inner.select(bucketize(stack, self.size, self.seed)))

    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        stack = stack_updates(updates)
        out = self.inner.aggregate(bucketize(stack, self.size, self.seed))
        return Outcome(out.params, self._members(len(stack), out.accepted))
