"""Incentive schemes: how one round's credit budget is split among the hospitals whose updates
the round accepted. Each scheme turns a :class:`RoundView` into non-negative weights; the
budget is then split in proportion by :func:`allocate` (exact integer arithmetic, rounded
down, so the credits never exceed the budget).

- :func:`equal_weights` — equal split among accepted contributors.
- :func:`size_weights` — in proportion to the samples each contributor claims to have trained
  on (the FedAvg weighting, McMahan et al., 2017), bounded by each member's cohort, declared at
  admission and endorsed by the consortium (the chain refuses a commitment above it, and the
  RoundLedger's own ``samples`` credit splits by those bounded commitments): the simulator's
  default (``declared_cohorts = true``). A claim is not a fact: unbounded, one site claiming
  3,000 samples instead of 30 took 94 % of the budget (issue 16). Without declared cohorts
  (an explicit opt-in) the claims are capped at the round's median claim
  (:func:`node.consensus.rules.bounded_counts`), which is **gameable**: no bound computed from
  claims alone stops a small site from claiming the median (33.3 % against an honest 27.3 %
  in the ``four`` scenario), and the cap flattens honest shares (a hospital above the
  median is paid as the median).
- :func:`loo_weights` — leave-one-out marginal gain v(N) - v(N minus i), the deletion method of
  Wang et al., 2019, "Measure Contribution of Participants in Federated Learning"; negative
  gains earn nothing.
- :func:`shapley_weights` — the round's Shapley value: exact whenever every coalition was
  evaluated, else estimated (GTG-Shapley, Liu et al., 2022, or TMC, Ghorbani & Zou, 2019;
  see :mod:`node.incentives.shapley`); negative values earn nothing.
- :func:`reputation_update` / :func:`reputation_weights` — the reputation of RFFL (Xu & Lyu,
  2021, "A Reputation Mechanism Is All You Need: Collaborative Fairness and Adversarial
  Robustness in Federated Learning"): an exponential moving average of the cosine similarity
  between a hospital's update and the round's aggregate. Slashing: an update the robust rule
  rejected scores zero and cuts the hospital's reputation by the ``slash`` fraction, and
  :func:`penalties` burns credits from it.

How much a round mints, before any scheme splits it (:func:`round_mint`): with ``mint =
"value"`` (the default) credits are value units, ``budget`` per ``unit`` of validation-metric
gain over the best metric any earlier round reached (a high-water mark), capped at ``budget``;
with ``mint = "pot"`` every finalized round mints the whole ``budget``. A fixed pot pays the
same for a round that adds nothing as for the round that built the model, so in the late rounds
of a campaign any positive marginal (a stale copy that is still a descent direction) took most
of the pot (issue 16: a previous-round copier paid 48.6 % leave-one-out against an honest
15.9 %). In value units the campaign mints at most ``budget`` x (best metric - initial) /
``unit`` in all, and by Shapley's efficiency axiom (Shapley, 1953: the values of a round add up
to ``v(N) - v({})``) a round's Shapley values are exactly the gain it mints for. The high-water
mark means a round that loses ground mints nothing, and the loss has to be won back before
anything is minted again, so an oscillating model cannot mint twice for the same ground.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from node.consensus.rules import bounded_counts, gram

__all__ = [
    "SCHEMES",
    "RoundView",
    "allocate",
    "MINTS",
    "round_mint",
    "cosine_similarity",
    "equal_weights",
    "size_weights",
    "loo_weights",
    "shapley_weights",
    "reputation_update",
    "reputation_weights",
    "penalties",
]


@dataclass(frozen=True)
class RoundView:
    """One round as the schemes see it; arrays are in ``players`` order (the committers).

    ``reputation`` is each player's reputation after this round's :func:`reputation_update`;
    ``shapley`` the exact values when computed, else the estimate; ``declared`` each player's
    declared cohort (an on-chain ceiling on its claims), if the consortium records one."""

    round: int
    players: tuple[str, ...]
    samples: np.ndarray
    accepted: np.ndarray
    shapley: np.ndarray
    loo: np.ndarray
    reputation: np.ndarray
    declared: np.ndarray | None = None


def allocate(budget: int, weights: dict[str, float]) -> dict[str, int]:
    """``floor(budget * w_i / sum(w))`` for each positive weight, computed exactly (floats are
    turned into fractions without rounding); empty when no weight is positive."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    exact = {k: Fraction(float(w)) for k, w in weights.items() if np.isfinite(w) and w > 0}
    total = sum(exact.values(), Fraction(0))
    if total == 0:
        return {}
    return {
        k: (budget * w.numerator * total.denominator) // (w.denominator * total.numerator)
        for k, w in exact.items()
    }


#: How a round's credits are minted: value units (the default) or a fixed pot; see the module.
MINTS = ("value", "pot")


def round_mint(budget: int, gain: float, *, mint: str = "value", unit: float = 1.0) -> int:
    """Credits (smallest units) a finalized round mints: ``budget`` under ``"pot"``; under
    ``"value"``, ``floor(budget * min(gain / unit, 1))`` for a positive ``gain`` (the metric
    after the round minus the best metric before it), else 0. Exact: the float ``gain`` and
    ``unit`` are turned into fractions without rounding."""
    if budget < 0 or not (math.isfinite(unit) and unit > 0):
        raise ValueError(f"need budget >= 0 and a finite unit > 0, got {budget} and {unit}")
    if mint not in MINTS:
        raise ValueError(f"mint = {mint!r} is not one of {', '.join(MINTS)}")
    if mint == "pot":
        return budget
    if not math.isfinite(gain):
        raise ValueError(f"a round's gain must be finite, got {gain}")
    share = min(Fraction(gain) / Fraction(unit), Fraction(1))
    return 0 if share <= 0 else (budget * share.numerator) // share.denominator


def _accepted_only(view: RoundView, weights: np.ndarray) -> np.ndarray:
    return np.where(view.accepted, np.maximum(np.asarray(weights, dtype=np.float64), 0.0), 0.0)


def equal_weights(view: RoundView) -> np.ndarray:
    return _accepted_only(view, np.ones(len(view.players)))


def size_weights(view: RoundView) -> np.ndarray:
    """Claims capped at the declared cohorts (endorsed at admission); without them (an opt-in,
    gameable up to the median claim) at the round's median claim
    (:func:`node.consensus.rules.bounded_counts`)."""
    claims = np.asarray(view.samples, dtype=np.float64)
    bounded = bounded_counts(claims) if view.declared is None else np.minimum(claims, view.declared)
    return _accepted_only(view, bounded)


def loo_weights(view: RoundView) -> np.ndarray:
    return _accepted_only(view, view.loo)


def shapley_weights(view: RoundView) -> np.ndarray:
    return _accepted_only(view, view.shapley)


def reputation_weights(view: RoundView) -> np.ndarray:
    return _accepted_only(view, view.reputation)


def cosine_similarity(update: np.ndarray, aggregate: np.ndarray) -> float:
    """cos(update, aggregate); 0 when either is the zero vector (a zero update earns nothing)."""
    g = gram(
        [
            np.asarray(update, dtype=np.float64).ravel(),
            np.asarray(aggregate, dtype=np.float64).ravel(),
        ]
    )
    if g[0, 0] == 0 or g[1, 1] == 0:
        return 0.0
    return max(-1.0, min(1.0, float(g[0, 1] / math.sqrt(g[0, 0] * g[1, 1]))))


def reputation_update(
    previous: np.ndarray,
    similarity: np.ndarray,
    accepted: np.ndarray,
    *,
    alpha: float = 0.5,
    slash: float = 0.5,
) -> np.ndarray:
    """RFFL's r_i <- alpha r_i + (1 - alpha) max(cos_i, 0) for accepted updates; a rejected
    update scores 0 and the result is multiplied by (1 - ``slash``)."""
    if not 0 <= alpha < 1 or not 0 <= slash <= 1:
        raise ValueError(
            f"need 0 <= alpha < 1 and 0 <= slash <= 1, got alpha={alpha}, slash={slash}"
        )
    acc = np.asarray(accepted, dtype=bool)
    score = np.where(acc, np.maximum(np.asarray(similarity, dtype=np.float64), 0.0), 0.0)
    updated = alpha * np.asarray(previous, dtype=np.float64) + (1 - alpha) * score
    return np.where(acc, updated, updated * (1 - slash))


def penalties(view: RoundView, penalty: int) -> dict[str, int]:
    """``penalty`` credits to burn from each committer the round left out (reputation scheme)."""
    if penalty < 0:
        raise ValueError(f"penalty must be >= 0, got {penalty}")
    if penalty == 0:
        return {}
    return {p: penalty for p, ok in zip(view.players, view.accepted, strict=False) if not ok}


#: Scheme name (also its on-chain name) -> weights of a round.
SCHEMES: dict[str, Callable[[RoundView], np.ndarray]] = {
    "equal": equal_weights,
    "data-size": size_weights,
    "leave-one-out": loo_weights,
    "shapley-gtg": shapley_weights,
    "reputation": reputation_weights,
}
