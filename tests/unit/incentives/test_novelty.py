"""Novelty valuation (node/incentives/novelty.py) against a second implementation: the seated
games rebuilt from scratch and Shapley values by enumerating every order of the players
(Shapley, 1953: the mean marginal over the n! arrival orders), not the subset formula."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
import torch

from node.data.samples import TabularData
from node.incentives import CachedGame, RoundGame, exact_shapley
from node.incentives.novelty import noisy_replays, novel_loo, novel_shapley
from node.learning.models import build_model


def _game(updates: np.ndarray, kept: np.ndarray) -> RoundGame:
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    validation = TabularData(rng.normal(size=(8, 2)).astype(np.float32), np.array([1.0, 0.0] * 4))
    return RoundGame(
        build_model("logreg", 2),
        np.zeros(3, dtype=np.float32),
        updates,
        np.array([30.0, 60.0, 120.0, 40.0]),
        validation,
        "neg-logloss",
        rule="median",
        kept=kept,
    )


def _by_orders(game: RoundGame, i: int) -> float:
    """Player ``i``'s Shapley value as the mean marginal over all arrival orders."""
    total = 0.0
    for order in itertools.permutations(range(game.n)):
        before = sum(1 << j for j in order[: order.index(i)])
        total += game(before | 1 << i) - game(before)
    return total / math.factorial(game.n)


def _seated(game: RoundGame, i: int, row: np.ndarray) -> RoundGame:
    updates = game.updates.copy()
    updates[i] = row
    return _game(updates, np.asarray(game.kept))


def _setup(kept: list[bool]) -> tuple[RoundGame, CachedGame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    game = _game(rng.normal(size=(4, 3)).astype(np.float32), np.array(kept))
    plain = CachedGame(game, 4)
    full = 15
    loo = np.array([plain(full) - plain(full & ~(1 << i)) for i in range(4)])
    return game, plain, loo, exact_shapley(plain, 4)


def test_novelty_is_the_value_over_the_best_free_substitute_in_the_same_seat() -> None:
    game, plain, loo, phi = _setup([True, True, True, False])
    rng = np.random.default_rng(5)
    substitutes = [rng.normal(size=3).astype(np.float32) for _ in range(3)]
    got_loo = novel_loo(game, plain, loo, substitutes)
    got_phi = novel_shapley(game, plain, phi, substitutes)
    full = 15
    for i in range(3):
        seated = [_seated(game, i, p) for p in substitutes]
        best = max(plain(full & ~(1 << i)), *(g(full) for g in seated))
        assert got_loo[i] == pytest.approx(game(full) - best, abs=1e-12)
        best_phi = max(0.0, *(_by_orders(g, i) for g in seated))
        assert got_phi[i] == pytest.approx(_by_orders(game, i) - best_phi, abs=1e-9)
    # the rejected player is null, with or without substitutes
    assert got_loo[3] == loo[3] == 0 and got_phi[3] == pytest.approx(0, abs=1e-12)
    # novelty never pays more than the plain value (absence is a free substitute)
    assert np.all(got_loo <= loo + 1e-15) and np.all(got_phi <= phi + 1e-12)


def test_a_replay_of_a_previous_update_earns_nothing_and_no_substitute_changes_nothing() -> None:
    game, plain, loo, phi = _setup([True, True, True, True])
    replay = [game.updates[2].copy()]  # player 2 sends exactly an update of the previous round
    assert novel_loo(game, plain, loo, replay)[2] <= 0
    assert novel_shapley(game, plain, phi, replay)[2] <= 1e-12
    assert np.array_equal(novel_loo(game, plain, loo, []), loo)
    assert np.array_equal(novel_shapley(game, plain, phi, []), phi)


def test_noisy_replays_sit_at_the_seats_distance_and_are_drawn_alike() -> None:
    rng = np.random.default_rng(7)
    row, subs = rng.normal(size=5), [rng.normal(size=5) for _ in range(2)]
    draws = noisy_replays(row, subs, 16, (3, 1))
    assert len(draws) == 32 and all(d.dtype == np.float32 for d in draws)
    for j, p in enumerate(subs):
        distance = np.linalg.norm(row - p)
        for d in draws[16 * j : 16 * (j + 1)]:
            assert np.linalg.norm(d.astype(np.float64) - p) == pytest.approx(distance, rel=1e-6)
    again = noisy_replays(row, subs, 16, (3, 1))
    assert all(np.array_equal(a, b) for a, b in zip(draws, again, strict=True))
    assert not np.array_equal(draws[0], noisy_replays(row, subs, 16, (3, 2))[0])  # per seat
    assert noisy_replays(row, subs, 0, (3, 1)) == []
    with pytest.raises(ValueError, match="draws"):
        noisy_replays(row, subs, -1, (3, 1))


def test_leave_one_out_novelty_takes_the_best_noisy_replay_plus_a_margin() -> None:
    """Against games rebuilt from scratch: each kept seat's value over the best of absence, the
    exact replays, and the noisy replays of them at its own distance, the latter valued at
    their best plus ``margin`` standard deviations of their values."""
    game, plain, loo, _ = _setup([True, True, True, False])
    rng = np.random.default_rng(5)
    substitutes = [rng.normal(size=3).astype(np.float32) for _ in range(2)]
    exact_only = novel_loo(game, plain, loo, substitutes)
    full = 15
    for margin in (0.0, 1.0):
        got = novel_loo(game, plain, loo, substitutes, draws=8, seed=9, margin=margin)
        for i in range(3):
            noisy = noisy_replays(game.updates[i], substitutes, 8, (9, i))
            assert len(noisy) == 16
            values = [_seated(game, i, r)(full) for r in noisy]
            best = max(
                plain(full & ~(1 << i)),
                *(_seated(game, i, r)(full) for r in substitutes),
                max(values) + margin * statistics.stdev(values),
            )
            assert got[i] == pytest.approx(game(full) - best, abs=1e-12)
            assert got[i] <= exact_only[i]  # more substitutes never raise a payment
        assert got[3] == loo[3] == 0
    with pytest.raises(ValueError, match="margin"):
        novel_loo(game, plain, loo, substitutes, draws=8, margin=-1.0)
    with pytest.raises(ValueError, match="draws"):
        novel_loo(game, plain, loo, substitutes, draws=1)
