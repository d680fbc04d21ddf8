"""Alert rules a hospital evaluates locally, every round, without sharing a row.

- **accuracy drop**: the new global model's AUC on the hospital's own validation split falls by
  more than ``auc_drop`` below an earlier round's (the previous one, the best so far), and the
  drop is significant at a campaign-wide false-alarm rate ``auc_alpha``: DeLong's paired test
  (the same rows score both models) with a Bonferroni bound over every pair of rounds.
- **bias shift**: the gap in sensitivity (true-positive rate) between the groups of the validation
  split widens by more than ``bias_gap`` against the previous round (equal opportunity, Hardt,
  Price & Srebro, NeurIPS 2016: a fair classifier has equal TPR across groups).
- **anomalous update**: among the updates this hospital opened in a round, a sender whose update
  norm has a robust z-score above ``norm_z`` (modified z-score ``0.6745 (x - median) / MAD``,
  Iglewicz & Hoaglin, *How to Detect and Handle Outliers*, 1993, who recommend 3.5), or whose
  cosine to the aggregate step is below ``min_cosine`` (the sign test of FLTrust, Cao et al.,
  NDSS 2021, and the direction screen of FoolsGold, Fung et al., RAID 2020).
- **drift**: the hospital's current rows against the consortium's pooled feature statistics
  (the mean and standard deviation the standardizer agreed on: a secure sum of every site's
  counts, sums and sums of squares, or public bounds; :mod:`node.data.scaling`), per feature as a
  standardized mean difference ``d = (mean_local - mean_pooled) / sqrt((s_local^2 + s_pooled^2) / 2)``
  (Austin, Stat Med 28:3083, 2009, eq. 1; |d| > 0.1 marks imbalance there, |d| of 0.5 is Cohen's
  "medium" effect). Alerted when some feature's ``d`` moved by more than ``drift_smd`` from the
  hospital's own first-round value: a site that always differed (case mix) is not drift, a site
  whose scanner changed is. Nothing leaves the hospital: the pooled statistics are already shared.

Threat limit: an adaptive poisoner who keeps its norm inside the crowd and its direction within
``min_cosine`` of the aggregate raises no anomalous-update alert; these alerts report what the
robust rule let through or nearly did, they do not replace it. The senders' norms are the
opened updates' own (never self-reported numbers), so a sender cannot claim a norm.
Each rule is a plain function over numbers; :class:`node.service.metrics.Monitor` feeds them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "ALERT_KINDS",
    "AUC_ALPHA",
    "Alert",
    "AlertThresholds",
    "AucComponents",
    "accuracy_drop",
    "anomalous_updates",
    "auc_difference",
    "bias_shift",
    "campaign_z",
    "cosine",
    "feature_drift",
    "robust_z",
    "sensitivity_gap",
    "standardized_mean_differences",
    "update_screen",
]

ALERT_KINDS = ("accuracy_drop", "bias_shift", "anomalous_update", "drift")
_MAD_SCALE = 0.6745  # the normal's 0.75 quantile: makes MAD comparable to a standard deviation
#: chance, per hospital and campaign, of any false accuracy-drop alert (see :func:`campaign_z`)
AUC_ALPHA = 0.05
#: MAD is floored at this share of the median norm: honest hospitals of different sizes send
#: DP-noised updates whose norms differ persistently (a small site's noise is larger), and with 4
#: senders the raw MAD can be tiny. With the floor, an alert needs a norm above
#: ``median * (1 + norm_z * 0.25 / 0.6745)`` (2.3x the median at norm_z = 3.5).
NORM_MAD_FLOOR = 0.25
_MEANAD_SCALE = 1.253314  # sqrt(pi / 2): the normal's mean absolute deviation is 0.7979 sigma


@dataclass(frozen=True)
class AlertThresholds:
    auc_drop: float = 0.05
    bias_gap: float = 0.2
    norm_z: float = 3.5
    min_cosine: float = (
        -0.5
    )  # honest DP-noised updates scatter around 0 (a 4-node run showed -0.002)
    drift_smd: float = (
        0.5  # Cohen's "medium" effect; see scripts/bench_alerts.py --scenarios legacy_scanner
    )
    auc_alpha: float = (
        AUC_ALPHA  # family-wise false-alarm rate of the accuracy-drop rule over a campaign
    )

    def __post_init__(self) -> None:
        for key in ("auc_drop", "bias_gap", "norm_z", "drift_smd"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if not 0 < self.auc_alpha < 1:
            raise ValueError(f"auc_alpha must be in (0, 1), got {self.auc_alpha}")
        if not -1 <= self.min_cosine <= 1:
            raise ValueError(f"min_cosine must be in [-1, 1], got {self.min_cosine}")


@dataclass(frozen=True)
class Alert:
    kind: str  # one of ALERT_KINDS
    round: int
    message: str  # one line for the log and the status page
    subject: str = ""  # the sender for anomalous_update, else ""
    value: float = 0.0

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "round": self.round,
            "message": self.message,
            "subject": self.subject,
            "value": None if math.isnan(self.value) else round(self.value, 4),
        }


@dataclass(frozen=True)
class AucComponents:
    """One model's AUC on a set of rows with DeLong's structural components: ``v10[i]``, the share
    of negatives positive ``i`` outranks, and ``v01[j]``, the share of positives that outrank
    negative ``j`` (ties count half). Kept per round, so a new round is compared with all earlier
    ones without scoring them again."""

    auc: float
    v10: np.ndarray
    v01: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray, scores: np.ndarray) -> AucComponents | None:
        """From midranks (Sun & Xu, IEEE SPL 21, 2014); None where a class has fewer than 2 rows."""
        y = np.asarray(labels) > 0.5
        m, n = int(y.sum()), int((~y).sum())
        if m < 2 or n < 2:
            return None
        s = np.asarray(scores, dtype=np.float64)
        pos, neg = s[y], s[~y]
        tx, ty, tz = rankdata(pos), rankdata(neg), rankdata(np.concatenate([pos, neg]))
        return cls(
            float((tz[:m].sum() - m * (m + 1) / 2) / (m * n)),
            (tz[:m] - tx) / n,
            1.0 - (tz[m:] - ty) / m,
        )


def _difference_se(a: AucComponents, b: AucComponents) -> float:
    """DeLong, DeLong & Clarke-Pearson (Biometrics 44, 1988): with ``S10``, ``S01`` the 2x2
    covariances of the two models' components, ``var(A1 - A2) = (S10_11 + S10_22 - 2 S10_12) / m
    + (S01_11 + S01_22 - 2 S01_12) / n``."""
    s10, s01 = np.cov(np.stack([a.v10, b.v10])), np.cov(np.stack([a.v01, b.v01]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / a.v10.size + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / a.v01.size
    return math.sqrt(max(float(var), 0.0))


def auc_difference(
    labels: np.ndarray, reference: np.ndarray, new: np.ndarray
) -> tuple[float, float, float]:
    """Two models' AUCs on the same rows and the DeLong standard error of their difference:
    ``(auc_ref, auc_new, se)``, NaN where a class has fewer than 2 rows."""
    a, b = AucComponents.of(labels, reference), AucComponents.of(labels, new)
    if a is None or b is None:
        return float("nan"), float("nan"), float("nan")
    return a.auc, b.auc, _difference_se(a, b)


def campaign_z(alpha: float, rounds: int) -> float:
    """The one-sided normal quantile that keeps the chance of any false accuracy-drop alert in a
    campaign of ``rounds`` rounds at ``alpha`` (Bonferroni): every round is compared with every
    earlier one, ``rounds (rounds - 1) / 2`` tests in all."""
    if not 0 < alpha < 1 or rounds < 1:
        raise ValueError(f"need 0 < alpha < 1 and rounds >= 1, got alpha={alpha}, rounds={rounds}")
    return NormalDist().inv_cdf(1 - alpha / max(1, rounds * (rounds - 1) // 2))


def accuracy_drop(
    history: Sequence[AucComponents], new: AucComponents, round_: int, threshold: float, z: float
) -> Alert | None:
    """An alert if the new model's AUC is more than ``threshold`` below an earlier round's
    (``history``: every earlier round's model on the same validation rows) and the drop exceeds
    ``z`` DeLong standard errors of the paired difference. Every earlier round is a reference
    (the previous one and the best so far among them); the most significant drop is reported.
    ``z`` comes from :func:`campaign_z`."""
    worst: tuple[float, int, float, float] | None = None  # (z, round index, reference AUC, drop)
    for j, past in enumerate(history):
        drop = past.auc - new.auc
        if drop <= threshold:  # the cheap test first: most rounds stop here
            continue
        se = _difference_se(past, new)
        score = drop / se if se > 0 else math.inf
        if score > z and (worst is None or score > worst[0]):
            worst = (score, j, past.auc, drop)
    if worst is None:
        return None
    score, j, ref, drop = worst
    which = (
        "the previous round's"
        if j == len(history) - 1
        else f"that of {len(history) - j} rounds earlier"
    )
    return Alert(
        "accuracy_drop",
        round_,
        f"validation AUC {new.auc:.3f} is {drop:.3f} below {which} ({ref:.3f}), "
        f"{score:.1f} DeLong SE > {z:.2f}",
        value=drop,
    )


def sensitivity_gap(by_group: Mapping[str, float]) -> float:
    """The largest minus the smallest per-group sensitivity (NaN groups, without positives, skipped)."""
    values = [v for v in by_group.values() if not math.isnan(v)]
    return max(values) - min(values) if len(values) >= 2 else float("nan")


def bias_shift(
    previous_gap: float, by_group: Mapping[str, float], round_: int, threshold: float
) -> Alert | None:
    """An alert if the sensitivity gap across groups widened by more than ``threshold``."""
    gap = sensitivity_gap(by_group)
    if math.isnan(gap) or math.isnan(previous_gap) or gap - previous_gap <= threshold:
        return None
    return Alert(
        "bias_shift",
        round_,
        f"sensitivity gap between groups widened from {previous_gap:.3f} to {gap:.3f}",
        value=gap - previous_gap,
    )


def robust_z(values: Sequence[float], floor: float = 0.0) -> np.ndarray:
    """Modified z-scores ``0.6745 (x - median) / MAD`` (Iglewicz & Hoaglin 1993), with MAD at
    least ``floor * |median|``. Where MAD is 0 (over half the values equal) and no floor is
    given, the mean absolute deviation stands in, ``(x - median) / (1.253314 MeanAD)`` (the same
    scaling for a normal; IBM SPSS's convention); all zero if every value is equal."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return x
    med = np.median(x)
    mad = max(float(np.median(np.abs(x - med))), floor * abs(float(med)))
    if mad > 0:
        return _MAD_SCALE * (x - med) / mad
    mean_ad = np.mean(np.abs(x - med))
    return (x - med) / (_MEANAD_SCALE * mean_ad) if mean_ad > 0 else np.zeros_like(x)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; NaN when either vector is zero."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def update_screen(
    deltas: Mapping[str, np.ndarray], aggregate_step: np.ndarray
) -> dict[str, dict[str, float]]:
    """Per sender: the update's L2 norm, its robust z-score in the round, its cosine to the aggregate step."""
    senders = sorted(deltas)
    norms = [float(np.linalg.norm(np.asarray(deltas[s], dtype=np.float64))) for s in senders]
    zs = robust_z(norms, NORM_MAD_FLOOR) if len(senders) >= 3 else np.zeros(len(senders))
    return {
        s: {"norm": n, "z": float(z), "cosine": cosine(deltas[s], aggregate_step)}
        for s, n, z in zip(senders, norms, zs, strict=False)
    }


def anomalous_updates(
    deltas: Mapping[str, np.ndarray],
    aggregate_step: np.ndarray,
    round_: int,
    thresholds: AlertThresholds,
) -> list[Alert]:
    """One alert per sender whose update norm is a robust outlier (needs >= 3 updates) or whose
    direction is further from the aggregate step than ``min_cosine``, in sender order."""
    alerts = []
    for sender, m in update_screen(deltas, aggregate_step).items():
        norm, z, cos = m["norm"], m["z"], m["cosine"]
        reasons = []
        if z > thresholds.norm_z:
            reasons.append(f"norm {norm:.4g} has robust z-score {z:.1f} > {thresholds.norm_z:g}")
        if not math.isnan(cos) and cos < thresholds.min_cosine:
            reasons.append(f"cosine to the aggregate step {cos:.3f} < {thresholds.min_cosine:g}")
        if reasons:
            alerts.append(
                Alert(
                    "anomalous_update",
                    round_,
                    f"update from {sender}: " + "; ".join(reasons),
                    subject=sender,
                    value=z if z > thresholds.norm_z else cos,
                )
            )
    return alerts


def standardized_mean_differences(
    rows: np.ndarray, pooled_mean: np.ndarray, pooled_std: np.ndarray
) -> np.ndarray:
    """Per feature, Austin's (2009, eq. 1) standardized mean difference of ``rows`` (one row per
    patient, raw units) against the pooled mean and standard deviation; features that are
    constant in both get 0."""
    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    mean, std = np.asarray(pooled_mean, dtype=np.float64), np.asarray(pooled_std, dtype=np.float64)
    if x.shape[0] < 2 or x.shape[1] != mean.size or mean.shape != std.shape:
        raise ValueError(f"need >= 2 rows of {mean.size} features, got {x.shape}")
    spread = np.sqrt((x.var(axis=0, ddof=1) + std * std) / 2)
    diff = x.mean(axis=0) - mean
    return np.divide(diff, spread, out=np.zeros_like(diff), where=spread > 0)


def feature_drift(
    smd: np.ndarray,
    baseline: np.ndarray,
    round_: int,
    threshold: float,
    names: Sequence[str] | None = None,
) -> Alert | None:
    """An alert if a feature's standardized mean difference moved by more than ``threshold``
    from ``baseline`` (the same hospital's, at its first round); names the feature that moved most."""
    moved = np.abs(np.asarray(smd, dtype=np.float64) - np.asarray(baseline, dtype=np.float64))
    over = int((moved > threshold).sum())
    if over == 0:
        return None
    j = int(np.argmax(moved))
    name = names[j] if names is not None and j < len(names) else f"feature {j}"
    return Alert(
        "drift",
        round_,
        f"local feature means drifted from the consortium's: {over} feature(s) moved more "
        f"than {threshold:g} SMD, most {name} ({baseline[j]:+.2f} -> {smd[j]:+.2f})",
        value=float(moved[j]),
    )
