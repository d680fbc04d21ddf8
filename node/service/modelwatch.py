"""The alert rules a node runs on its own model and data after every round.

:class:`ModelWatch` scores the new global model on the hospital's validation rows
(:func:`validation_split`: site ``k``'s share of a built-in split's held-out set, never trained
on) for the accuracy-drop and bias-shift rules, and compares the current training rows with the
consortium's pooled feature statistics for the drift rule (the rules:
:mod:`node.monitoring.alerts`). It keeps what the rules compare against (every round's AUC
components, the last sensitivity gap, the drift baseline) and returns the alerts;
:class:`~node.service.metrics.Monitor` shows them as gauges and publishes them with the round.
:class:`UpdateWatch` hands the monitor the updates a peer opened, for the anomalous-update rule.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from node.monitoring.alerts import (
    Alert,
    AlertThresholds,
    AucComponents,
    accuracy_drop,
    bias_shift,
    campaign_z,
    feature_drift,
    sensitivity_gap,
    standardized_mean_differences,
)
from node.peer.mods import PeerMod

if TYPE_CHECKING:
    from node.data.samples import LabelledData
    from node.service.config import DataSection

__all__ = ["ModelWatch", "UpdateWatch", "validation_split", "KEEP_ROUNDS"]

KEEP_ROUNDS = 50  # rounds the status page remembers (and the AUC history the rule keeps)


def validation_split(data_cfg: DataSection) -> LabelledData | None:
    """The hospital's validation rows: for the built-in splits, site ``k``'s share (every
    ``sites``-th row from ``k``) of the split's held-out test set, never trained on; for a
    hospital's own files, None (the node then scores its training rows, an optimistic view)."""
    test: LabelledData
    if data_cfg.source == "breast-cancer":
        from node.data.samples import breast_cancer_split

        test = breast_cancer_split(data_cfg.sites, seed=data_cfg.seed).test
    elif data_cfg.source == "synthetic-imaging":
        from node.data.datasets import synthetic_imaging_split

        test = synthetic_imaging_split(data_cfg.sites, seed=data_cfg.seed).test
    else:
        return None
    return test.subset(np.arange(data_cfg.site, len(test), data_cfg.sites))


class ModelWatch:
    """The model and data alert rules of one node, with the history they compare against."""

    def __init__(self, thresholds: AlertThresholds, campaign_rounds: int = KEEP_ROUNDS) -> None:
        self.thresholds = thresholds
        self.auc_z = campaign_z(
            thresholds.auc_alpha, campaign_rounds
        )  # accuracy drop, campaign-wide
        self.validation: LabelledData | None = None  # None: the node scores its training rows
        self._auc_history: list[AucComponents] = []  # every round's model on the validation rows
        self._gap: float = float("nan")
        self._drift_baseline: np.ndarray | None = None
        self._eval_model: Any = None

    def model_alerts(
        self, round_: int, scores, labels: np.ndarray, logits: np.ndarray
    ) -> tuple[list[Alert], float]:
        """Accuracy-drop and bias-shift rules on the new global model's validation scores
        (``logits`` on the validation rows ``labels``, the same rows every round); the alerts and
        the model's sensitivity gap between groups."""
        alerts = []
        parts = AucComponents.of(labels, logits)
        a = (
            None
            if parts is None
            else accuracy_drop(
                self._auc_history, parts, round_, self.thresholds.auc_drop, self.auc_z
            )
        )
        if a:
            alerts.append(a)
        by_group = {g: s.sensitivity for g, s in scores.by_group.items()}
        b = bias_shift(self._gap, by_group, round_, self.thresholds.bias_gap)
        if b:
            alerts.append(b)
        if parts is not None:
            self._auc_history = (self._auc_history + [parts])[-KEEP_ROUNDS:]
        gap = sensitivity_gap(by_group)
        self._gap = gap if not math.isnan(gap) else self._gap
        return alerts, gap

    def drift_alerts(
        self,
        round_: int,
        rows: np.ndarray,
        pooled_mean: np.ndarray,
        pooled_std: np.ndarray,
        names=None,
    ) -> tuple[list[Alert], float]:
        """The drift rule: this hospital's current rows against the consortium's pooled mean and
        standard deviation (what the standardizer agreed on); the alerts and the largest move of
        a feature's standardized mean difference. The first call fixes the baseline."""
        smd = standardized_mean_differences(rows, pooled_mean, pooled_std)
        if self._drift_baseline is None:
            self._drift_baseline = smd
            return [], 0.0
        moved = float(np.max(np.abs(smd - self._drift_baseline)))
        alert = feature_drift(smd, self._drift_baseline, round_, self.thresholds.drift_smd, names)
        return ([alert] if alert else []), moved

    def evaluate(self, peer: Any) -> tuple[Any, Any, np.ndarray] | None:
        """The peer's global model on the validation rows: (rows, scores, logits), or None
        before the peer holds its (standardized) data."""
        if peer.data is None:
            return None
        from node.learning.evaluation import evaluate, predict_logits
        from node.learning.models import load_flat_parameters

        if self._eval_model is None:
            self._eval_model = copy.deepcopy(peer.model)
        load_flat_parameters(self._eval_model, peer.global_params)
        if self.validation is None:
            rows = peer.data
        elif peer.standardizer is not None:  # tabular: the consortium's scaling
            rows = peer.standardizer.apply(self.validation)
        else:  # images: the loader's scaling, mapped to features where the model needs them
            from node.learning.models import model_input

            rows = model_input(peer.settings.model, self.validation)
        return rows, evaluate(self._eval_model, rows), predict_logits(self._eval_model, rows)


class UpdateWatch(PeerMod):
    """Hands the updates a peer opened, and the step its aggregate takes, to ``check`` (the
    monitor's anomalous-update rule); a failure is handed to ``log``, never to the round."""

    def __init__(
        self,
        check: Callable[[int, dict[str, object], np.ndarray], object],
        log: Callable[..., None],
    ) -> None:
        self.check, self.log = check, log

    async def aggregated(
        self, peer, round_: int, opened: dict[str, object], params: np.ndarray | None
    ) -> None:
        if params is None:
            return
        try:
            self.check(round_, opened, params - peer.global_params)
        except Exception as exc:  # monitoring must never break a round
            self.log("monitor_error", round_, error=str(exc)[:160])
