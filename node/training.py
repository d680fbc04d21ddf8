"""Local training of one hospital for one round: DP-SGD through Opacus, or plain SGD.

The model starts from the current global parameters and returns its *delta*; the spent
epsilon is read from the hospital's :class:`~node.privacy.PrivacyLedger`, whose accountant
the Opacus optimizer steps directly (one accountant, no copies to drift apart).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from node.data import TabularData
from node.models import flat_parameters, load_flat_parameters
from node.privacy import PrivacyLedger

__all__ = ["TrainConfig", "TrainResult", "train_local"]

log = logging.getLogger("medmesh.training")


@dataclass(frozen=True)
class TrainConfig:
    learning_rate: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class TrainResult:
    delta: np.ndarray  # float32, new parameters minus the starting global parameters
    samples: int
    steps: int
    epsilon: float  # total spent by this hospital after this round


def train_local(
    model: nn.Module,
    global_params: np.ndarray,
    data: TabularData,
    ledger: PrivacyLedger,
    config: TrainConfig = TrainConfig(),
) -> TrainResult:
    """Train ``model`` from ``global_params`` on ``data`` for one round; return the delta.

    Raises :class:`~node.privacy.BudgetExhausted` before touching the model if the round
    would exceed the hospital's budget. ``model`` is left holding the locally trained weights.
    """
    dp = ledger.config
    ledger.check_round()
    load_flat_parameters(model, global_params)
    generator = torch.Generator().manual_seed(config.seed)
    dataset = TensorDataset(torch.from_numpy(data.x), torch.from_numpy(data.y))
    batch = max(1, math.ceil(len(dataset) / dp.steps_per_epoch))
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    module: nn.Module = model
    if dp.enabled:
        engine = PrivacyEngine(accountant="rdp", secure_mode=False)
        engine.accountant = ledger.accountant  # the ledger's accountant is stepped directly
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
            module, optimizer, loader = engine.make_private(
                module=model, optimizer=optimizer, data_loader=loader,
                noise_multiplier=dp.noise_multiplier, max_grad_norm=dp.max_grad_norm,
                poisson_sampling=True, noise_generator=generator,
            )
    steps = 0
    module.train()
    for _ in range(dp.local_epochs):
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            logits = module(xb)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, yb)
            loss.backward()
            optimizer.step()
            steps += 1
    if dp.enabled:
        module.remove_hooks() if hasattr(module, "remove_hooks") else None
    delta = flat_parameters(model) - global_params
    return TrainResult(delta.astype(np.float32), len(data), steps, ledger.spent())
