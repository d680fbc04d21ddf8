"""The benchmarks' campaign arithmetic: one round is the (bounded) sample-weighted mean of what
each site would train alone, and a protection hook replaces the aggregate."""

import numpy as np
import pytest

from node.data.samples import TabularData
from node.learning.models import build_model, flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, train_local
from node.sim.simulation import run_campaign


def _sites():
    rng = np.random.default_rng(0)
    return [
        TabularData(
            rng.normal(size=(n, 3)).astype(np.float32), (rng.random(n) < 0.5).astype(np.float32)
        )
        for n in (10, 30)
    ]


def test_one_round_is_the_weighted_mean_of_lone_training():
    sites = _sites()
    dp = DPConfig(enabled=False, rounds=1, local_epochs=1, steps_per_epoch=1)
    run = run_campaign("logreg", sites, dp, learning_rate=0.5, rule="fedavg")
    start = flat_parameters(build_model("logreg", 3))
    lone = [
        train_local(
            build_model("logreg", 3),
            start,
            s,
            PrivacyLedger(dp, warn_if_off=False),
            TrainConfig(0.5, seed=i, device="cpu"),
        ).delta
        for i, s in enumerate(sites)
    ]
    # sample counts are claims, capped at the lower median claim (issue 16): 10 and 30 -> 10 and 10
    np.testing.assert_allclose(run.params, start + (10 * lone[0] + 10 * lone[1]) / 20, atol=1e-6)
    assert run.epsilon_spent == 0.0


def test_protection_hook_replaces_the_aggregate():
    seen = []

    def protect(deltas, weights, rule):
        seen.append((deltas.shape, weights, rule))
        return np.zeros(deltas.shape[1], dtype=np.float32)

    dp = DPConfig(enabled=False, rounds=2, local_epochs=1, steps_per_epoch=1)
    run = run_campaign("logreg", _sites(), dp, learning_rate=0.5, protect=protect)
    assert seen == [((2, 4), [10.0, 10.0], "fedavg")] * 2  # the claims 10 and 30, bounded
    np.testing.assert_array_equal(run.params, flat_parameters(build_model("logreg", 3)))
    with pytest.raises(ValueError, match="site"):
        run_campaign("logreg", [], dp, learning_rate=0.5)
