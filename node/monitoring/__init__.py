"""Monitoring a hospital's view of the federation: alert rules computed on the hospital's own
data and on the updates it opened (:mod:`node.monitoring.alerts`). The plumbing that exposes them
(``/metrics``, the status page) lives in :mod:`node.service.metrics` and :mod:`node.service.statuspage`.
"""

from node.monitoring.alerts import (
    ALERT_KINDS,
    AUC_ALPHA,
    Alert,
    AlertThresholds,
    accuracy_drop,
    anomalous_updates,
    auc_difference,
    bias_shift,
    campaign_z,
    cosine,
    robust_z,
    sensitivity_gap,
    update_screen,
)

__all__ = [
    "ALERT_KINDS",
    "AUC_ALPHA",
    "Alert",
    "AlertThresholds",
    "accuracy_drop",
    "anomalous_updates",
    "auc_difference",
    "bias_shift",
    "campaign_z",
    "cosine",
    "robust_z",
    "sensitivity_gap",
    "update_screen",
]
