"""Metrics on a held-out set, and the two baselines every federated result is read against.

- centralized: the same model trained on all hospitals' rows pooled, without DP — the
  ceiling a federation tries to approach (and which no real consortium may legally run);
- local-only: each hospital training alone, under the same DP budget and step count it
  spends in the federation — what a hospital gets without joining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from node.data import TabularData
from node.models import build_model, flat_parameters, load_flat_parameters
from node.privacy import DPConfig, PrivacyLedger
from node.training import TrainConfig, train_local

__all__ = ["Scores", "evaluate", "centralized_baseline", "local_only_baseline"]


@dataclass(frozen=True)
class Scores:
    auc: float
    accuracy: float

    def to_json(self) -> dict:
        return {"auc": round(self.auc, 4), "accuracy": round(self.accuracy, 4)}


def evaluate(model: torch.nn.Module, data: TabularData) -> Scores:
    """AUC of the logits and accuracy at logit 0 (probability 0.5)."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(data.x)).numpy()
    auc = roc_auc_score(data.y, logits) if 0 < data.y.sum() < len(data.y) else float("nan")
    return Scores(float(auc), float(((logits > 0) == (data.y > 0.5)).mean()))


def centralized_baseline(model_name: str, train: TabularData, test: TabularData, *,
                         epochs: int = 200, learning_rate: float = 0.5, seed: int = 0) -> Scores:
    """Full-batch gradient descent on the pooled rows, no DP."""
    model = build_model(model_name, train.n_features, seed=seed)
    dp = DPConfig(enabled=False, steps_per_epoch=1, local_epochs=epochs, rounds=1)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ledger = PrivacyLedger(dp)
    train_local(model, flat_parameters(model), train, ledger, TrainConfig(learning_rate, seed))
    return evaluate(model, test)


def local_only_baseline(model_name: str, data: TabularData, test: TabularData, dp: DPConfig,
                        train_config: TrainConfig, rounds: int) -> Scores:
    """One hospital alone for ``rounds`` rounds of local training under its own DP budget."""
    model = build_model(model_name, data.n_features, seed=train_config.seed)
    ledger = PrivacyLedger(dp)
    params = flat_parameters(model)
    for r in range(rounds):
        cfg = TrainConfig(train_config.learning_rate, train_config.seed * 1000 + r)
        params = params + train_local(model, params, data, ledger, cfg).delta
    load_flat_parameters(model, params)
    return evaluate(model, test)
