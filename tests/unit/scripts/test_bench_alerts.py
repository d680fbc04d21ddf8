"""scripts/bench_alerts.py is reproducible: every random draw of a campaign (the split, the model,
the drift windows, and the DP noise and Poisson sampling Opacus draws from torch's default RNG,
secure_mode being off in the benchmark) comes from the campaign's seed."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from node.monitoring.alerts import AlertThresholds
from node.service.localnet import REPO_ROOT

pytestmark = pytest.mark.slow  # two short campaigns of DP-SGD training


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_alerts", REPO_ROOT / "scripts" / "bench_alerts.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_campaign_reruns_to_the_same_figures():
    bench = _bench()
    first = bench.campaign("backdoor", 3, 3, 2, AlertThresholds())
    torch.rand(100)  # whatever ran before (another campaign, another test) must not matter
    again = bench.campaign("backdoor", 3, 3, 2, AlertThresholds())
    assert first == again
    assert first["attacked_rounds"] == 2 and 0.5 < first["final_auc_mean_honest"] <= 1
