"""The privacy budget of one hospital, accounted across rounds and persisted across restarts.

DP-SGD (Abadi et al., 2016) with Opacus: per-sample gradients clipped to ``max_grad_norm``,
Gaussian noise of ``noise_multiplier * max_grad_norm``, Poisson sampling at rate ``q``. The
Rényi-DP accountant (Mironov, 2017) composes every step this hospital has ever taken for the
campaign; its history is written to disk atomically *before* an update leaves the node, so a
crash or restart can never reset or under-count the spent budget.

One target epsilon covers the whole campaign: the noise multiplier is calibrated once, for
``rounds x local_epochs x steps_per_epoch`` steps, and a round that would push the spent
epsilon past the target is refused.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from node.fsutil import atomic_write_json

__all__ = ["DPConfig", "PrivacyLedger", "BudgetExhausted"]

log = logging.getLogger("medmesh.privacy")


class BudgetExhausted(RuntimeError):
    """Training one more round would spend more epsilon than the campaign allows."""


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD settings for a whole training campaign.

    ``sample_rate`` is ``1 / steps_per_epoch`` (Poisson sampling), so each local epoch is
    exactly ``steps_per_epoch`` noisy steps whatever the hospital's size.
    """

    target_epsilon: float = 1.0
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    steps_per_epoch: int = 4
    local_epochs: int = 3
    rounds: int = 5
    noise_multiplier: float | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.enabled:
            if not self.target_epsilon > 0:
                raise ValueError(f"target_epsilon must be > 0, got {self.target_epsilon}")
            if not 0 < self.delta < 1:
                raise ValueError(f"delta must be in (0, 1), got {self.delta}")
        if self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.steps_per_epoch < 1 or self.local_epochs < 1 or self.rounds < 1:
            raise ValueError("steps_per_epoch, local_epochs and rounds must be >= 1")

    @property
    def sample_rate(self) -> float:
        return 1.0 / self.steps_per_epoch

    @property
    def steps_per_round(self) -> int:
        return self.steps_per_epoch * self.local_epochs

    def calibrated(self) -> DPConfig:
        """This config with the noise multiplier that meets the target over the campaign."""
        if not self.enabled or self.noise_multiplier is not None:
            return self
        sigma = get_noise_multiplier(
            target_epsilon=self.target_epsilon,
            target_delta=self.delta,
            sample_rate=self.sample_rate,
            steps=self.rounds * self.steps_per_round,
            accountant="rdp",
            epsilon_tolerance=0.005,
        )
        return replace(self, noise_multiplier=float(sigma))


class PrivacyLedger:
    """A hospital's spent privacy budget: an RDP accountant plus its file on disk.

    ``path=None`` keeps the ledger in memory only (tests, baselines); a peer always gives one.
    """

    def __init__(self, config: DPConfig, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._accountant = RDPAccountant()
        if self.path is not None and self.path.exists():
            self._load(config)
        else:
            self.config = config.calibrated()
        if not self.config.enabled:
            warnings.warn(
                "differential privacy is OFF: updates leak information about patients",
                stacklevel=2,
            )

    # -- persistence -------------------------------------------------------------------
    def _load(self, config: DPConfig) -> None:
        try:
            state = json.loads(self.path.read_text())
            stored = DPConfig(**state["config"])
            history = [tuple(h) for h in state["history"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"privacy ledger {self.path} is unreadable ({exc}); refusing to "
                             "start with an unknown spent budget") from None
        wanted = config.calibrated() if config.noise_multiplier is None else config
        if (stored.target_epsilon, stored.delta) != (wanted.target_epsilon, wanted.delta):
            log.warning("privacy ledger %s keeps its stored target (epsilon=%g, delta=%g)",
                        self.path, stored.target_epsilon, stored.delta)
        self.config = stored
        self._accountant.history = history

    def save(self) -> None:
        """Write the ledger atomically; a no-op for an in-memory ledger."""
        if self.path is None:
            return
        state = {"config": asdict(self.config), "history": [list(h) for h in self.history],
                 "epsilon": self.spent()}
        atomic_write_json(self.path, state, mode=0o600)

    # -- accounting --------------------------------------------------------------------
    @property
    def history(self) -> list[tuple[float, float, int]]:
        return list(self._accountant.history)

    def spent(self) -> float:
        """Epsilon spent so far at the campaign's delta (0.0 before any step or with DP off)."""
        if not self.config.enabled or not self._accountant.history:
            return 0.0
        return float(self._accountant.get_epsilon(delta=self.config.delta))

    def projected(self, steps: int) -> float:
        """Epsilon after ``steps`` more DP-SGD steps at the campaign's noise and sample rate."""
        if not self.config.enabled:
            return 0.0
        probe = RDPAccountant()
        probe.history = self.history + [(self.config.noise_multiplier, self.config.sample_rate, steps)]
        return float(probe.get_epsilon(delta=self.config.delta))

    def check_round(self) -> None:
        """Raise :class:`BudgetExhausted` if one more round would exceed the target."""
        after = self.projected(self.config.steps_per_round)
        if self.config.enabled and after > self.config.target_epsilon * (1 + 1e-3):
            raise BudgetExhausted(
                f"one more round would spend epsilon {after:.3f} > target "
                f"{self.config.target_epsilon:g} (spent {self.spent():.3f}); refusing to train"
            )

    @property
    def accountant(self) -> RDPAccountant:
        """The live accountant; the DP optimizer steps it (see :mod:`node.training`)."""
        return self._accountant
