"""Incentives for hospitals: Shapley values (exact, TMC, GTG), leave-one-out, reputation,
the Gini coefficient, and a simulator that pays each scheme's credits through the real
contracts (``medmesh incentives simulate``)."""

from .fairness import gini
from .schemes import (
    MINTS,
    SCHEMES,
    RoundView,
    allocate,
    cosine_similarity,
    equal_weights,
    loo_weights,
    penalties,
    reputation_update,
    reputation_weights,
    round_mint,
    shapley_weights,
    size_weights,
)
from .shapley import CachedGame, exact_shapley, gtg_shapley, tmc_shapley
from .utility import METRICS, RoundGame, metric_value

__all__ = [
    "METRICS",
    "MINTS",
    "SCHEMES",
    "CachedGame",
    "RoundGame",
    "RoundView",
    "allocate",
    "cosine_similarity",
    "equal_weights",
    "exact_shapley",
    "gini",
    "gtg_shapley",
    "loo_weights",
    "metric_value",
    "penalties",
    "reputation_update",
    "reputation_weights",
    "round_mint",
    "shapley_weights",
    "size_weights",
    "tmc_shapley",
]
