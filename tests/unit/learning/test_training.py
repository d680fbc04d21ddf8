"""Local training (DP and not), FedProx, the CNN path on the synthetic task, and metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score, roc_auc_score

from node.data.datasets import synthetic_lesions
from node.data.samples import Standardizer, TabularData, breast_cancer_split
from node.learning.evaluation import binary_scores, evaluate, evaluate_sites
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import BudgetExhausted, DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, train_local


def no_dp(epochs: int = 3, steps: int = 2) -> PrivacyLedger:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PrivacyLedger(DPConfig(enabled=False, steps_per_epoch=steps, local_epochs=epochs))


def site() -> TabularData:
    data = breast_cancer_split().hospitals["hospital-b"]
    return Standardizer.fit(data).apply(data)


def test_a_round_is_its_epochs_times_steps():
    assert (DPConfig().local_epochs, DPConfig().steps_per_epoch) == (
        1,
        1,
    )  # the node's [privacy] defaults
    data = site()
    model = build_model("mlp", data.n_features)
    result = train_local(model, flat_parameters(model), data, no_dp(steps=4), TrainConfig(0.1))
    assert result.steps == 12 and result.samples == len(data) and result.epsilon == 0.0


def test_fedprox_pulls_the_update_toward_the_global_model():
    data = site()
    model = build_model("mlp", data.n_features, seed=3)
    start = flat_parameters(model)
    norms = {}
    for mu in (0.0, 1.0):
        norms[mu] = np.linalg.norm(
            train_local(
                model, start, data, no_dp(epochs=10), TrainConfig(0.2, seed=1, proximal_mu=mu)
            ).delta
        )
    assert norms[1.0] < 0.8 * norms[0.0]
    with pytest.raises(ValueError, match="proximal_mu"):
        TrainConfig(proximal_mu=-1)


def test_fedprox_under_dp_spends_the_same_budget():
    data = site()
    cfg = DPConfig(noise_multiplier=1.0, target_epsilon=50, steps_per_epoch=2, local_epochs=1)
    eps = []
    for mu in (0.0, 0.5):
        model = build_model("logreg", data.n_features)
        ledger = PrivacyLedger(cfg)
        eps.append(
            train_local(
                model, flat_parameters(model), data, ledger, TrainConfig(0.5, proximal_mu=mu)
            ).epsilon
        )
    assert eps[0] == pytest.approx(eps[1]) and eps[0] > 0


def test_train_local_refuses_past_the_budget_and_leaves_the_model_alone():
    data = site()
    ledger = PrivacyLedger(
        DPConfig(target_epsilon=0.5, steps_per_epoch=1, local_epochs=1, rounds=1)
    )
    model = build_model("logreg", data.n_features)
    params = flat_parameters(model) + 1.0
    load_flat_parameters(model, params)
    train_local(model, params, data, ledger, TrainConfig(0.5))
    before = flat_parameters(model)
    with pytest.raises(BudgetExhausted, match="refusing to train"):
        train_local(model, params, data, ledger, TrainConfig(0.5))
    assert flat_parameters(model).tobytes() == before.tobytes()


def test_cnn_learns_the_synthetic_task_and_dp_sgd_runs_on_it():
    train, test = synthetic_lesions(160, size=32, seed=1), synthetic_lesions(100, size=32, seed=2)
    model = build_model("cnn", input_shape=train.input_shape)
    start = flat_parameters(model)
    train_local(model, start, train, no_dp(epochs=5, steps=8), TrainConfig(0.1, seed=0))
    assert evaluate(model, test).auc > 0.8
    dp = PrivacyLedger(DPConfig(target_epsilon=8.0, steps_per_epoch=2, local_epochs=1, rounds=2))
    result = train_local(model, start, train, dp, TrainConfig(0.1))
    assert 0 < result.epsilon < 8.0 and np.isfinite(result.delta).all()
    assert result.delta.size == start.size


def test_resnet18_takes_a_dp_sgd_step():
    data = synthetic_lesions(8, size=16, seed=0)
    model = build_model("resnet18", input_shape=data.input_shape)
    start = flat_parameters(model)
    ledger = PrivacyLedger(
        DPConfig(noise_multiplier=1.0, target_epsilon=100, steps_per_epoch=1, local_epochs=1)
    )
    result = train_local(model, start, data, ledger, TrainConfig(0.01))
    assert result.steps == 1 and np.abs(result.delta).max() > 0


def test_metrics_match_sklearn_and_are_reported_per_group():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.4).astype(np.float32)
    logits = rng.normal(size=200) + 1.5 * y
    s = binary_scores(y, logits)
    pred = logits > 0
    assert s.auc == pytest.approx(roc_auc_score(y, logits))
    assert s.f1 == pytest.approx(f1_score(y, pred))
    assert s.sensitivity == pytest.approx(recall_score(y, pred))
    assert s.specificity == pytest.approx(recall_score(1 - y, ~pred))
    assert s.accuracy == pytest.approx((pred == (y > 0.5)).mean())
    one_class = binary_scores(np.ones(3), np.array([1.0, -1, 2]))
    assert (
        np.isnan(one_class.auc)
        and np.isnan(one_class.specificity)
        and one_class.to_json()["auc"] is None
    )

    data = site()
    groups = np.where(np.arange(len(data)) % 3 == 0, "F", "M")
    grouped = TabularData(data.x, data.y, groups=groups)
    model = build_model("logreg", data.n_features)
    train_local(model, flat_parameters(model), grouped, no_dp(epochs=30, steps=1), TrainConfig(0.5))
    scores = evaluate(model, grouped)
    assert set(scores.by_group) == {"F", "M"}
    assert scores.by_group["F"].n + scores.by_group["M"].n == len(data)
    assert scores.by_group["F"].auc == pytest.approx(
        roc_auc_score(
            data.y[groups == "F"],
            model(__import__("torch").from_numpy(data.x[groups == "F"])).detach().numpy(),
        )
    )
    assert set(scores.to_json()["by_group"]["M"]) >= {"auc", "f1", "sensitivity", "specificity"}
    per_site = evaluate_sites(model, {"a": data, "b": grouped})
    assert per_site["a"].auc == pytest.approx(per_site["b"].auc) and not per_site["a"].by_group
