"""The incentive arithmetic against hand-worked values: Shapley values of games whose values
are known in closed form, the sampling estimators against the exact values, the Gini
coefficient, the integer budget split and RFFL's reputation update."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import spearmanr

from node.incentives import (
    CachedGame,
    RoundView,
    allocate,
    cosine_similarity,
    exact_shapley,
    gini,
    gtg_shapley,
    penalties,
    reputation_update,
    round_mint,
    tmc_shapley,
)


def _members(mask: int, n: int) -> list[int]:
    return [i for i in range(n) if (mask >> i) & 1]


def test_exact_shapley_of_hand_worked_four_player_games() -> None:
    a = [1.0, 2.0, 3.0, 4.0]
    # additive: each player's own worth
    assert np.allclose(exact_shapley(lambda m: sum(a[i] for i in _members(m, 4)), 4), a)
    # symmetric: v depends on |S| only, so every player gets v(N) / n
    assert np.allclose(exact_shapley(lambda m: bin(m).count("1") ** 2, 4), [4.0] * 4)
    # v(S) = (sum of a over S)^2: phi_i = a_i * sum(a) (marginal 2 a_i s + a_i^2, E[s] = (A - a_i) / 2)
    assert np.allclose(
        exact_shapley(lambda m: sum(a[i] for i in _members(m, 4)) ** 2, 4), [10, 20, 30, 40]
    )
    # glove game, one left glove (player 0) and three right: 3/4 and 1/12 each
    glove = exact_shapley(lambda m: float(m & 1 == 1 and m & 0b1110 != 0), 4)
    assert np.allclose(glove, [3 / 4, 1 / 12, 1 / 12, 1 / 12])
    # unanimity game of {0, 1}: 1/2 each, the others are null players
    assert np.allclose(exact_shapley(lambda m: float(m & 0b11 == 0b11), 4), [0.5, 0.5, 0, 0])


def test_exact_shapley_evaluates_all_sixteen_coalitions_once() -> None:
    game = CachedGame(lambda m: float(bin(m).count("1")), 4)
    exact_shapley(game, 4)
    exact_shapley(game, 4)
    assert game.evaluations == 16
    with pytest.raises(ValueError, match="outside 4 players"):
        game(16)
    with pytest.raises(ValueError, match="1 <= n <= 20"):
        exact_shapley(game, 0)


def test_sampling_estimators_approach_the_exact_values() -> None:
    rng = np.random.default_rng(3)
    w = rng.uniform(0.5, 3.0, 6)

    def game(m: int) -> float:  # a concave (diminishing-returns) game
        return float(np.sqrt(sum(w[i] for i in _members(m, 6))))

    exact = exact_shapley(game, 6)
    tmc = tmc_shapley(game, 6, permutations=400, seed=1)
    gtg = gtg_shapley(game, 6, max_permutations=600, within_tolerance=0.0, convergence=0.0, seed=1)
    for est in (tmc, gtg):
        assert np.isclose(est.sum(), exact.sum())  # efficiency holds for every pass
        assert np.max(np.abs(est - exact)) < 0.05 * exact.max()
        assert spearmanr(est, exact).statistic == pytest.approx(1.0)


def test_gtg_between_round_truncation_and_guided_first_players() -> None:
    flat = CachedGame(lambda m: 0.5 + 1e-6 * bin(m).count("1"), 4)
    assert np.array_equal(gtg_shapley(flat, 4, round_tolerance=1e-4), np.zeros(4))
    assert flat.evaluations == 2  # v(0) and v(N) only
    # truncation: once a prefix reaches v(N), later players get nothing in that pass
    first_only = gtg_shapley(lambda m: float(m != 0), 3, max_permutations=3, convergence=0.0)
    assert np.allclose(first_only, [1 / 3] * 3)  # each player led one guided permutation


def test_gini_hand_worked() -> None:
    assert gini([5, 5, 5, 5]) == 0.0
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)  # sum|xi-xj| = 6, 2 n^2 mean = 8
    assert gini([1, 2, 3]) == pytest.approx(2 / 9)  # sum|xi-xj| = 8, 2 * 9 * 2 = 36
    assert gini([0, 0]) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        gini([1, -1])


def test_allocate_is_exact_and_within_budget() -> None:
    assert allocate(100, {"a": 1.0, "b": 1.0, "c": 1.0}) == {"a": 33, "b": 33, "c": 33}
    assert allocate(10**20, {"a": 0.25, "b": 0.75, "c": -1.0, "d": 0.0}) == {
        "a": 25 * 10**18,
        "b": 75 * 10**18,
    }
    assert allocate(7, {"a": 0.0}) == {}
    w = {"a": 0.1, "b": 0.2, "c": 0.3000000001}
    got = allocate(10**18, w)
    exact_total = sum(Fraction(v) for v in w.values())
    assert got == {k: int(10**18 * Fraction(v) // exact_total) for k, v in w.items()}
    assert sum(got.values()) <= 10**18


def test_round_mint_pays_value_units_exactly_and_refuses_bad_arguments() -> None:
    assert round_mint(100, 0.25) == 25 and round_mint(100, 0.25, unit=0.5) == 50
    assert round_mint(100, 3.0) == 100  # capped at the budget
    assert round_mint(100, 0.0) == 0 and round_mint(100, -0.4) == 0  # no gain, nothing minted
    assert round_mint(100, -0.4, mint="pot") == 100  # the fixed pot ignores the gain
    # exact: 0.1 is 3602879701896397 / 2^55, and 10^20 of it is 10000000000000000555.1...
    assert round_mint(10**20, 0.1) == 10000000000000000555
    with pytest.raises(ValueError, match="mint = 'flat' is not one of value, pot"):
        round_mint(100, 0.1, mint="flat")
    with pytest.raises(ValueError, match="finite unit > 0"):
        round_mint(100, 0.1, unit=0.0)
    with pytest.raises(ValueError, match="gain must be finite"):
        round_mint(100, float("nan"))


def test_reputation_update_and_penalties_hand_worked() -> None:
    prev = np.array([0.0, 0.4, 0.8])
    sim = np.array([0.6, -0.2, 0.9])
    acc = np.array([True, True, False])
    # 0.5*0 + 0.5*0.6; 0.5*0.4 + 0.5*0 (negative cosine scores 0); (0.5*0.8 + 0) * (1 - 0.5)
    assert np.allclose(reputation_update(prev, sim, acc, alpha=0.5, slash=0.5), [0.3, 0.2, 0.2])
    view = RoundView(1, ("a", "b", "c"), np.ones(3), acc, np.zeros(3), np.zeros(3), np.zeros(3))
    assert penalties(view, 7) == {"c": 7} and penalties(view, 0) == {}
    assert cosine_similarity(np.zeros(3), np.ones(3)) == 0.0
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(2**-0.5)


def test_public_names() -> None:
    import node.incentives

    assert sorted(node.incentives.__all__) == [
        "CachedGame", "METRICS", "MINTS", "RoundGame", "RoundView", "SCHEMES", "allocate",
        "cosine_similarity", "equal_weights", "exact_shapley", "gini", "gtg_shapley", "loo_weights",
        "metric_value", "penalties", "reputation_update", "reputation_weights", "round_mint",
        "shapley_weights", "size_weights", "tmc_shapley",
    ]  # fmt: skip
    assert sorted(node.incentives.SCHEMES) == [
        "data-size",
        "equal",
        "leave-one-out",
        "reputation",
        "shapley-gtg",
    ]


def test_round_game_steps_and_metric_hand_worked() -> None:
    import torch

    from node.data.samples import TabularData
    from node.incentives import RoundGame, metric_value
    from node.learning.models import build_model

    # minus the mean cross-entropy: logits 0 give ln 2; a confident right answer costs log(1 + e^-4)
    assert metric_value("neg-logloss", np.array([1.0, 0.0]), np.zeros(2)) == pytest.approx(
        -np.log(2)
    )
    assert metric_value("neg-logloss", np.array([1.0]), np.array([4.0])) == pytest.approx(
        -np.log1p(np.exp(-4))
    )
    assert metric_value("auc", np.array([0.0, 1.0, 1.0]), np.array([0.1, 0.3, 0.2])) == 1.0
    torch.manual_seed(0)
    model = build_model("logreg", 2)
    validation = TabularData(
        np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), np.array([1.0, 0.0])
    )
    updates = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0]], dtype=np.float32)
    game = RoundGame(
        model,
        np.zeros(3, dtype=np.float32),
        updates,
        np.array([30.0, 10.0, 60.0]),
        validation,
        "neg-logloss",
    )
    # step(S) = sum over S of b_i / b_N * update_i: the FedAvg step restricted to S's terms, with
    # the claims bounded at the lower median claim (issue 16): 30 / 10 / 60 -> 30 / 10 / 30 of 70
    assert np.allclose(game.aggregate(0b101), [3 / 7, -3 / 7, 0.0])
    assert np.allclose(game.aggregate(0b011), game.aggregate(0b001))  # a zero update adds nothing
    assert game(0) == pytest.approx(-np.log(2))
    # weights (3/7, -3/7), bias 0: logits 3/7 (label 1) and -3/7 (label 0)
    expected = -np.mean([np.log1p(np.exp(-3 / 7)), np.log1p(np.exp(-3 / 7))])
    assert game(0b101) == pytest.approx(expected, rel=1e-6)
    # the game of the step actually applied: the coordinate median of S's kept updates; a
    # player the screen rejected is a null player
    med = RoundGame(
        model,
        np.zeros(3, dtype=np.float32),
        updates,
        np.array([30.0, 10.0, 60.0]),
        validation,
        "neg-logloss",
        rule="median",
        kept=np.array([True, False, True]),
    )
    assert np.allclose(med.aggregate(0b111), [0.5, -0.5, 0.0])  # median of two rows: their mean
    assert np.allclose(med.aggregate(0b001), [1.0, 0.0, 0.0])
    assert np.allclose(med.aggregate(0b010), [0.0, 0.0, 0.0]) and med(0b011) == med(0b001)


@pytest.mark.parametrize("rule,f", [("fedavg", 0), ("median", 1), ("multi-krum", 1), ("geomed", 1)])
def test_round_game_grand_coalition_is_the_applied_step_bit_for_bit(rule: str, f: int) -> None:
    """Issue 16: the game is the step the rule applies to the kept updates (claims bounded as
    aggregate() bounds them), so Shapley's efficiency sums to the real gain."""
    import torch

    from node.consensus.rules import aggregate
    from node.data.samples import TabularData
    from node.incentives import RoundGame
    from node.learning.models import build_model

    torch.manual_seed(0)
    rng = np.random.default_rng(9)
    updates = rng.normal(size=(7, 3)).astype(np.float32)
    claims = np.array([30.0, 10.0, 60.0, 3000.0, 45.0, 20.0, 50.0])
    kept = np.array([True, True, False, True, True, True, True])
    validation = TabularData(rng.normal(size=(6, 2)).astype(np.float32), np.array([1.0, 0.0] * 3))
    game = RoundGame(
        build_model("logreg", 2),
        np.zeros(3, dtype=np.float32),
        updates,
        claims,
        validation,
        "neg-logloss",
        rule=rule,
        f=f,
        kept=kept,
    )
    applied = aggregate(rule, updates[kept], claims[kept].tolist(), f=f)
    assert game.aggregate((1 << 7) - 1).tobytes() == applied.tobytes()
    assert (
        game.aggregate(0b0000100).tobytes() == np.zeros(3, dtype=np.float32).tobytes()
    )  # the rejected one is null
