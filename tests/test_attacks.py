"""Attacks do what their papers say, and the robust rules resist them where FedAvg breaks."""

import numpy as np
import pytest
from scipy.stats import norm

from node.aggregation import aggregate
from node.attacks import (
    MODEL_ATTACKS, PAPER_STRENGTHS, add_backdoor, flip_labels, inner_product_manipulation, lie_z_max, little_is_enough, sign_flip,
)
from node.data import TabularData


def test_lie_z_max_by_hand():
    # n = 50, f = 12: s = floor(26) - 12 = 14, z = Phi^-1(36 / 50)
    assert lie_z_max(50, 12) == pytest.approx(norm.ppf(0.72))
    assert lie_z_max(10, 3) == pytest.approx(norm.ppf(7 / 10))  # s = 3


def test_attack_shapes_and_directions():
    honest = np.random.default_rng(0).normal(1.0, 0.1, size=(7, 30))
    for name, attack in MODEL_ATTACKS.items():
        out = attack(honest, 3)
        assert out.shape == (3, 30) and out.dtype == np.float32, name
    assert (sign_flip(honest, 1) < 0).all()
    assert inner_product_manipulation(honest, 1) @ honest.mean(axis=0) < 0
    lie = little_is_enough(honest, 2)
    assert (lie < honest.mean(axis=0)).all() and (lie > honest.min(axis=0) - 1.0).all()


@pytest.mark.parametrize("attack", ["sign-flip", "scaling", "gaussian"])
def test_robust_rules_resist_where_fedavg_breaks(attack):
    rng = np.random.default_rng(1)
    honest = rng.normal(1.0, 0.1, size=(9, 50))
    evil = MODEL_ATTACKS[attack](honest, 2, **({"factor": 100.0} if attack == "scaling" else
                                                {"sigma": 50.0} if attack == "gaussian" else {"scale": 20.0}))
    stack = np.vstack([honest, evil])
    truth = honest.mean(axis=0)
    err = {rule: np.linalg.norm(aggregate(rule, stack, f=2) - truth) for rule in ("fedavg", "median", "multi-krum", "bulyan")}
    assert err["fedavg"] > 5.0
    for rule in ("median", "multi-krum", "bulyan"):
        assert err[rule] < 1.0, (rule, err)


def test_data_attacks():
    data = TabularData(np.zeros((10, 4), dtype=np.float32), np.array([0, 1] * 5, dtype=np.float32))
    assert flip_labels(data).y.tolist() == [1, 0] * 5
    poisoned = add_backdoor(data, fraction=0.3, target=1.0)
    assert len(poisoned) == 13 and (poisoned.x[10:, :3] == 6.0).all() and (poisoned.y[10:] == 1.0).all()


def test_paper_strengths_break_the_mean_by_hand():
    """Worked by hand from the papers' strengths, n = 10 peers with honest mean m:
    sign-flip x4 (Li et al. 2019) at f = 2 gives (8 m - 2 * 4 m) / 10 = 0, and at f = 3 gives
    (7 m - 12 m) / 10 = -m / 2; IPM epsilon 100 (Xie et al. 2020) at f = 1 gives
    (9 m - 100 m) / 10 = -9.1 m, negative as soon as epsilon > (n - f) / f."""
    m = np.arange(1.0, 6.0)
    for f, attack, expect in ((2, "sign-flip", 0.0), (3, "sign-flip", -0.5), (1, "ipm", -9.1)):
        honest = np.repeat(m[None], 10 - f, axis=0)
        evil = MODEL_ATTACKS[attack](honest, f, **PAPER_STRENGTHS[attack])
        mean = aggregate("fedavg", np.vstack([evil, honest]), f=f)
        np.testing.assert_allclose(mean, expect * m, atol=1e-5)
    assert PAPER_STRENGTHS["gaussian"] == {"sigma": 200.0}  # Blanchard et al. 2017
