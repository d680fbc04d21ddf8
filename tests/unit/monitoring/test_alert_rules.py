"""The alert rules of a node's monitoring (:mod:`node.monitoring.alerts`) against hand-computed
references: robust z-scores, anomalous updates, DeLong's paired AUC difference, the accuracy
drop, the bias shift, standardized mean differences and drift. The config section and the
Monitor with its HTTP server are in test_monitoring.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from node.monitoring.alerts import (
    AlertThresholds,
    AucComponents,
    accuracy_drop,
    anomalous_updates,
    auc_difference,
    bias_shift,
    campaign_z,
    cosine,
    feature_drift,
    robust_z,
    sensitivity_gap,
    standardized_mean_differences,
)


# -- alert rules -------------------------------------------------------------------------
def test_robust_z_matches_iglewicz_hoaglin_by_hand():
    # median 2, |x - 2| = 1 1 0 0 8, MAD = 1: z(10) = 0.6745 * 8 / 1
    z = robust_z([1, 1, 2, 2, 10])
    assert z[4] == pytest.approx(5.396)
    assert z[2] == 0 and z[0] == pytest.approx(-0.6745)
    assert robust_z([1, 1, 2, 2, 10], floor=2.0)[4] == pytest.approx(
        0.6745 * 8 / 4
    )  # MAD floored at 2 * 2
    flat = robust_z(
        [3, 3, 3, 4]
    )  # MAD 0: mean |x - 3| = 0.25 stands in, z(4) = 1 / (1.253314 * 0.25)
    assert list(flat[:3]) == [0, 0, 0] and flat[3] == pytest.approx(3.1915, abs=1e-4)
    assert list(robust_z([2, 2, 2])) == [0, 0, 0]


def test_anomalous_update_flags_the_outlier_norm_and_the_reversed_direction():
    step = np.array([1.0, 0.0])
    deltas = {
        "a": np.array([1.0, 0.0]),
        "b": np.array([1.2, 0.0]),
        "c": np.array([0.8, 0.6]),
        "d": np.array([-9.0, 0.0]),
        "e": np.array([1.1, 0.0]),
    }
    # norms 1, 1.2, 1.0, 9, 1.1: median 1.1, |dev| .1 .1 .1 7.9 0 -> MAD .1, floored at .25 * 1.1 = .275;
    # z(d) = .6745 * 7.9 / .275
    alerts = anomalous_updates(deltas, step, 7, AlertThresholds(norm_z=3.5, min_cosine=0.0))
    assert [a.subject for a in alerts] == ["d"]
    assert alerts[0].kind == "anomalous_update" and alerts[0].round == 7
    assert alerts[0].value == pytest.approx(0.6745 * 7.9 / 0.275)
    assert "cosine to the aggregate step -1.000" in alerts[0].message
    # direction alone: same norm as the crowd, pointing away (cos = -0.8 / 1); norms 1 1.2 1 1 1.1 have
    # MAD 0, floored at .25: z(b) = .6745 * .2 / .25 = 0.54 < 3.5
    sneaky = {**deltas, "d": np.array([-0.8, 0.6])}
    alerts = anomalous_updates(sneaky, step, 7, AlertThresholds(min_cosine=-0.5))
    assert [(a.subject, round(a.value, 3)) for a in alerts] == [("d", -0.8)]
    assert cosine(np.array([0.8, 0.6]), step) == pytest.approx(0.8)


def _pairwise_auc_difference(y, a, b):
    """DeLong et al. (1988) from the definition: the kernel psi(X, Y) over every positive-negative
    pair, its structural components and their covariances (O(mn); the code uses midranks)."""
    y = np.asarray(y) > 0.5
    comps = []
    for s in (a, b):
        psi = (s[y][:, None] > s[~y][None, :]) + 0.5 * (s[y][:, None] == s[~y][None, :])
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    s10 = np.cov(np.stack([comps[0][1], comps[1][1]]))
    s01 = np.cov(np.stack([comps[0][2], comps[1][2]]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / y.sum() + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / (~y).sum()
    return comps[0][0], comps[1][0], math.sqrt(var)


def test_delong_paired_difference_matches_the_pairwise_definition():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for n, ties in ((12, False), (40, True), (200, True)):
        y = (rng.random(n) < 0.4).astype(float)
        y[:2], y[2:4] = 1, 0
        a = rng.normal(size=n) + y
        b = a + rng.normal(scale=0.7, size=n) - 0.3 * y
        if ties:
            a, b = np.round(a, 1), np.round(b, 1)
        got = auc_difference(y, a, b)
        assert got == pytest.approx(_pairwise_auc_difference(y, a, b), rel=1e-9)
        assert got[:2] == pytest.approx((roc_auc_score(y, a), roc_auc_score(y, b)), rel=1e-12)
    # by hand: positives (.9, .4), negatives (.5, .1); model b swaps .4 and .5 -> AUC .75 vs 1.
    # V10 = (1, .5) / (1, 1), V01 = (.5, 1) / (1, 1): var = (.125 + 0 - 0) / 2 + (.125 + 0 - 0) / 2 = .125
    assert auc_difference(
        [1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1], [0.9, 0.5, 0.4, 0.1]
    ) == pytest.approx((0.75, 1.0, 0.125**0.5))
    assert all(
        math.isnan(v) for v in auc_difference([1, 0, 0], [0.9, 0.1, 0.2], [0.9, 0.1, 0.2])
    )  # one positive


def test_campaign_z_is_bonferroni_over_every_pair_of_rounds():
    from scipy.stats import norm

    assert campaign_z(0.05, 10) == pytest.approx(norm.isf(0.05 / 45), rel=1e-9)  # 3.0588
    assert campaign_z(0.05, 1) == pytest.approx(norm.isf(0.05), rel=1e-9)
    with pytest.raises(ValueError, match="0 < alpha < 1"):
        campaign_z(0, 10)


def test_accuracy_drop_needs_a_material_and_significant_drop():
    labels = np.repeat([1.0, 0.0], 10)
    good = labels + np.tile(np.linspace(0, 1.5, 10), 2)  # AUC .925
    worse = good.copy()
    worse[[0, 1, 2]] -= 1.3  # three positives fall among the negatives: AUC .79
    parts = lambda scores: AucComponents.of(labels, scores)  # noqa: E731
    z = campaign_z(0.05, 10)
    a = accuracy_drop(
        [parts(good), parts(worse)], parts(-good), 3, 0.05, z
    )  # reversed: far below both
    ref, new, se = auc_difference(labels, good, -good)
    assert (
        a is not None
        and a.value == pytest.approx(ref - new)
        and "2 rounds earlier (0.925)" in a.message
    )
    assert f"{(ref - new) / se:.1f} DeLong SE" in a.message
    ref, new, se = auc_difference(labels, good, worse)
    assert ref - new > 0.05 and (ref - new) / se < z  # material but not significant on 20 rows
    assert accuracy_drop([parts(good)], parts(worse), 2, 0.05, z) is None
    assert accuracy_drop([parts(good)], parts(worse), 2, 0.05, (ref - new) / se - 0.01) is not None
    assert (
        accuracy_drop([parts(good)], parts(worse), 2, ref - new, 0.0) is None
    )  # not more than auc_drop
    assert accuracy_drop([parts(good)], parts(good - 0.01), 2, 0.05, z) is None  # no drop
    assert accuracy_drop([], parts(good), 1, 0.05, z) is None  # nothing to compare with yet
    assert AucComponents.of([1, 0, 0], [0.9, 0.1, 0.2]) is None  # one positive: no AUC variance


def test_bias_shift_is_the_widening_sensitivity_gap():
    assert sensitivity_gap({"F": 0.9, "M": 0.6, "X": float("nan")}) == pytest.approx(0.3)
    a = bias_shift(0.1, {"F": 0.9, "M": 0.6}, 3, 0.15)  # gap 0.1 -> 0.3
    assert a is not None and a.value == pytest.approx(0.2) and a.kind == "bias_shift"
    assert bias_shift(0.1, {"F": 0.9, "M": 0.6}, 3, 0.25) is None
    assert (
        bias_shift(float("nan"), {"F": 0.9, "M": 0.1}, 1, 0.1) is None
    )  # first round: no baseline
    assert bias_shift(0.1, {"F": 0.9}, 3, 0.1) is None  # one group: no gap


def test_standardized_mean_difference_is_austins_by_hand():
    # feature 0: local mean 2, sample variance ((1-2)^2 + (3-2)^2) / 1 = 2; pooled mean 0, sd 2:
    # d = (2 - 0) / sqrt((2 + 4) / 2) = 2 / sqrt(3) (Austin 2009, eq. 1)
    # feature 1: constant 5 locally and in the pool -> 0, not a division by zero
    rows = np.array([[1.0, 5.0], [3.0, 5.0]])
    d = standardized_mean_differences(rows, np.array([0.0, 5.0]), np.array([2.0, 0.0]))
    assert d == pytest.approx([2 / math.sqrt(3), 0.0])
    with pytest.raises(ValueError, match="need >= 2 rows of 2 features"):
        standardized_mean_differences(rows[:, :1], np.zeros(2), np.ones(2))


def test_drift_is_the_smd_moving_from_the_first_round():
    baseline = np.array([0.1, -0.2, 0.0])
    now = np.array([0.3, 0.4, 0.0])  # moved 0.2, 0.6, 0
    alert = feature_drift(now, baseline, 6, 0.5, names=["radius", "texture", "area"])
    assert alert.kind == "drift" and alert.round == 6 and alert.value == pytest.approx(0.6)
    assert "1 feature(s)" in alert.message and "texture (-0.20 -> +0.40)" in alert.message
    assert feature_drift(now, baseline, 6, 0.7) is None
    # a site that always differed from the pool (case mix) is not drifting
    assert feature_drift(np.array([1.5, -1.2]), np.array([1.5, -1.2]), 6, 0.5) is None


def test_bad_thresholds_raise():
    with pytest.raises(ValueError, match="norm_z must be > 0"):
        AlertThresholds(norm_z=0)
    with pytest.raises(ValueError, match="min_cosine must be in"):
        AlertThresholds(min_cosine=2)
