"""Free-rider screening: updates that carry no work of their sender's own.

Lin et al., 2019, "Free-riders in Federated Learning: Attacks and Defenses" (arXiv:1911.12560)
and Fraboni et al., 2021, "Free-rider Attacks on Model Aggregation in Federated Learning"
(AISTATS) describe free-riders that send back the model they received (a zero update, the
"plain" free-rider) or a replay of an earlier global step (a "stale" update), either of them
"disguised" with added noise. None needs the sender's data. Another cheap form copies another
participant's update of the same round, again with noise added.

:func:`screen_free_riders` flags, in commit order:

- ``zero-update``: ``||u_i|| <= zero_tolerance * median_j ||u_j||`` (or ``u_i`` all zero);
- ``stale-update``: ``cos(u_i, g_prev) >= threshold``, ``g_prev`` the previous global step;
- ``duplicate-update``: ``u_i`` is a (noisy) copy of an update ``u_j`` committed earlier and
  not flagged (a copier must see ``u_j`` before it can commit, so the later committer is the
  copier): ``cos(u_i, u_j) >= threshold``, or the angle between them is small *against the
  spread of the round*: ``cos(u_i, u_j) > 0`` and ``sin(u_i, u_j) < spread_fraction * S``, where
  ``S`` is the median of ``sin(u_k, u_l)`` over every pair of the round's non-zero updates;
  or, by the same test, a copy of *another* member's accepted update of the previous round
  (``earlier``). Under commit before reveal (:mod:`node.peer.reveal`) no member sees a
  current-round update before its own commitment is fixed, so an earlier round's update is
  the only work a copier can take.

Cosine is scale-free, so a scaled copy or replay is flagged too. The fixed threshold
:data:`SIMILARITY_THRESHOLD` = 0.999 catches exact and scaled copies. It cannot tell a 10 %
noisy copy (cosine 0.995) from two honest sites (up to 0.986 on the breast-cancer task);
measured against the round's own spread it can, while the noise is small: over the shipped
scenarios (4 scenarios x 5 seeds, no DP noise, ``scripts/free_rider_margins.py``) an honest
update's nearest other update is at least 0.33 S away, so :data:`SPREAD_FRACTION` = 0.2 leaves
a 1.67x margin, and a copy is caught while its noise keeps it closer to its source than 0.2 S.
Past that, a copy is as far from its source as two honest sites can be from each other, and no
similarity screen can tell them apart (the sweep in ``docs/incentive-gaming.md`` shows where
detection stops). The median is over pairs, so colluders can move ``S`` only while they hold
fewer than half of the pairs.

The previous-round test compares each update with the other members' accepted updates of
the previous round, never with its sender's own (a site's updates may well stay alike from
round to round). Honest updates come no closer to another site's previous-round update than
0.30 S over the same scenarios (``min_honest_vs_others_previous_over_spread``), a 1.5x
margin at 0.2 S. Its limit: a member could plant, in round t - 1, a prediction of an honest
site's round-t update and get that site flagged in round t. Commit before reveal makes the
planter predict two rounds ahead (it commits in t - 1 knowing updates up to t - 2), and only
accepted updates count (the plant must pass the robust rule and this screen itself). Every
peer that adopted the previous round's aggregate holds the same accepted updates; one that
did not (it caught up by hash) screens without them, and adopts the pair already attested
(:mod:`node.consensus.attested`) where the two differ.

The stale test keeps the fixed cosine only: an honest site's update can sit close to the
previous global step (momentum, and a step dominated by that site's own last update; 0.23 S
was seen with a copier in the round), so a spread-relative stale test would let a copier get
an honest site flagged. A noisy replay of the previous step is left to the contribution
schemes.

Every inner product goes through :func:`node.consensus.rules.gram` (fixed order, no BLAS), so
every peer flags the same updates on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from node.consensus.rules import gram

__all__ = [
    "FREE_RIDER_REASONS",
    "SIMILARITY_THRESHOLD",
    "SPREAD_FRACTION",
    "ZERO_TOLERANCE",
    "round_spread",
    "screen_free_riders",
]

#: Reason names, as :data:`ledger.records.REJECTION_REASONS` records them on chain.
FREE_RIDER_REASONS = ("zero-update", "stale-update", "duplicate-update")
SIMILARITY_THRESHOLD = 0.999
SPREAD_FRACTION = 0.2
ZERO_TOLERANCE = 1e-6


def _cos_sin(g: np.ndarray, i: int, j: int) -> tuple[float, float]:
    if g[i, i] == 0 or g[j, j] == 0:
        return 0.0, 1.0
    cos = max(-1.0, min(1.0, g[i, j] / math.sqrt(g[i, i] * g[j, j])))
    return cos, math.sqrt(max(0.0, 1.0 - cos * cos))


def round_spread(updates: Sequence[np.ndarray]) -> float:
    """The round's spread ``S``: the median of ``sin(u_k, u_l)`` over pairs of non-zero updates
    (0 with fewer than three, where a median says nothing)."""
    g = gram([np.asarray(u, dtype=np.float64).ravel() for u in updates])
    return _spread(g, [k for k in range(len(g)) if g[k, k] > 0])


def _spread(g: np.ndarray, live: list[int]) -> float:
    if len(live) < 3:
        return 0.0
    return float(
        np.median([_cos_sin(g, k, m)[1] for a, k in enumerate(live) for m in live[a + 1 :]])
    )


def screen_free_riders(
    updates: Sequence[np.ndarray],
    previous_step: np.ndarray | None,
    *,
    senders: Sequence[str] = (),
    earlier: Mapping[str, np.ndarray] | None = None,
    threshold: float = SIMILARITY_THRESHOLD,
    spread_fraction: float = SPREAD_FRACTION,
    zero_tolerance: float = ZERO_TOLERANCE,
) -> dict[int, str]:
    """Index (into ``updates``, in commit order) -> reason, for each flagged update; see the
    module docstring. ``previous_step`` is None (or zero) before the first global step;
    ``earlier`` maps a member to its accepted update of the previous round (``senders``: who
    sent each of ``updates``, so that no update is compared with its sender's own);
    ``spread_fraction = 0`` keeps only the fixed-cosine test."""
    if not 0 < threshold <= 1 or not 0 <= zero_tolerance < 1 or not 0 <= spread_fraction < 1:
        raise ValueError(
            f"need 0 < threshold <= 1, 0 <= spread_fraction < 1 and 0 <= zero_tolerance < 1, "
            f"got {threshold}, {spread_fraction}, {zero_tolerance}"
        )
    rows = [np.asarray(u, dtype=np.float64).ravel() for u in updates]
    if not rows:
        return {}
    if any(r.shape != rows[0].shape for r in rows):
        raise ValueError("updates must all have the same number of values")
    prev = None if previous_step is None else np.asarray(previous_step, dtype=np.float64).ravel()
    if prev is not None and prev.shape != rows[0].shape:
        raise ValueError(f"previous_step has {prev.size} values, the updates {rows[0].size}")
    n = len(rows)
    refs = list((earlier or {}).items())
    if refs and len(senders) != n:
        raise ValueError(f"earlier updates need the senders of all {n} updates, got {len(senders)}")
    if any(np.asarray(u).size != rows[0].size for _, u in refs):
        raise ValueError("earlier updates must have as many values as the updates")
    g = gram(
        rows
        + ([prev] if prev is not None else [np.zeros_like(rows[0])])  # row n: the previous step
        + [np.asarray(u, dtype=np.float64).ravel() for _, u in refs]  # rows n + 1...: earlier
    )
    norms = [math.sqrt(g[i, i]) for i in range(n)]
    median = float(np.median(norms))
    flags: dict[int, str] = {
        i: "zero-update" for i in range(n) if norms[i] == 0 or norms[i] <= zero_tolerance * median
    }
    bound = spread_fraction * _spread(g, [i for i in range(n) if i not in flags])

    def copies(i: int, j: int) -> bool:
        cos, sin = _cos_sin(g, i, j)
        return cos >= threshold or (cos > 0 and sin < bound)

    for i in range(n):
        if i in flags:
            continue
        if _cos_sin(g, i, n)[0] >= threshold:
            flags[i] = "stale-update"
        elif any(j not in flags and copies(i, j) for j in range(i)) or any(
            who != senders[i] and copies(i, n + 1 + k) for k, (who, _) in enumerate(refs)
        ):
            flags[i] = "duplicate-update"
    return flags
