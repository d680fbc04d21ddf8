"""Monitoring a hospital's view of the federation: alert rules computed on the hospital's own
data and on the updates it opened (:mod:`node.monitoring.alerts`). The plumbing that exposes them
(``/metrics``, the status page) lives in :mod:`node.service.metrics` and :mod:`node.service.statuspage`.
"""

from node.monitoring.alerts import (ALERT_KINDS, AUC_Z, Alert, AlertThresholds, accuracy_drop, anomalous_updates,
                                    auc_standard_error, bias_shift, cosine, robust_z, sensitivity_gap, update_screen)

__all__ = ["ALERT_KINDS", "AUC_Z", "Alert", "AlertThresholds", "accuracy_drop", "anomalous_updates",
           "auc_standard_error", "bias_shift", "cosine", "robust_z", "sensitivity_gap", "update_screen"]
