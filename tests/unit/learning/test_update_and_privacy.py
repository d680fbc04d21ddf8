"""Update encoding, and the privacy ledger against the Rényi-DP formula worked independently."""

import math

import numpy as np
import pytest

from node.consensus.update import (
    ModelUpdate,
    UpdateFormatError,
    decode_update,
    encode_update,
    parameters_hash,
)
from node.learning.privacy import BudgetExhausted, DPConfig, PrivacyLedger


def test_update_round_trip_and_validation():
    up = ModelUpdate(2, "0x" + "a" * 40, 91, 0.61, np.arange(31, dtype=np.float32))
    back = decode_update(encode_update(up), expected_values=31)
    assert (back.round, back.sender, back.samples, back.epsilon) == (2, up.sender, 91, 0.61)
    assert back.delta.tobytes() == up.delta.tobytes()
    with pytest.raises(UpdateFormatError, match="the model has 30"):
        decode_update(encode_update(up), expected_values=30)
    with pytest.raises(UpdateFormatError, match="carries"):
        decode_update(encode_update(up)[:-4])
    nan = ModelUpdate(2, up.sender, 91, 0.6, np.array([np.nan], dtype=np.float32))
    with pytest.raises(UpdateFormatError, match="NaN"):
        decode_update(encode_update(nan))


def test_parameters_hash_is_sha256_of_le_float32():
    import hashlib

    p = np.array([1.0, -2.5], dtype=np.float32)
    assert (
        parameters_hash(p)
        == hashlib.sha256(b"medmesh/params/v1" + b"\x00\x00\x80?\x00\x00 \xc0").digest()
    )


def reference_epsilon(sigma: float, steps: int, delta: float) -> float:
    """Full-batch Gaussian mechanism (sample rate 1): RDP(alpha) = steps * alpha / (2 sigma^2)
    (Mironov 2017, Prop. 7), converted with Balle et al. 2020, Thm. 21, minimized over the
    same order grid Opacus documents."""
    alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    best = math.inf
    for a in alphas:
        rdp = steps * a / (2 * sigma**2)
        eps = rdp + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        best = min(best, eps)
    return best


def test_spent_epsilon_matches_the_rdp_formula():
    cfg = DPConfig(
        noise_multiplier=12.0,
        steps_per_epoch=1,
        local_epochs=3,
        rounds=5,
        delta=1e-5,
        accountant="rdp",
    )
    ledger = PrivacyLedger(cfg)
    for _ in range(7):
        ledger.accountant.step(noise_multiplier=12.0, sample_rate=1.0)
    assert ledger.spent() == pytest.approx(reference_epsilon(12.0, 7, 1e-5), rel=1e-9)


def test_calibration_meets_the_target_over_the_campaign():
    # the DP-SGD steps alone, as the reference composes them (the count release: test_count_release.py)
    cfg = DPConfig(
        target_epsilon=1.0,
        steps_per_epoch=1,
        local_epochs=3,
        rounds=5,
        accountant="rdp",
        count_noise=None,
    ).calibrated()
    assert reference_epsilon(cfg.noise_multiplier, 15, 1e-5) <= 1.0 + 1e-3
    assert reference_epsilon(cfg.noise_multiplier * 0.95, 15, 1e-5) > 1.0  # not wastefully noisy


def test_budget_survives_a_restart_and_is_enforced(tmp_path):
    cfg = DPConfig(target_epsilon=1.0, steps_per_epoch=1, local_epochs=3, rounds=2)
    path = tmp_path / "a.privacy.json"
    ledger = PrivacyLedger(cfg, path)
    for _ in range(2):
        ledger.check_round()
        for _ in range(cfg.steps_per_round):
            ledger.accountant.step(noise_multiplier=ledger.config.noise_multiplier, sample_rate=1.0)
        ledger.save()
    spent = ledger.spent()
    assert 0.9 < spent <= 1.001
    restarted = PrivacyLedger(cfg, path)
    assert restarted.spent() == pytest.approx(spent)
    with pytest.raises(BudgetExhausted, match="refusing to train"):
        restarted.check_round()


def test_corrupt_ledger_refuses_to_start(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="unknown spent budget"):
        PrivacyLedger(DPConfig(), path)
