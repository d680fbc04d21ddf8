"""One sample rate everywhere (issue 15, section 4): the DP-SGD loader samples each example
with probability q = 1 / steps_per_epoch in exactly steps_per_epoch batches per epoch, the
rate and count the noise was calibrated for and ``check_round`` projects. (Opacus' own loader
sampled at 1 / ceil(N / ceil(N / steps)): for N = 23 and 20 steps, q = 1/12 in 12 steps.)

The campaign's epsilon is recomputed with Google's dp-accounting (an independent
implementation: PLD for a PRV-calibrated campaign, RDP at integer orders for an RDP one) at
the rate and step count the loader really uses, for every hospital size up to 200."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant
from scipy import stats
from torch.utils.data import TensorDataset

from node.data.samples import Standardizer, breast_cancer_split
from node.learning.models import build_model, flat_parameters
from node.learning.privacy import BudgetExhausted, DPConfig, PrivacyLedger
from node.learning.securerng import SecureRandom
from node.learning.training import TrainConfig, private_loader, train_local

TARGET, DELTA, ROUNDS, EPOCHS = 1.0, 1e-5, 5, 3


def google_epsilon(accountant: str, sigma: float, q: float, steps: int) -> float:
    event = dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps
    )
    google = (
        pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-3)
        if accountant == "prv"
        else rdp_privacy_accountant.RdpAccountant(orders=list(range(2, 257)))
    )
    google.compose(event)
    return google.get_epsilon(DELTA)


def campaign(spe: int, accountant: str) -> DPConfig:
    # the DP-SGD steps alone (no row-count release): the references below compose only them;
    # the count's share is checked in tests/integration/test_count_release.py
    return DPConfig(
        target_epsilon=TARGET,
        delta=DELTA,
        steps_per_epoch=spe,
        local_epochs=EPOCHS,
        rounds=ROUNDS,
        accountant=accountant,
        count_noise=None,
    ).calibrated()


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize("spe", [10, 16, 20, 32])
def test_no_hospital_size_ends_early_or_above_the_target(spe, accountant):
    dp = campaign(spe, accountant)
    used = {}
    for n in range(1, 201):
        loader = private_loader(
            TensorDataset(torch.zeros(n, 2), torch.zeros(n)), dp, SecureRandom()
        )
        used[n] = (loader.rate, len(loader))
    for n, (q, steps) in used.items():
        assert (q, steps) == (dp.sample_rate, spe), (
            f"N={n}"
        )  # what check_round and calibration assume
    for q, steps in set(used.values()):
        ledger = PrivacyLedger(dp)
        for _ in range(ROUNDS):  # the whole campaign runs: no round is refused
            ledger.check_round()
            ledger.accountant.history.append((dp.noise_multiplier, q, steps * EPOCHS))
        assert google_epsilon(accountant, dp.noise_multiplier, q, ROUNDS * EPOCHS * steps) <= TARGET
        with pytest.raises(BudgetExhausted):
            ledger.check_round()


def test_the_loader_includes_each_example_at_its_stated_rate():
    dp = campaign(20, "prv")
    loader = private_loader(
        TensorDataset(torch.arange(23.0)[:, None], torch.zeros(23)), dp, SecureRandom()
    )
    counts = np.zeros(23)
    for _ in range(100):
        for xb, _ in loader:
            counts[xb[:, 0].long().numpy()] += 1
    draws = 100 * len(loader)
    assert len(loader) == 20
    assert stats.binomtest(int(counts.sum()), draws * 23, loader.rate).pvalue > 1e-4
    assert stats.chisquare(counts).pvalue > 1e-4  # no example favoured


def test_real_training_of_23_patients_at_20_steps_ends_within_the_target():
    """The review's case: 23 patients, 20 steps per epoch, PRV, target 1 (it reached 1.050)."""
    data = breast_cancer_split().hospitals["hospital-b"]
    data = Standardizer.fit(data).apply(data).subset(np.arange(23))
    dp = campaign(20, "prv")
    ledger = PrivacyLedger(dp)
    model = build_model("logreg", data.n_features)
    params = flat_parameters(model)
    for round_ in range(ROUNDS):
        result = train_local(model, params, data, ledger, TrainConfig(0.5, seed=round_))
        assert result.steps == 20 * EPOCHS
        params = params + result.delta
    assert {q for _, q, _ in ledger.history} == {
        1 / 20
    }  # the accountant stepped at the loader's rate
    steps = sum(n for _, _, n in ledger.history)
    assert steps == ROUNDS * EPOCHS * 20
    assert ledger.spent() <= TARGET
    assert google_epsilon("prv", dp.noise_multiplier, 1 / 20, steps) <= TARGET
