"""The utility of a coalition of hospitals in one round: the validation metric of the global
model moved by the aggregate of that coalition's updates.

``v(S) = metric(theta_t + step(S))`` and ``v({}) = metric(theta_t)``, as in GTG-Shapley (Liu
et al., 2022, Sec. 3): each round is its own game and the campaign's value of a hospital is
the sum over rounds. The metric comes from :mod:`node.evaluation` on a validation set the
simulator holds back from every hospital.

``step(S)`` is the round's FedAvg step restricted to S's terms: ``sum over i in S of
(n_i / n_N) update_i``, i.e. :func:`node.aggregation.fedavg` of S scaled by S's share of the
round's samples; the grand coalition's step is plain FedAvg. Renormalizing the weights within
each coalition instead would let a zero update shorten the others' steps, which pays
whenever one of them hurts (a noisy or poisoned update) and then gives a free-rider a
Shapley value as large as an honest hospital's. With fixed weights a zero update is a null
player: its Shapley value is exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from node.aggregation import fedavg
from node.data import LabelledData
from node.evaluation import binary_scores, predict_logits
from node.models import load_flat_parameters

__all__ = ["METRICS", "metric_value", "RoundGame"]

METRICS = ("auc", "accuracy", "neg-logloss")


def metric_value(metric: str, y: np.ndarray, logits: np.ndarray) -> float:
    """``auc`` / ``accuracy`` from :func:`node.evaluation.binary_scores`; ``neg-logloss`` is
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
    """One round's game over the ``updates`` (rows in player order) of its participants."""

    model: torch.nn.Module
    params: np.ndarray
    updates: np.ndarray
    samples: np.ndarray
    validation: LabelledData
    metric: str = "auc"

    def __post_init__(self) -> None:
        self.updates = np.asarray(self.updates, dtype=np.float32)
        if self.updates.ndim != 2 or len(self.updates) != len(self.samples) or len(self.updates) == 0:
            raise ValueError(f"updates {self.updates.shape} and samples ({len(self.samples)}) do not match")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")

    @property
    def n(self) -> int:
        return len(self.updates)

    def value_of(self, params: np.ndarray) -> float:
        load_flat_parameters(self.model, np.asarray(params, dtype=np.float32))
        return metric_value(self.metric, self.validation.y, predict_logits(self.model, self.validation))

    def aggregate(self, mask: int) -> np.ndarray:
        members = [i for i in range(self.n) if (mask >> i) & 1]
        if not members:
            return np.zeros(self.updates.shape[1], dtype=np.float32)
        share = float(np.sum(self.samples[members]) / np.sum(self.samples))
        return (fedavg(self.updates[members], [float(self.samples[i]) for i in members]) * share).astype(np.float32)

    def __call__(self, mask: int) -> float:
        return self.value_of(self.params + self.aggregate(mask))
