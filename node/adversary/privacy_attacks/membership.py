"""Loss-threshold membership inference (Yeom, Giacomelli, Fredrikson and Jha, CSF 2018, Sec. 3.2,
the "threshold" adversary): guess "member" when a sample's loss is below a threshold tau.

Sweeping tau over every value gives the attack's ROC; its AUC is the probability that a random
member has a lower loss than a random non-member (0.5: no better than a coin). The members are
samples the model was trained on, the non-members samples from the same distribution it never
saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from node.data.samples import LabelledData
from node.learning.evaluation import predict_logits

__all__ = ["MembershipResult", "per_sample_losses", "loss_threshold_attack"]


@dataclass(frozen=True)
class MembershipResult:
    auc: float
    advantage: (
        float  # max over tau of (true-positive rate - false-positive rate), Yeom et al.'s Adv
    )
    members: int
    non_members: int


def per_sample_losses(model: nn.Module, data: LabelledData) -> np.ndarray:
    """Binary cross-entropy of each sample under ``model`` (the project's one-logit models)."""
    logits = torch.as_tensor(predict_logits(model, data), dtype=torch.float64)
    y = torch.as_tensor(data.y, dtype=torch.float64)
    return nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").numpy()


def loss_threshold_attack(
    member_losses: np.ndarray, non_member_losses: np.ndarray
) -> MembershipResult:
    """AUC and best advantage of guessing "member" for a loss below each threshold."""
    m, o = (
        np.asarray(member_losses, dtype=np.float64),
        np.asarray(non_member_losses, dtype=np.float64),
    )
    if len(m) == 0 or len(o) == 0:
        raise ValueError("need at least one member and one non-member")
    if not (np.isfinite(m).all() and np.isfinite(o).all()):
        raise ValueError("losses must be finite")
    truth = np.concatenate([np.ones(len(m)), np.zeros(len(o))])
    score = -np.concatenate([m, o])  # lower loss: more likely a member
    auc = float(roc_auc_score(truth, score))
    taus = np.unique(np.concatenate([m, o]))
    tpr = (m[None, :] <= taus[:, None]).mean(axis=1)
    fpr = (o[None, :] <= taus[:, None]).mean(axis=1)
    return MembershipResult(auc, float(np.max(tpr - fpr)), len(m), len(o))
