"""Metrics on a held-out set, per site and per group, and the two baselines every federated
result is read against.

Metrics (binary, positive class 1): AUC of the logits; accuracy, F1, sensitivity (recall of
positives) and specificity (recall of negatives) at logit 0, i.e. probability 0.5. A metric
that is undefined on the data (AUC with one class present, sensitivity without positives...)
is NaN, never a made-up number. When the data carry a group column (sex, age band, scanner...)
:func:`evaluate` also reports every metric per group: the fairness check clinicians ask for.

Baselines:
- centralized: the same model trained on all hospitals' rows pooled, without DP — the
  ceiling a federation tries to approach (and which no real consortium may legally run);
- local-only: each hospital training alone, under the same DP budget and step count it
  spends in the federation — what a hospital gets without joining.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from node.data.samples import LabelledData
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, round_train_config, train_local

__all__ = [
    "Scores",
    "evaluate",
    "evaluate_sites",
    "binary_scores",
    "predict_logits",
    "centralized_baseline",
    "local_only_baseline",
]


def _r(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)


@dataclass(frozen=True)
class Scores:
    auc: float
    accuracy: float
    f1: float = float("nan")
    sensitivity: float = float("nan")
    specificity: float = float("nan")
    n: int = 0
    positives: int = 0
    by_group: dict[str, Scores] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Rounded metrics (NaN as null), with ``by_group`` only when groups were given."""
        out: dict[str, object] = {
            "auc": _r(self.auc),
            "accuracy": _r(self.accuracy),
            "f1": _r(self.f1),
            "sensitivity": _r(self.sensitivity),
            "specificity": _r(self.specificity),
            "n": self.n,
            "positives": self.positives,
        }
        if self.by_group:
            out["by_group"] = {g: s.to_json() for g, s in self.by_group.items()}
        return out


def binary_scores(y: np.ndarray, logits: np.ndarray) -> Scores:
    """Metrics of ``logits`` against 0/1 labels ``y`` (threshold: logit 0)."""
    from sklearn.metrics import (
        roc_auc_score,
    )  # here: scikit-learn costs a node process ~2 s at start

    y = np.asarray(y) > 0.5
    logits = np.asarray(logits, dtype=np.float64)
    pred = logits > 0
    tp, tn = int((pred & y).sum()), int((~pred & ~y).sum())
    fp, fn = int((pred & ~y).sum()), int((~pred & y).sum())
    pos, n = int(y.sum()), len(y)
    nan = float("nan")
    auc = float(roc_auc_score(y, logits)) if 0 < pos < n else nan
    return Scores(
        auc=auc,
        accuracy=(tp + tn) / n if n else nan,
        f1=2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else nan,
        sensitivity=tp / pos if pos else nan,
        specificity=tn / (n - pos) if n - pos else nan,
        n=n,
        positives=pos,
    )


def predict_logits(
    model: torch.nn.Module, data: LabelledData, *, batch_size: int = 512
) -> np.ndarray:
    """The model's logits for every sample, in batches, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            xb = torch.from_numpy(data.x[start : start + batch_size]).to(device)
            out.append(model(xb).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def evaluate(model: torch.nn.Module, data: LabelledData) -> Scores:
    """AUC, accuracy, F1, sensitivity and specificity; per group too when ``data.groups``."""
    logits = predict_logits(model, data)
    overall = binary_scores(data.y, logits)
    if data.groups is None:
        return overall
    by_group = {
        str(g): binary_scores(data.y[data.groups == g], logits[data.groups == g])
        for g in np.unique(data.groups)
    }
    return Scores(**{**overall.__dict__, "by_group": by_group})


def evaluate_sites(model: torch.nn.Module, sites: dict[str, LabelledData]) -> dict[str, Scores]:
    """:func:`evaluate` on each site's own held-out data (the model's view from each hospital)."""
    return {name: evaluate(model, data) for name, data in sites.items()}


def _model_for(model_name: str, data: LabelledData, seed: int) -> torch.nn.Module:
    if data.x.ndim == 2:
        return build_model(model_name, data.n_features, seed=seed)
    return build_model(model_name, input_shape=data.input_shape, seed=seed)


def centralized_baseline(
    model_name: str,
    train: LabelledData,
    test: LabelledData,
    *,
    epochs: int = 200,
    learning_rate: float = 0.5,
    seed: int = 0,
    steps_per_epoch: int = 1,
) -> Scores:
    """Gradient descent on the pooled rows, no DP (full batch by default)."""
    model = _model_for(model_name, train, seed)
    dp = DPConfig(enabled=False, steps_per_epoch=steps_per_epoch, local_epochs=epochs, rounds=1)
    ledger = PrivacyLedger(dp, warn_if_off=False)
    train_local(model, flat_parameters(model), train, ledger, TrainConfig(learning_rate, seed))
    return evaluate(model, test)


def local_only_baseline(
    model_name: str,
    data: LabelledData,
    test: LabelledData,
    dp: DPConfig,
    train_config: TrainConfig,
    rounds: int,
) -> Scores:
    """One hospital alone for ``rounds`` rounds of local training under its own DP budget."""
    model = _model_for(model_name, data, train_config.seed)
    ledger = PrivacyLedger(dp)
    params = flat_parameters(model)
    for r in range(rounds):
        params = (
            params
            + train_local(model, params, data, ledger, round_train_config(train_config, r)).delta
        )
    load_flat_parameters(model, params)
    return evaluate(model, test)
