"""The aggregation-rule interface and its registry (in the style of Flower's ``Strategy`` and
Opacus' accountant registry: one class per rule, registered by name, a factory that raises on an
unknown name).

A rule takes ``updates`` of shape (n, d) — rows already in the canonical order (ascending
registry address), which every honest peer uses — and returns an :class:`Outcome`: one float32
vector of length d and the indices of the rows it keeps whole ("accepted", which peers attest),
computed in one pass. All arithmetic is float64 with a fixed reduction order
(:mod:`node.consensus.rules.reductions`), rounded once to float32, so every peer computes the
same bits from the same committed set.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple

import numpy as np

from node.consensus.rules.reductions import stack_updates
from node.errors import AggregationError

__all__ = ["Outcome", "AggregationRule", "RULES", "register", "rule_class"]


class Outcome(NamedTuple):
    params: np.ndarray  # float32, length d
    accepted: list[int]  # rows kept whole, ascending


class AggregationRule(ABC):
    """One aggregation rule, configured with ``f``, the Byzantine peers it must tolerate.

    ``needs_individual_updates``: False only for a rule that a sum of the updates serves (FedAvg),
    so that the sum-only protection modes (secagg, ckks) can run it. ``weighted``: the rule applies
    per-update weights (bounded sample counts); the robust rules count each member once.
    ``from_distances``: the rule's accepted set follows from the pairwise squared distances alone
    (:meth:`select_from_distances`), so that a mode which reveals only those scalars (ckks with
    encrypted inner products) can run it, the aggregate being the mean of the accepted rows."""

    name: ClassVar[str]
    needs_individual_updates: ClassVar[bool] = True
    weighted: ClassVar[bool] = False
    from_distances: ClassVar[bool] = False

    def __init__(self, f: int = 1) -> None:
        self.f = f

    @classmethod
    def min_updates(cls, f: int = 1) -> int:
        """The fewest updates the rule accepts while tolerating ``f`` Byzantine peers."""
        return 1

    def fewest(self) -> int:
        """:meth:`min_updates` of this configured rule (a wrapper may need more)."""
        return self.min_updates(self.f)

    @abstractmethod
    def aggregate(
        self, updates: np.ndarray | list[np.ndarray], weights: np.ndarray | None = None
    ) -> Outcome:
        """The aggregate and the accepted rows, in one pass."""

    def select(self, updates: np.ndarray | list[np.ndarray]) -> list[int]:
        """The accepted rows alone. Rules that down-weight values rather than senders (FedAvg,
        the coordinate-wise rules) keep every update."""
        return list(range(len(stack_updates(updates))))

    def select_from_distances(self, dist: np.ndarray) -> list[int]:
        """The accepted rows from an (n, n) matrix of squared distances, for a rule marked
        ``from_distances``: the same rows :meth:`select` keeps on the updates themselves."""
        raise ValueError(f"aggregation rule {self.name!r} cannot select from distances alone")


RULES: dict[str, type[AggregationRule]] = {}


def register(cls: type[AggregationRule]) -> type[AggregationRule]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in RULES:
        raise AggregationError(f"aggregation rule {cls.name!r} is registered twice")
    RULES[cls.name] = cls
    return cls


def rule_class(name: str) -> type[AggregationRule]:
    """The registered rule called ``name``; ValueError naming the choices otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise AggregationError(
            f"unknown aggregation rule {name!r}; choose one of {', '.join(RULES)}"
        ) from None
