"""Free-rider screening: updates that carry no work of their sender's own.

Lin et al., 2019, "Free-riders in Federated Learning: Attacks and Defenses" (arXiv:1911.12560)
and Fraboni et al., 2021, "Free-rider Attacks on Model Aggregation in Federated Learning"
(AISTATS) describe free-riders that send back the model they received (a zero update, the
"plain" free-rider) or a replay of an earlier global step (a "stale" update). Neither needs
the sender's data. A third cheap form copies another participant's update of the same round.

:func:`screen_free_riders` flags, in commit order:

- ``zero-update``: ``||u_i|| <= zero_tolerance * median_j ||u_j||`` (or ``u_i`` all zero);
- ``stale-update``: ``cos(u_i, g_prev) >= threshold``, ``g_prev`` the previous global step;
- ``duplicate-update``: ``cos(u_i, u_j) >= threshold`` for an update ``u_j`` committed
  earlier and not flagged (a copier must see ``u_j`` before it can commit, so the later
  committer is the copier).

Cosine is scale-free, so a scaled replay is flagged too. The default threshold,
:data:`SIMILARITY_THRESHOLD` = 0.999, sits well above what honest updates reach without any
DP noise on the breast-cancer task: at most 0.982 between two honest sites of one round
and 0.953 between an honest update and the previous global step (4 shipped scenarios x 3
seeds; see the README). DP-SGD noise only lowers these. A "disguised" free-rider
(Fraboni et al.) that adds enough noise to a replay passes this screen; it is left to the
robust rule and to the contribution schemes, which pay noise nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["FREE_RIDER_REASONS", "SIMILARITY_THRESHOLD", "ZERO_TOLERANCE", "screen_free_riders"]

#: Reason names, as :data:`ledger.records.REJECTION_REASONS` records them on chain.
FREE_RIDER_REASONS = ("zero-update", "stale-update", "duplicate-update")
SIMILARITY_THRESHOLD = 0.999
ZERO_TOLERANCE = 1e-6


def _cosine(a: np.ndarray, b: np.ndarray, norm_a: float, norm_b: float) -> float:
    return 0.0 if norm_a == 0 or norm_b == 0 else float(a @ b / (norm_a * norm_b))


def screen_free_riders(updates: Sequence[np.ndarray], previous_step: np.ndarray | None, *,
                       threshold: float = SIMILARITY_THRESHOLD,
                       zero_tolerance: float = ZERO_TOLERANCE) -> dict[int, str]:
    """Index (into ``updates``, in commit order) -> reason, for each flagged update; see the
    module docstring. ``previous_step`` is None (or zero) before the first global step."""
    if not 0 < threshold <= 1 or not 0 <= zero_tolerance < 1:
        raise ValueError(f"need 0 < threshold <= 1 and 0 <= zero_tolerance < 1, got {threshold}, {zero_tolerance}")
    rows = [np.asarray(u, dtype=np.float64).ravel() for u in updates]
    if any(r.shape != rows[0].shape for r in rows):
        raise ValueError("updates must all have the same number of values")
    norms = [float(np.linalg.norm(r)) for r in rows]
    median = float(np.median(norms)) if norms else 0.0
    prev = None if previous_step is None else np.asarray(previous_step, dtype=np.float64).ravel()
    if prev is not None and rows and prev.shape != rows[0].shape:
        raise ValueError(f"previous_step has {prev.size} values, the updates {rows[0].size}")
    prev_norm = 0.0 if prev is None else float(np.linalg.norm(prev))
    flags: dict[int, str] = {}
    for i, (row, norm) in enumerate(zip(rows, norms)):
        if norm == 0 or norm <= zero_tolerance * median:
            flags[i] = "zero-update"
        elif prev is not None and _cosine(row, prev, norm, prev_norm) >= threshold:
            flags[i] = "stale-update"
        elif any(j not in flags and _cosine(row, rows[j], norm, norms[j]) >= threshold for j in range(i)):
            flags[i] = "duplicate-update"
    return flags
