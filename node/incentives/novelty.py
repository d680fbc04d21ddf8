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

__all__ = ["novel_loo", "novel_shapley"]


class _Seated:
    """``game`` with row ``seat`` replaced by ``row``; coalitions without the seat reuse
    ``plain``'s cached values (they do not contain the replaced row)."""

    def __init__(self, game: RoundGame, plain: CachedGame, seat: int, row: np.ndarray) -> None:
        updates = game.updates.copy()
        updates[seat] = row
        self.swapped = CachedGame(
            RoundGame(
                game.model,
                game.params,
                updates,
                game.samples,
                game.validation,
                game.metric,
                rule=game.rule,
                f=game.f,
                kept=game.kept,
            ),
            game.n,
        )
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


def novel_loo(
    game: RoundGame, plain: CachedGame, loo: np.ndarray, substitutes: Sequence[np.ndarray]
) -> np.ndarray:
    """Leave-one-out novelty; ``loo`` the plain gains ``v(N) - v(N - i)``."""
    full = (1 << game.n) - 1
    out = np.array(loo, dtype=np.float64)
    for i, seated in _substituted(game, plain, substitutes):
        out[i] = min(out[i], min(plain(full) - s(full) for s in seated))
    return out


def novel_shapley(
    game: RoundGame, plain: CachedGame, phi: np.ndarray, substitutes: Sequence[np.ndarray]
) -> np.ndarray:
    """Shapley novelty; ``phi`` the plain exact values of ``plain``."""
    out = np.array(phi, dtype=np.float64)
    for i, seated in _substituted(game, plain, substitutes):
        out[i] -= max(0.0, max(float(exact_shapley(s, game.n)[i]) for s in seated))
    return out
