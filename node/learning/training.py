"""Local training of one hospital for one round: DP-SGD through Opacus, or plain SGD.

The model starts from the current global parameters, runs ``local_epochs`` epochs (default 1,
from the :class:`~node.learning.privacy.DPConfig`) and returns its *delta*; the spent epsilon is read
from the hospital's :class:`~node.learning.privacy.PrivacyLedger`, whose accountant the Opacus
optimizer steps directly (one accountant, no copies to drift apart).

FedProx (Li et al., 2020): with ``proximal_mu > 0`` every step is followed by a proximal step
``w -= lr * mu * (w - w_global)``, the gradient of ``mu/2 * ||w - w_global||^2``. That term
does not depend on any patient, so it is applied after Opacus has clipped and noised the data
gradient and spends no privacy (per-sample clipping must not see it).

The DP noise is never drawn from a seeded generator: ``TrainConfig.seed`` only seeds the
batch shuffling of non-DP training. DP-SGD uses Poisson sampling; with ``secure_mode`` both
the sampling and the noise come from :class:`~node.learning.securerng.SecureRandom` (ChaCha20 under a
fresh key), otherwise from torch's default RNG through Opacus.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch
from opacus import GradSampleModule, PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from node.data.samples import LabelledData
from node.learning.models import flat_parameters, load_flat_parameters, select_device
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.securerng import (
    PoissonSampler,
    SecurePoissonLoader,
    SecureRandom,
    secure_noise_optimizer,
)
from node.service.config import TrainingSection

__all__ = [
    "TrainConfig",
    "TrainResult",
    "derive_seed",
    "private_loader",
    "round_train_config",
    "train_local",
]

log = logging.getLogger("medmesh.training")

# Opacus hooks a first layer whose inputs need no grad: torch warns on every backward pass.
# Expected and harmless; filtered once here because training runs in worker threads, where
# ``warnings.catch_warnings`` is not safe. The insecure-RNG notice is logged once instead.
# Re-applied on every call: a library met later (seen: a `simplefilter("default")` during
# the network start-up) can put a catch-all filter in front of these.


def _quiet_known_warnings() -> None:
    warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
    warnings.filterwarnings("ignore", message=".*Secure RNG turned off.*")


_quiet_known_warnings()
_insecure_rng_logged = False


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer settings of one hospital; the DP schedule (epochs, steps) is in DPConfig.

    ``device``: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda:0"``... The
    defaults are the node's ``[training]`` section (:class:`node.service.config.TrainingSection`).
    """

    learning_rate: float = TrainingSection.learning_rate
    seed: int = TrainingSection.seed
    proximal_mu: float = TrainingSection.proximal_mu
    device: str = TrainingSection.device

    @classmethod
    def from_section(cls, t: TrainingSection) -> TrainConfig:
        """The optimizer settings of a ``[training]`` section, every key carried over."""
        return cls(t.learning_rate, t.seed, proximal_mu=t.proximal_mu, device=t.device)

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.proximal_mu < 0:
            raise ValueError(f"proximal_mu must be >= 0, got {self.proximal_mu}")


#: Sites per (seed, round) that :func:`derive_seed` keeps apart: seeds stay distinct while
#: ``seed * 100_003 + round`` is below this (seeds under ~42,000).
_SITE_STRIDE = 2**32


def derive_seed(seed: int, round_: int, site: int = 0) -> int:
    """The training seed of one round (and, in a simulation, one site) from a campaign's seed:
    ``seed * 100_003 + round + site * 2**32``. The one derivation the peer, the simulators and
    the baselines use; a node (site 0) gets ``seed * 100_003 + round``."""
    return seed * 100_003 + round_ + site * _SITE_STRIDE


def round_train_config(config: TrainConfig, round_: int) -> TrainConfig:
    """The hospital's settings for one round: everything kept, only the seed derived per round.

    Built with :func:`dataclasses.replace`, so a field added to :class:`TrainConfig` (as
    ``device`` and ``proximal_mu`` were) reaches training without touching this function.
    """
    return replace(config, seed=derive_seed(config.seed, round_))


@dataclass(frozen=True)
class TrainResult:
    delta: np.ndarray  # float32, new parameters minus the starting global parameters
    samples: int  # the count this hospital may publish: Ñ under DP with a count release, else N
    steps: int
    epsilon: float  # total spent by this hospital after this round


def train_local(
    model: nn.Module,
    global_params: np.ndarray,
    data: LabelledData,
    ledger: PrivacyLedger,
    config: TrainConfig = TrainConfig(),
) -> TrainResult:
    """Train ``model`` from ``global_params`` on ``data`` for one round; return the delta.

    Raises :class:`~node.learning.privacy.BudgetExhausted` before touching the model if the round
    would exceed the hospital's budget. ``model`` is left holding the locally trained weights
    (on the CPU).
    """
    _quiet_known_warnings()
    dp = ledger.config
    ledger.check_round()
    if len(data) == 0:
        raise ValueError(f"{data.source or 'training data'}: no samples to train on")
    count = (
        ledger.release_count(len(data)) if dp.enabled else len(data)
    )  # Ñ: see node.learning.privacy
    device = select_device(config.device)
    load_flat_parameters(model, global_params)
    model.to(device)
    model.train()
    generator = torch.Generator().manual_seed(config.seed)
    dataset = TensorDataset(torch.from_numpy(data.x), torch.from_numpy(data.y))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    module: nn.Module = model
    private: GradSampleModule | None = None  # Opacus' wrapper, with its grad-sample hooks
    if dp.enabled:
        engine = PrivacyEngine(
            accountant=dp.accountant
        )  # Opacus' secure_mode needs torchcsprng: see below
        engine.accountant = ledger.accountant  # the ledger's accountant is stepped directly
        # Opacus takes its sample rate (for the accountant) as 1 / len(data_loader): hand it a
        # plan of exactly steps_per_epoch batches, so the accountant steps at dp.sample_rate
        plan = DataLoader(
            dataset, batch_sampler=[[i % len(dataset)] for i in range(dp.steps_per_epoch)]
        )
        private, optimizer, _ = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=plan,
            noise_multiplier=dp.noise_multiplier,
            max_grad_norm=dp.max_grad_norm,
            poisson_sampling=True,  # never pass a seeded noise_generator: noise must be unpredictable
        )
        module = private
        # the mean's denominator is public: Ñ · q, not Opacus' N · q (a scale only; >= 1 when N < steps)
        optimizer.expected_batch_size = max(1, int(count * dp.sample_rate))
        rng: PoissonSampler
        if dp.secure_mode:  # same clipping, scaling and accounting; secure sampling and noise
            secure = SecureRandom()
            secure_noise_optimizer(optimizer, secure)
            rng = secure
        else:
            rng = _TorchBernoulli()
            _log_insecure_rng_once()
        loader: Iterable = private_loader(dataset, dp, rng)
    else:
        batch = max(1, math.ceil(len(dataset) / dp.steps_per_epoch))
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, generator=generator)
    anchor = None
    if config.proximal_mu > 0:
        anchor = [p.detach().clone() for p in model.parameters()]
    try:
        steps = _run_epochs(
            module,
            optimizer,
            loader,
            dp.local_epochs,
            device,
            anchor,
            config.learning_rate * config.proximal_mu,
            list(model.parameters()),
        )
    finally:
        if private is not None and private is not model:
            private.remove_hooks()  # leave the caller's model free of Opacus' grad-sample hooks
        model.to("cpu")
    delta = flat_parameters(model) - global_params
    return TrainResult(delta.astype(np.float32), count, steps, ledger.spent())


def private_loader(
    dataset: TensorDataset, dp: DPConfig, rng: PoissonSampler
) -> SecurePoissonLoader:
    """The DP-SGD batches of one local epoch: ``dp.steps_per_epoch`` batches, each example in
    each with probability ``dp.sample_rate`` (Poisson sampling, Abadi et al. 2016), whatever
    the hospital's size. The accountant, the calibration and ``check_round`` use this same
    rate and step count; Opacus' own loader would sample at 1 / ceil(N / ceil(N / steps)) and
    take ``int(1 / rate)`` steps, which differ from them for most N (issue 15)."""
    x, y = dataset.tensors
    return SecurePoissonLoader(x, y, rate=dp.sample_rate, steps=dp.steps_per_epoch, rng=rng)


class _TorchBernoulli:
    """Poisson sampling from torch's default RNG (``secure_mode=False``: fast, predictable)."""

    def poisson_mask(self, n: int, rate: float) -> np.ndarray:
        return np.flatnonzero((torch.rand(n) < rate).numpy())


def _log_insecure_rng_once() -> None:
    global _insecure_rng_logged
    if not _insecure_rng_logged:
        _insecure_rng_logged = True
        log.warning(
            "DP-SGD noise comes from torch's default RNG (secure_mode off); "
            "keep secure_mode on for a production campaign"
        )


def _run_epochs(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable,
    epochs: int,
    device: torch.device,
    anchor: list[torch.Tensor] | None,
    prox_rate: float,
    params: list[nn.Parameter],
) -> int:
    steps = 0
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            logits = module(xb)
            if len(yb):
                loss = nn.functional.binary_cross_entropy_with_logits(logits, yb)
            else:  # Poisson sampling drew an empty batch: the step still adds noise and counts
                loss = logits.sum() * 0.0
            loss.backward()
            optimizer.step()
            if anchor is not None:  # FedProx, data-independent: spends no privacy
                with torch.no_grad():
                    for p, a in zip(params, anchor, strict=False):
                        p.sub_(prox_rate * (p - a.to(p.device)))
            steps += 1
    return steps
