"""Privacy attacks: SSIM against the paper's formulas worked by hand and by a second, literal
implementation; gradient inversion recovers an image from a leaky model's update and not
through DP-SGD; membership-inference AUC against pairs counted by hand."""

import math

import numpy as np
import pytest
import torch

import node.adversary.privacy_attacks as pa
from node.adversary.privacy_attacks import (
    InversionConfig,
    gradient_from_update,
    invert_gradient,
    linear_head_input,
    loss_threshold_attack,
    per_sample_losses,
    psnr,
    ssim,
)
from node.adversary.privacy_attacks.image_metrics import gaussian_window
from node.data.datasets import synthetic_lesions
from node.data.samples import TabularData
from node.learning.models import build_model, flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, train_local


def test_exports():
    assert sorted(pa.__all__) == sorted(
        [
            "psnr",
            "ssim",
            "InversionConfig",
            "InversionResult",
            "gradient_from_update",
            "invert_gradient",
            "MembershipResult",
            "loss_threshold_attack",
            "per_sample_losses",
            "linear_head_input",
        ]
    )


def test_psnr_by_hand():
    a = np.zeros((4, 4))
    assert psnr(a, a + 0.1) == pytest.approx(20.0)  # MSE 0.01 -> 10 log10(1 / 0.01)
    assert psnr(a, a) == math.inf
    with pytest.raises(ValueError, match="shape"):
        psnr(a, np.zeros((3, 4)))


def test_ssim_of_flat_images_by_hand():
    # flat images: sigma = 0 everywhere, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) * C2 / C2
    c1 = (0.01 * 1.0) ** 2
    a, b = 0.3, 0.6
    expect = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(np.full((16, 16), a), np.full((16, 16), b)) == pytest.approx(expect, rel=1e-9)
    assert ssim(np.full((16, 16), a), np.full((16, 16), a)) == pytest.approx(1.0)


def literal_ssim(x, y, L=1.0):
    """Wang et al. 2004, eqs. (14)-(17) and (13), one window at a time in plain Python loops."""
    w = gaussian_window(11, 1.5)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            sx = math.sqrt((w * (px - mx) ** 2).sum())
            sy = math.sqrt((w * (py - my) ** 2).sum())
            sxy = (w * (px - mx) * (py - my)).sum()
            vals.append(
                (2 * mx * my + c1)
                * (2 * sxy + c2)
                / ((mx * mx + my * my + c1) * (sx * sx + sy * sy + c2))
            )
    return float(np.mean(vals))


def test_ssim_against_a_literal_transcription():
    rng = np.random.default_rng(3)
    x = rng.random((20, 23))
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
    assert ssim(x, y) == pytest.approx(literal_ssim(x, y), abs=1e-10)
    assert ssim(x, y) == pytest.approx(ssim(y, x))
    assert ssim(x, y) < ssim(x, np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)) < 1.0
    window = gaussian_window()
    assert window.sum() == pytest.approx(1.0) and window[5, 5] == window.max()


def _one_step_update(dp_on: bool, image: TabularData, model):
    dp = DPConfig(
        enabled=dp_on, target_epsilon=1.0, rounds=1, local_epochs=1, steps_per_epoch=1
    ).calibrated()
    start = flat_parameters(model)
    update = train_local(
        model, start, image, PrivacyLedger(dp, warn_if_off=False), TrainConfig(0.1, device="cpu")
    )
    return start, gradient_from_update(update.delta, 0.1)


@pytest.mark.parametrize("k", [0, 1])
def test_inversion_recovers_a_leaky_models_input_and_not_through_dp(k):
    torch.manual_seed(0)
    images = synthetic_lesions(2, size=16, seed=5)  # image 0 has a lesion (y = 1), image 1 not
    flat = TabularData(images.x[k : k + 1].reshape(1, -1), images.y[k : k + 1])
    model = build_model("mlp", flat.x.shape[1])
    start, grad = _one_step_update(False, flat, model)
    rec = invert_gradient(model, start, grad, (flat.x.shape[1],), InversionConfig(iterations=200))
    assert rec.label[0] == images.y[k]  # read off the update
    assert ssim(images.x[k, 0], rec.image.reshape(16, 16)) > 0.95
    start, grad = _one_step_update(True, flat, model)
    rec = invert_gradient(model, start, grad, (flat.x.shape[1],), InversionConfig(iterations=200))
    assert ssim(images.x[k, 0], rec.image.reshape(16, 16)) < 0.3


def test_membership_auc_and_advantage_by_hand():
    # member/non-member pairs with the member's loss lower: (0.1, 0.3), (0.2, 0.3) of 4 -> AUC 0.5;
    # tau = 0.2 catches both members and one non-member: advantage 1 - 0.5
    res = loss_threshold_attack(np.array([0.1, 0.2]), np.array([0.3, 0.05]))
    assert res.auc == pytest.approx(0.5) and res.advantage == pytest.approx(0.5)
    assert loss_threshold_attack(np.array([0.1]), np.array([0.2])).auc == 1.0
    with pytest.raises(ValueError, match="member"):
        loss_threshold_attack(np.array([]), np.array([0.2]))


def test_per_sample_losses_by_hand():
    model = build_model("logreg", 2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    data = TabularData(
        np.array([[1.0, 2.0], [0.0, 0.0]], dtype=np.float32), np.array([1.0, 0.0], dtype=np.float32)
    )
    # zero weights: logit 0, loss log 2 for either label
    np.testing.assert_allclose(per_sample_losses(model, data), [math.log(2)] * 2, rtol=1e-12)


def test_a_linear_models_input_is_read_exactly_off_one_samples_update():
    f = np.array([[0.5, -1.25, 2.0]], dtype=np.float32)
    data = TabularData(f, np.array([1.0], dtype=np.float32))
    model = build_model("logreg", 3)
    start = flat_parameters(model) + 0.1  # any starting point with a non-flat loss
    update = train_local(
        model,
        start,
        data,
        PrivacyLedger(DPConfig(enabled=False), warn_if_off=False),
        TrainConfig(0.3, seed=0, device="cpu"),
    )
    np.testing.assert_allclose(
        linear_head_input(gradient_from_update(update.delta, 0.3)), f[0], rtol=1e-4
    )
    with pytest.raises(ValueError, match="bias gradient is 0"):
        linear_head_input(np.array([1.0, 2.0, 0.0]))
