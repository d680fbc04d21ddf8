"""Novelty: pay an update for what it adds over what its sender could have sent without training.

Under commit before reveal (:mod:`node.peer.reveal`) a member that does not train can still
send something useful: an earlier round's accepted update, replayed (with noise, past what the
free-rider screen can tell from honest work). Such a copy is a real middle vote of the median,
so its plain leave-one-out or Shapley value is positive, and where an honest site's own marginal
value is small a copier was paid more than that site's honest work (issue 16: ``copy-30-late``,
8.1 points over its honest leave-one-out share). Data-valuation work asks the same of a payment
to data: replicating what is already available must not raise it (replication robustness,
Ohrimenko, Tople & Tschiatschek, 2019, "Collaborative Machine Learning Markets with
Data-Replication-Robust Payments"; Xu et al., 2021, "Validation Free and Replication Robust
Volume-based Data Valuation", NeurIPS). The construction here is medmesh's own.

The *free substitutes* of a round are what any member can send without training: nothing
(absence) and each accepted update of the previous finalized round (its own included: a
replay of one's own last update is no work either). Player ``i``'s novelty is its value minus
the best value a free substitute would have had *in its seat* (row ``i`` of the same round
replaced, every other row and the rule unchanged):

- leave-one-out (Wang et al., 2019's deletion method): ``v(N) - max(v(N - i), max_p v(N, i <- p))``;
- Shapley: ``phi_i - max(0, max_p phi_i(v with row i <- p))`` (absence earns 0).

Leave-one-out's substitutes also include *noisy replays* (``replay_draws``, 32 by default):
for each previous update ``p``, that many draws of ``p`` plus a Gaussian direction scaled to
``||x_i - p||``, seat ``i``'s own distance from ``p``. A copier's disguise (isotropic noise of
a fixed fraction of the source's norm, Fraboni et al., 2021) is such a draw: it commits before
it sees the round, so it cannot pick noise that helps this round's rule. Over exact replays
alone, a copy whose noise happened to help the rule still had a positive novelty, and in a late
round where every honest novelty was about zero it took the whole round's leave-one-out mint
(issue 16: ``copy-30`` at seed 5, 6.8 points over its honest share; ``copy-30-late`` at seed 2,
+5.5). The copy and the ``K`` draws of its source are exchangeable, so the copy beats all of
them with probability ``1 / (K + 1)`` (the rank argument of a Monte Carlo test:
Barnard, 1963; Hope, 1968, "A Simplified Monte Carlo Significance Test Procedure"), and then
only by the gap to the best draw. Even that gap took a whole late round where no honest
novelty was positive, so the noisy replays are valued at the best draw plus one standard
deviation of the draws' values (``margin``): for normally distributed values a copy beats
that with probability 0.3 % at ``K = 32`` (simulated; 3.0 % without the margin). The
extension of the substitutes to noisy replays, and the margin, are medmesh's own. The cost
falls on honest work of the late rounds, which must now also beat the best of ``K`` random
perturbations of a replay at its distance by that margin, and on ``n x |P| x K`` more
evaluations (Shapley novelty keeps exact replays: it would need ``2^(n-1)`` times as many).

Both are at most the plain value (absence is a substitute), so novelty only ever lowers a
payment; it is zero for a player whose update a free substitute matches. The round's game,
its efficiency (the Shapley values add up to the round's gain) and how much the round mints
are unchanged: only the weights the leave-one-out and Shapley schemes split the mint by
change. The cost: ``n x |P|`` more evaluations for leave-one-out and ``n x |P| x 2^(n-1)``
for exact Shapley, so the Shapley novelty is computed only for rounds of at most
``novelty_max`` participants (above it, the plain values are paid).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .shapley import CachedGame, exact_shapley
from .utility import RoundGame

__all__ = ["noisy_replays", "novel_loo", "novel_shapley", "seated_game"]


def seated_game(game: RoundGame, seat: int, row: np.ndarray) -> RoundGame:
    """``game`` with row ``seat`` replaced by ``row``, every other row and the rule unchanged."""
    updates = game.updates.copy()
    updates[seat] = row
    return RoundGame(
        game.model,
        game.params,
        updates,
        game.samples,
        game.validation,
        game.metric,
        rule=game.rule,
        f=game.f,
        kept=game.kept,
    )


class _Seated:
    """``game`` with row ``seat`` replaced by ``row``; coalitions without the seat reuse
    ``plain``'s cached values (they do not contain the replaced row)."""

    def __init__(self, game: RoundGame, plain: CachedGame, seat: int, row: np.ndarray) -> None:
        self.swapped = CachedGame(seated_game(game, seat, row), game.n)
        self.plain, self.bit = plain, 1 << seat

    def __call__(self, mask: int) -> float:
        return self.swapped(mask) if mask & self.bit else self.plain(mask)


def _substituted(game: RoundGame, plain: CachedGame, substitutes: Sequence[np.ndarray]):
    """Each kept player with its seated games, one per free substitute."""
    kept = game.kept
    assert kept is not None, "RoundGame sets kept"
    for i in range(game.n):
        if kept[i] and len(substitutes):
            yield i, [_Seated(game, plain, i, np.asarray(p)) for p in substitutes]


def noisy_replays(
    row: np.ndarray, substitutes: Sequence[np.ndarray], draws: int, seed: Sequence[int]
) -> list[np.ndarray]:
    """``draws`` noisy replays of each substitute ``p``: ``p`` plus a Gaussian direction scaled
    to ``||row - p||``, the seat's own distance from it (seeded: every party draws alike)."""
    if draws < 0:
        raise ValueError(f"draws must be >= 0, got {draws}")
    x = np.asarray(row, dtype=np.float64)
    out = []
    for j, p in enumerate(substitutes):
        base = np.asarray(p, dtype=np.float64)
        distance = float(np.linalg.norm(x - base))
        directions = np.random.default_rng([*seed, j]).normal(size=(draws, base.size))
        norms = np.linalg.norm(directions, axis=1, keepdims=True)
        out += list((base + distance * directions / norms).astype(np.float32))
    return out


def novel_loo(
    game: RoundGame,
    plain: CachedGame,
    loo: np.ndarray,
    substitutes: Sequence[np.ndarray],
    *,
    draws: int = 0,
    seed: int = 0,
    margin: float = 1.0,
) -> np.ndarray:
    """Leave-one-out novelty; ``loo`` the plain gains ``v(N) - v(N - i)``. With ``draws`` (at
    least 2), each seat's substitutes also include :func:`noisy_replays` of every substitute
    (seed ``seed`` and the seat), valued at the best of them plus ``margin`` x the standard
    deviation of their values."""
    if not (np.isfinite(margin) and margin >= 0) or draws == 1:
        raise ValueError(f"need margin >= 0 and draws 0 or >= 2, got {margin} and {draws}")
    full = (1 << game.n) - 1
    out = np.array(loo, dtype=np.float64)
    for i, seated in _substituted(game, plain, substitutes):
        best = max(s(full) for s in seated)
        rows = noisy_replays(game.updates[i], substitutes, draws, (seed, i))
        noisy = [seated_game(game, i, row)(full) for row in rows]
        if noisy:
            best = max(best, max(noisy) + margin * float(np.std(noisy, ddof=1)))
        out[i] = min(out[i], plain(full) - best)
    return out


def novel_shapley(
    game: RoundGame, plain: CachedGame, phi: np.ndarray, substitutes: Sequence[np.ndarray]
) -> np.ndarray:
    """Shapley novelty; ``phi`` the plain exact values of ``plain``."""
    out = np.array(phi, dtype=np.float64)
    for i, seated in _substituted(game, plain, substitutes):
        out[i] -= max(0.0, max(float(exact_shapley(s, game.n)[i]) for s in seated))
    return out
