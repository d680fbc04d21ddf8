"""Attacks do what their papers say, and the robust rules resist them where FedAvg breaks."""

import numpy as np
import pytest
from scipy.stats import norm

from node.adversary.attacks import (
    MODEL_ATTACKS,
    PAPER_STRENGTHS,
    add_backdoor,
    flip_labels,
    inner_product_manipulation,
    lie_z_max,
    little_is_enough,
    sign_flip,
)
from node.consensus.rules import aggregate
from node.data.samples import TabularData


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
    evil = MODEL_ATTACKS[attack](
        honest,
        2,
        **(
            {"factor": 100.0}
            if attack == "scaling"
            else {"sigma": 50.0}
            if attack == "gaussian"
            else {"scale": 20.0}
        ),
    )
    stack = np.vstack([honest, evil])
    truth = honest.mean(axis=0)
    err = {
        rule: np.linalg.norm(aggregate(rule, stack, f=2) - truth)
        for rule in ("fedavg", "median", "multi-krum", "bulyan")
    }
    assert err["fedavg"] > 5.0
    for rule in ("median", "multi-krum", "bulyan"):
        assert err[rule] < 1.0, (rule, err)


def test_data_attacks():
    data = TabularData(np.zeros((10, 4), dtype=np.float32), np.array([0, 1] * 5, dtype=np.float32))
    assert flip_labels(data).y.tolist() == [1, 0] * 5
    poisoned = add_backdoor(data, fraction=0.3, target=1.0)
    assert (
        len(poisoned) == 13
        and (poisoned.x[10:, :3] == 6.0).all()
        and (poisoned.y[10:] == 1.0).all()
    )


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


# -- issue 16: the adaptive attacks and the defences against them -------------------------

from node.adversary.attacks import fang_krum, fang_trimmed_mean, min_max, min_sum  # noqa: E402
from node.consensus.rules import bucketize, centered_clipping, trimmed_mean  # noqa: E402
from node.consensus.rules.krum import krum  # noqa: E402


def _pairwise(a, b):
    return np.array([[float(((x - y) ** 2).sum()) for y in b] for x in a])


@pytest.mark.parametrize("perturbation", ["unit", "std", "sign"])
def test_min_max_and_min_sum_sit_on_their_papers_constraints(perturbation):
    """Shejwalkar & Houmansadr 2021, Eq. 5 and 6: the largest gamma whose update stays within
    the honest updates' largest (min-max) / summed (min-sum) distance, found to tau = 1e-5."""
    honest = np.random.default_rng(3).normal(0.5, 1.0, size=(8, 20))
    d_honest = _pairwise(honest, honest)
    mm, ms = (
        min_max(honest, 1, perturbation=perturbation)[0],
        min_sum(honest, 1, perturbation=perturbation)[0],
    )
    assert _pairwise([mm], honest).max() <= d_honest.max() * (1 + 1e-6)
    assert _pairwise([ms], honest).sum() <= d_honest.sum(axis=1).max() * (1 + 1e-6)
    # and gamma is the largest such: 1e-3 further along the perturbation breaks the constraint
    mean = honest.mean(axis=0)
    p_mm = (mm - mean) / np.linalg.norm(mm - mean)
    assert _pairwise([mm + 1e-3 * np.linalg.norm(mm - mean) * p_mm], honest).max() > d_honest.max()
    p_ms = (ms - mean) / np.linalg.norm(ms - mean)
    assert (
        _pairwise([ms + 1e-3 * np.linalg.norm(ms - mean) * p_ms], honest).sum()
        > d_honest.sum(axis=1).max()
    )


def test_fang_trimmed_mean_values_lie_beyond_the_honest_extremes():
    honest = np.random.default_rng(4).normal(0.0, 1.0, size=(7, 200))
    evil = fang_trimmed_mean(honest, 3, b=2.0)
    s = np.sign(honest.mean(axis=0))
    lo, hi = honest.min(axis=0), honest.max(axis=0)
    for row in evil:  # up-coordinates get values at or below the honest minimum, within a factor 2
        up, down = s > 0, s < 0
        assert (row[up] <= lo[up] + 1e-6).all() and (row[down] >= hi[down] - 1e-6).all()
        assert (np.abs(row) <= 2 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-6).all()
    # against trimmed mean trimming only 2 of 10 per side (beta = 0.2) the aggregate moves
    # against the honest direction; trimming f = 3 per side (beta from f) holds it
    stack = np.vstack([evil, honest])
    truth = honest.mean(axis=0)
    assert np.linalg.norm(trimmed_mean(stack, f=3) - truth) < np.linalg.norm(
        trimmed_mean(stack, beta=0.2) - truth
    )


def test_fang_krum_is_picked_by_krum():
    honest = np.random.default_rng(5).normal(0.2, 1.0, size=(8, 30))
    evil = fang_krum(honest, 2)
    stack = np.vstack([evil, honest])
    np.testing.assert_array_equal(krum(stack, f=2), evil[0])
    assert evil[0] @ honest.mean(axis=0) < 0  # against the honest direction


def test_trimmed_mean_with_f_trims_exactly_f_per_side():
    ups = [[0.0], [1.0], [2.0], [3.0], [4.0], [100.0], [-50.0]]
    assert trimmed_mean(ups, f=1).tolist() == [2.0]  # drops -50 and 100: mean of 0..4
    assert trimmed_mean(ups, f=2).tolist() == [2.0]  # drops -50, 0, 4, 100: mean of 1, 2, 3
    assert aggregate("trimmed-mean", ups, f=0).tolist() == [np.float32(60 / 7)]
    with pytest.raises(ValueError, match="2f \\+ 1"):
        trimmed_mean(ups, f=4)


def test_centered_clipping_by_hand():
    """One iteration from the center 0 with tau = 1: each difference clipped to norm 1, averaged
    (Karimireddy et al. 2021, Eq. 2)."""
    ups = np.array([[0.5, 0.0], [0.0, 3.0], [-4.0, 0.0]])
    out = centered_clipping(ups, center=np.zeros(2), tau=1.0, iterations=1)
    np.testing.assert_allclose(out, [(0.5 + 0.0 - 1.0) / 3, (0.0 + 1.0 + 0.0) / 3], rtol=1e-6)
    # an outlier a million times away moves the default (median-centred) rule by at most
    # tau / n per iteration, tau being an honest radius
    honest = np.random.default_rng(6).normal(1.0, 0.1, size=(9, 10))
    attacked = centered_clipping(np.vstack([honest, np.full((1, 10), 1e6)]), f=1)
    assert np.linalg.norm(attacked - honest.mean(axis=0)) < 0.5


def test_bucketing_averages_seeded_buckets():
    ups = np.arange(10.0)[:, None] * np.ones((1, 3))
    means = bucketize(ups, 2, seed=7)
    order = np.random.default_rng(7).permutation(10)  # the documented permutation, rebuilt here
    np.testing.assert_allclose(
        means[:, 0], [(order[i] + order[i + 1]) / 2 for i in range(0, 10, 2)]
    )
    assert bucketize(ups, 3, seed=7).shape == (4, 3)  # the last bucket holds one update
    np.testing.assert_array_equal(
        aggregate("median", ups, bucket=2, seed=7), np.median(means, axis=0).astype(np.float32)
    )
    with pytest.raises(ValueError, match="FedAvg"):
        aggregate("fedavg", ups, bucket=2)
