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

# Opacus hooks a first layer whose inputs need no grad: torch warns on every backward pass.
# Expected and harmless; filtered once here because training runs in worker threads, where
# ``warnings.catch_warnings`` is not safe.
warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
warnings.filterwarnings("ignore", message=".*Secure RNG turned off.*")
_insecure_rng_logged = False


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
    model.train()
    generator = torch.Generator().manual_seed(config.seed)
    dataset = TensorDataset(torch.from_numpy(data.x), torch.from_numpy(data.y))
    batch = max(1, math.ceil(len(dataset) / dp.steps_per_epoch))
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    module: nn.Module = model
    if dp.enabled:
        _log_insecure_rng_once()
        engine = PrivacyEngine(accountant="rdp", secure_mode=False)
        engine.accountant = ledger.accountant  # the ledger's accountant is stepped directly
        module, optimizer, loader = engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader,
            noise_multiplier=dp.noise_multiplier, max_grad_norm=dp.max_grad_norm,
            poisson_sampling=True,  # noise comes from an unseeded RNG, never the shuffle seed
        )
    steps = _run_epochs(module, optimizer, loader, dp.local_epochs)
    if module is not model:
        module.remove_hooks()  # leave the caller's model free of Opacus' grad-sample hooks
    delta = flat_parameters(model) - global_params
    return TrainResult(delta.astype(np.float32), len(data), steps, ledger.spent())


def _log_insecure_rng_once() -> None:
    global _insecure_rng_logged
    if not _insecure_rng_logged:
        _insecure_rng_logged = True
        log.warning("DP-SGD noise comes from torch's default RNG (Opacus secure_mode off); "
                    "use a cryptographically secure RNG for a production campaign")


def _run_epochs(module: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, epochs: int) -> int:
    steps = 0
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            logits = module(xb)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, yb)
            loss.backward()
            optimizer.step()
            steps += 1
    return steps
