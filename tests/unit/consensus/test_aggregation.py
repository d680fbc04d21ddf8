"""Aggregation rules against values worked by hand and against NumPy's own statistics."""

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from node.consensus.rules import (
    aggregate,
    clip_norms,
    coordinate_median,
    geometric_median,
    krum_scores,
    multi_krum,
    trimmed_mean,
)
from node.consensus.rules.bulyan import bulyan
from node.consensus.rules.fedavg import fedavg
from node.consensus.rules.krum import krum


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


# -- Krum family, Bulyan, geometric median: against independent references --------------


def reference_krum_scores(vectors, f):
    """Blanchard et al. 2017, Sec. 4, written out with plain Python lists."""
    n = len(vectors)
    out = []
    for i in range(n):
        d = sorted(
            sum((a - b) ** 2 for a, b in zip(vectors[i], vectors[j], strict=False))
            for j in range(n)
            if j != i
        )
        out.append(sum(d[: n - f - 2]))
    return out


def test_krum_scores_match_the_paper_definition():
    rng = np.random.default_rng(3)
    for n, f in [(5, 1), (7, 2), (10, 3)]:
        ups = rng.normal(size=(n, 6))
        np.testing.assert_allclose(
            krum_scores(ups, f), reference_krum_scores(ups.tolist(), f), rtol=1e-12
        )


def test_krum_by_hand():
    # four clustered points and one far away: Krum picks the most central of the cluster
    ups = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [50.0, 50.0]]
    assert krum(ups, f=1).tolist() == [0.5, 0.5]
    np.testing.assert_allclose(multi_krum(ups, f=1), [0.375, 0.375])  # mean of the 4 cluster points


def test_krum_needs_enough_updates():
    with pytest.raises(ValueError, match="n >= 2f \\+ 3"):
        krum(np.zeros((4, 2)), f=1)


def test_bulyan_resists_f_attackers_in_every_coordinate():
    rng = np.random.default_rng(4)
    honest = rng.normal(0, 1, size=(9, 20))
    evil = np.full((2, 20), 1e3)
    out = bulyan(np.vstack([honest, evil]), f=2)
    assert (out >= honest.min(axis=0) - 1e-6).all() and (out <= honest.max(axis=0) + 1e-6).all()
    with pytest.raises(ValueError, match="4f \\+ 3"):
        bulyan(np.zeros((10, 2)), f=2)


def test_bulyan_matches_a_second_implementation():
    """A literal transcription of El Mhamdi et al. 2018, Algorithm 1, kept separate on purpose."""
    rng = np.random.default_rng(5)
    ups = rng.normal(size=(11, 7))
    f = 2
    pool, chosen = list(range(11)), []
    while len(chosen) < 11 - 2 * f:
        k = max(1, len(pool) - f - 2)
        scores = [
            (sum(sorted(float(((ups[i] - ups[j]) ** 2).sum()) for j in pool if j != i)[:k]), i)
            for i in pool
        ]
        best = min(scores)[1]
        chosen.append(best)
        pool.remove(best)
    sel = ups[sorted(chosen)]
    beta = len(sel) - 2 * f
    expected = []
    for c in range(sel.shape[1]):
        col = sel[:, c]
        med = np.median(col)
        nearest = sorted(range(len(col)), key=lambda r: (abs(col[r] - med), r))[:beta]
        expected.append(np.mean(col[nearest]))
    np.testing.assert_allclose(bulyan(ups, f=f), expected, rtol=1e-6)


def test_geometric_median_matches_a_numerical_optimizer():
    rng = np.random.default_rng(6)
    ups = rng.normal(size=(7, 5))
    w = rng.uniform(1, 3, size=7)
    objective = lambda z: float((w * np.sqrt(((ups - z) ** 2).sum(axis=1))).sum())  # noqa: E731
    ref = minimize(
        objective,
        ups.mean(axis=0),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000, "maxfev": 40000},
    ).x
    np.testing.assert_allclose(geometric_median(ups, w, iterations=1000), ref, atol=1e-4)


def test_geometric_median_by_hand():
    square = [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]]
    np.testing.assert_allclose(geometric_median(square), [1.0, 1.0], atol=1e-6)
    line = [[0.0], [1.0], [10.0]]  # in one dimension, the geometric median is the median
    np.testing.assert_allclose(geometric_median(line, iterations=2000), [1.0], atol=1e-4)


def test_clip_norms_bounds_every_row_and_keeps_small_ones():
    ups = np.array([[3.0, 4.0], [0.3, 0.4], [30.0, 40.0]])
    clipped = clip_norms(ups, max_norm=5.0)
    np.testing.assert_allclose(np.linalg.norm(clipped, axis=1), [5.0, 0.5, 5.0])
    np.testing.assert_allclose(clipped[1], ups[1])


@pytest.mark.parametrize("rule", ["krum", "multi-krum", "geomed", "fedavg"])
def test_every_rule_gives_identical_bits_from_identical_input(rule):
    ups = np.random.default_rng(7).normal(size=(7, 300)).astype(np.float32)
    assert aggregate(rule, ups, f=1).tobytes() == aggregate(rule, ups.copy(), f=1).tobytes()


def test_permutation_invariant_selection_rules():
    ups = np.random.default_rng(8).normal(size=(7, 50))
    for perm in itertools.islice(itertools.permutations(range(7)), 5):
        np.testing.assert_allclose(
            multi_krum(ups[list(perm)], f=1), multi_krum(ups, f=1), rtol=1e-6
        )
