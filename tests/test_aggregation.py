"""Aggregation rules against values worked by hand and against NumPy's own statistics."""

import numpy as np
import pytest

from node.aggregation import aggregate, coordinate_median, fedavg, trimmed_mean


def test_median_by_hand_odd_and_even():
    ups = [[1.0, 10.0], [3.0, -2.0], [2.0, 100.0]]
    assert coordinate_median(ups).tolist() == [2.0, 10.0]
    ups.append([4.0, 0.0])  # even count: mean of the two middle values
    assert coordinate_median(ups).tolist() == [2.5, 5.0]


def test_median_ignores_one_huge_outlier():
    honest = np.random.default_rng(0).normal(0, 0.1, size=(4, 50))
    attacked = np.vstack([honest, np.full((1, 50), 1e6)])
    assert np.abs(coordinate_median(attacked)).max() < 0.5


def test_fedavg_matches_numpy_average():
    rng = np.random.default_rng(1)
    ups, w = rng.normal(size=(5, 40)), rng.integers(1, 100, size=5)
    np.testing.assert_allclose(fedavg(ups, w), np.average(ups, axis=0, weights=w), rtol=1e-6)


def test_trimmed_mean_by_hand():
    ups = [[0.0], [1.0], [2.0], [3.0], [100.0]]
    assert trimmed_mean(ups, beta=0.2).tolist() == [2.0]  # drops 0 and 100


def test_rules_are_order_independent_bit_for_bit():
    rng = np.random.default_rng(2)
    ups = rng.normal(size=(7, 1000)).astype(np.float32)
    for rule in ("median", "trimmed-mean"):
        a, b = aggregate(rule, ups), aggregate(rule, ups[::-1].copy())
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.array([[np.nan, 1.0]]), np.zeros(3)])
def test_rejects_malformed_stacks(bad):
    with pytest.raises(ValueError):
        coordinate_median(bad)


def test_unknown_rule_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown aggregation rule 'krum2'"):
        aggregate("krum2", [[1.0]])
