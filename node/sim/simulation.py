"""The federated campaign's arithmetic without network or chain, for benchmarks and baselines.

Every round each site trains from the global parameters with :func:`node.learning.training.train_local`
under its own :class:`~node.learning.privacy.PrivacyLedger`, and the global parameters move by the
aggregate of the deltas (:func:`node.consensus.rules.aggregate`, weighted by sample counts capped at
the median count, :func:`node.consensus.rules.bounded_counts`, as the peers cap claims) — the
same arithmetic the peers run in ``node/peer/pipeline.py``, minus sealing, gossip and consensus.
``protect`` is a hook for a protection mode (secure aggregation, encryption): a function that
takes the (n, d) stack of deltas, the weights and the rule and returns the aggregate it
produces; by default the plain :func:`aggregate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from node.consensus.rules import aggregate, bounded_counts
from node.data.samples import LabelledData
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, derive_seed, train_local

__all__ = ["Campaign", "run_campaign", "Protect"]

Protect = Callable[[np.ndarray, list[float], str], np.ndarray]


@dataclass(frozen=True)
class Campaign:
    model: torch.nn.Module  # holding the final global parameters
    params: np.ndarray
    epsilon_spent: float  # the largest spent by any site (0 without DP)


def run_campaign(
    model_name: str,
    sites: Sequence[LabelledData],
    dp: DPConfig,
    *,
    learning_rate: float,
    rule: str = "fedavg",
    f: int = 0,
    seed: int = 0,
    protect: Protect | None = None,
) -> Campaign:
    """``dp.rounds`` rounds of local training on every site, then aggregation by ``rule``."""
    if not sites:
        raise ValueError("a campaign needs at least one site")
    ledgers = [PrivacyLedger(dp, warn_if_off=False) for _ in sites]
    first = sites[0]
    model = (
        build_model(model_name, first.n_features, seed=seed)
        if first.x.ndim == 2
        else build_model(model_name, input_shape=first.input_shape, seed=seed)
    )
    params = flat_parameters(model)
    weights = [
        float(w) for w in bounded_counts([len(s) for s in sites])
    ]  # what any protection mode may weight by
    for r in range(dp.rounds):
        deltas = np.stack(
            [
                train_local(
                    model,
                    params,
                    s,
                    led,
                    TrainConfig(learning_rate, seed=derive_seed(seed, r, i), device="cpu"),
                ).delta
                for i, (s, led) in enumerate(zip(sites, ledgers, strict=False))
            ]
        )
        step = (
            protect(deltas, weights, rule)
            if protect is not None
            else aggregate(rule, deltas, weights, f=f)
        )
        params = (params + step).astype(np.float32)
    load_flat_parameters(model, params)
    return Campaign(model, params, max(led.spent() for led in ledgers) if dp.enabled else 0.0)
