"""The utility of a coalition of hospitals in one round: the validation metric of the global
model moved by the aggregate of that coalition's updates.

``v(S) = metric(theta_t + step(S))`` and ``v({}) = metric(theta_t)``, as in GTG-Shapley (Liu
et al., 2022, Sec. 3): each round is its own game and the campaign's value of a hospital is
the sum over rounds. The metric comes from :mod:`node.learning.evaluation` on a validation set the
simulator holds back from every hospital.

``step(S)`` is the step the consortium actually applies, restricted to S (issue 16: a game on
a FedAvg step while the model moves by the median prices the wrong thing, and its values did
not add up to the real gain):

- the players the free-rider screen rejected (``kept`` false) are left out of every
  coalition: they are null players and their value is exactly zero;
- ``rule = "fedavg"``: ``sum over i in S of (b_i / b_K) update_i`` with ``b`` the round's
  claims bounded by :func:`node.consensus.rules.bounded_counts` (a claim never buys more than the
  median kept claim, as :func:`node.consensus.rules.aggregate` bounds them) and ``b_K`` their
  total over the kept players. Fixed weights, not renormalized within S: renormalizing would
  let a zero update shorten the others' steps, which pays whenever one of them hurts, and
  give a free-rider a Shapley value as large as an honest hospital's; with fixed weights a
  zero update is a null player;
- any other rule: :func:`node.consensus.rules.aggregate` of S's kept updates (each member counted
  once, claims ignored); a coalition smaller than the rule's minimum
  (its ``min_updates``: Krum and Bulyan) is valued by the coordinate
  median, which needs no minimum.

The grand coalition's step is bit for bit the applied one, so the Shapley values add up to the
round's real gain ``metric(theta_t+1) - metric(theta_t)`` (efficiency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from node.consensus.rules import aggregate, bounded_counts, rule_class
from node.data.samples import LabelledData
from node.learning.evaluation import binary_scores, predict_logits
from node.learning.models import load_flat_parameters

__all__ = ["METRICS", "metric_value", "RoundGame"]

METRICS = ("auc", "accuracy", "neg-logloss")


def metric_value(metric: str, y: np.ndarray, logits: np.ndarray) -> float:
    """``auc`` / ``accuracy`` from :func:`node.learning.evaluation.binary_scores`; ``neg-logloss`` is
    minus the mean binary cross-entropy (higher is better, like the others)."""
    if metric == "neg-logloss":
        z = np.asarray(logits, dtype=np.float64)
        t = np.asarray(y, dtype=np.float64)
        return -float(np.mean(np.logaddexp(0.0, z) - t * z))
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    scores = binary_scores(y, logits)
    return float(scores.auc if metric == "auc" else scores.accuracy)


@dataclass
class RoundGame:
    """One round's game over the ``updates`` (rows in player order) of its participants;
    ``samples`` are their claimed counts, ``kept`` which of them passed the free-rider screen
    (default: all), ``rule`` and ``f`` the consortium's aggregation."""

    model: torch.nn.Module
    params: np.ndarray
    updates: np.ndarray
    samples: np.ndarray
    validation: LabelledData
    metric: str = "auc"
    rule: str = "fedavg"
    f: int = 0
    kept: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.updates = np.asarray(self.updates, dtype=np.float32)
        if (
            self.updates.ndim != 2
            or len(self.updates) != len(self.samples)
            or len(self.updates) == 0
        ):
            raise ValueError(
                f"updates {self.updates.shape} and samples ({len(self.samples)}) do not match"
            )
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")
        self.kept = (
            np.ones(self.n, dtype=bool) if self.kept is None else np.asarray(self.kept, dtype=bool)
        )
        if self.kept.shape != (self.n,):
            raise ValueError(
                f"kept must have one flag per update ({self.n}), got shape {self.kept.shape}"
            )
        claims = np.asarray(self.samples, dtype=np.float64)
        self._weights = np.zeros(self.n)
        if self.kept.any():  # as aggregate() bounds the claims of what reaches the rule
            bounded = bounded_counts(claims[self.kept])
            self._weights[self.kept] = bounded / math.fsum(bounded.tolist())

    @property
    def n(self) -> int:
        return len(self.updates)

    def value_of(self, params: np.ndarray) -> float:
        load_flat_parameters(self.model, np.asarray(params, dtype=np.float32))
        return metric_value(
            self.metric, self.validation.y, predict_logits(self.model, self.validation)
        )

    def aggregate(self, mask: int) -> np.ndarray:
        kept = self.kept
        assert kept is not None, "__post_init__ sets kept"
        members = [i for i in range(self.n) if (mask >> i) & 1 and kept[i]]
        if not members:
            return np.zeros(self.updates.shape[1], dtype=np.float32)
        if self.rule == "fedavg":  # the terms of the applied FedAvg sum, in the same order
            total = np.zeros(self.updates.shape[1])
            for i in members:
                total += self._weights[i] * self.updates[i].astype(np.float64)
            return total.astype(np.float32)
        rule = self.rule if len(members) >= rule_class(self.rule).min_updates(self.f) else "median"
        return aggregate(rule, self.updates[members], f=self.f)

    def __call__(self, mask: int) -> float:
        return self.value_of(self.params + self.aggregate(mask))
