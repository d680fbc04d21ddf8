"""The privacy budget of one hospital, accounted across rounds and persisted across restarts.

DP-SGD (Abadi et al., 2016) with Opacus: per-sample gradients clipped to ``max_grad_norm``,
Gaussian noise of ``noise_multiplier * max_grad_norm``, Poisson sampling at rate ``q``. The
PRV accountant (Gopi et al., 2021; tighter, and the default everywhere: ``[privacy]
accountant``, ``medmesh demo --accountant`` and :class:`DPConfig`) or the Rényi-DP accountant
(Mironov, 2017; ``accountant="rdp"``, see :class:`~node.learning.accounting.SoundRDPAccountant`)
composes every step this hospital has ever taken for the campaign. Its history (and which accountant reads it) is
written to disk atomically *before* an update leaves the node, so a crash or restart can never
reset or under-count the spent budget; the spent epsilon travels with every update and is recorded on chain.

The DP noise always comes from an unseeded source: with ``secure_mode=True`` (the node's
default) a ChaCha20 stream under a fresh key, for both the noise and the Poisson sampling,
with Opacus' floating-point mitigation (:mod:`node.learning.securerng`); with ``secure_mode=False``
torch's default RNG (faster, predictable to whoever recovers its state). DP off is allowed
for baselines only, with a loud warning.

One target epsilon covers the whole campaign: the noise multiplier is calibrated once, for
``rounds x local_epochs x steps_per_epoch`` steps, and a round that would push the spent
epsilon past the target is refused.

**The neighbouring relation is add/remove-one patient.** Opacus' accountants, and so every ε
this module reports, count the privacy loss between a hospital's data set and the same set
with one patient added or removed. That relation only holds if the hospital's row count N is
not published exactly (with N public, an adversary tells the two sets apart from N alone; the
relation that would remain is replace-one, about twice the ε). So a hospital never publishes
N: with ``count_noise`` set (the node's and the demo's default), it releases once per campaign

    Ñ = clamp(round(N + count_noise · Z), 1, ceiling),   Z ~ N(0, 1) from the secure RNG,

the Gaussian mechanism at sensitivity 1 (rounding and clamping are post-processing, so the
continuous Gaussian's privacy curve is exact). The release is charged to the same accountant
as one more event ``(count_noise, sample rate 1, 1 step)``, the calibration leaves room for it,
and it is persisted with the ledger, so a restart reuses Ñ instead of drawing again (fresh
draws would average down to N). Everything a hospital publishes or weighs uses Ñ: the sample
count it commits, the FedAvg weights and credits derived from it, the DP-SGD batch scale
(:func:`node.learning.training.train_local`) and the standardizer's masked count (:mod:`node.peer.setupsum`).
With ``count_noise=None`` (for library callers that never publish a count) N is returned
exactly and nothing is charged: the caller must then keep N private itself.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypedDict

import torch
from opacus.accountants import IAccountant

from node.errors import MedmeshError
from node.learning.accounting import (
    Event,
    SoundRDPAccountant,
    calibrate_noise,
    cohort_ceiling,
    epsilon_of,
    make_accountant,
    noisy_count,
)
from node.service.config import ACCOUNTANTS, PrivacySection
from node.service.fsutil import atomic_write_json

__all__ = [
    "DPConfig",
    "PrivacyLedger",
    "BudgetExhausted",
    "ACCOUNTANTS",
    "SoundRDPAccountant",
    "make_accountant",
    "calibrate_noise",
    "noisy_count",
    "cohort_ceiling",
    "COUNT_NOISE",
]

#: Relative slack over the target epsilon that a round may reach (calibration is approximate).
CAP_SLACK = 1e-3
#: The default noise on the released row count (rows, sensitivity 1; ``[privacy] count_noise``):
#: about 8% more DP-SGD noise on the demo's schedule for a count within ±10 rows of N (one sd).
COUNT_NOISE = PrivacySection.count_noise


class ReleasedCount(TypedDict):
    """The row count a campaign released (:meth:`PrivacyLedger.release_count`), as persisted:
    ``rows`` is the N it was drawn for (None when adopted back from the chain)."""

    released: int
    rows: int | None


log = logging.getLogger("medmesh.privacy")


class BudgetExhausted(MedmeshError, RuntimeError):
    """Training one more round would spend more epsilon than the campaign allows."""


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD settings for a whole training campaign.

    ``sample_rate`` is ``1 / steps_per_epoch`` (Poisson sampling), and each local epoch is
    exactly ``steps_per_epoch`` noisy steps, whatever the hospital's size: the DP loader
    (:func:`node.learning.training.private_loader`) samples at this rate, the accountant steps at it,
    and the calibration and :meth:`PrivacyLedger.check_round` assume it. Give either a
    ``target_epsilon`` (the noise multiplier is calibrated for ``rounds`` rounds) or a
    ``noise_multiplier``; ``target_epsilon`` stays the cap a round may not exceed.
    ``accountant`` is ``"prv"`` or ``"rdp"``. The defaults are the node's ``[privacy]`` section
    (:class:`node.service.config.PrivacySection`): one full-batch step per round under PRV.
    ``count_noise``: the standard deviation, in rows, of the Gaussian noise on the row count the
    hospital releases once (:meth:`PrivacyLedger.release_count`); ``None`` releases nothing and
    charges nothing (N must then stay private: the accountant's relation is add/remove-one).
    """

    target_epsilon: float = PrivacySection.epsilon
    delta: float = PrivacySection.delta
    max_grad_norm: float = PrivacySection.max_grad_norm
    steps_per_epoch: int = PrivacySection.steps_per_epoch
    local_epochs: int = PrivacySection.local_epochs
    rounds: int = PrivacySection.rounds
    noise_multiplier: float | None = None
    enabled: bool = True
    accountant: str = PrivacySection.accountant
    secure_mode: bool = PrivacySection.secure_rng
    count_noise: float | None = PrivacySection.count_noise

    @classmethod
    def from_section(cls, p: PrivacySection) -> DPConfig:
        """The DP-SGD settings of a ``[privacy]`` section (the node's, or one the demo builds)."""
        return cls(
            target_epsilon=p.epsilon,
            delta=p.delta,
            max_grad_norm=p.max_grad_norm,
            steps_per_epoch=p.steps_per_epoch,
            local_epochs=p.local_epochs,
            rounds=p.rounds,
            accountant=p.accountant,
            secure_mode=p.secure_rng,
            count_noise=p.count_noise,
        )

    def __post_init__(self) -> None:
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(
                f"accountant must be one of {', '.join(ACCOUNTANTS)}, got {self.accountant!r}"
            )
        if self.noise_multiplier is not None and not self.noise_multiplier > 0:
            raise ValueError(f"noise_multiplier must be > 0, got {self.noise_multiplier}")
        if self.count_noise is not None and not self.count_noise > 0:
            raise ValueError(
                f"count_noise must be > 0 (or None: the row count is not released), got {self.count_noise}"
            )
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

    @property
    def count_events(self) -> list[Event]:
        """The accountant's events of the row-count release: one Gaussian at sample rate 1."""
        return (
            [(float(self.count_noise), 1.0, 1)]
            if self.enabled and self.count_noise is not None
            else []
        )

    def calibrated(self) -> DPConfig:
        """This config with the noise multiplier that meets the target over the campaign
        (the row-count release included)."""
        if not self.enabled or self.noise_multiplier is not None:
            return self
        sigma = calibrate_noise(
            self.accountant,
            self.target_epsilon,
            self.delta,
            self.sample_rate,
            self.rounds * self.steps_per_round,
            fixed=self.count_events,
        )
        return replace(self, noise_multiplier=sigma)


class PrivacyLedger:
    """A hospital's spent privacy budget: an accountant (RDP or PRV) plus its file on disk.

    ``path=None`` keeps the ledger in memory only (tests, baselines); a peer always gives one.
    ``warn_if_off=False`` is for callers that disable DP on purpose (non-private baselines,
    benchmarks); a peer never passes it.
    A stored ledger keeps its stored settings (target, delta, accountant, noise): a restart
    with a different config cannot re-open a spent budget. It also keeps the released row count
    (:meth:`release_count`): a restart never draws, nor charges, it again.
    """

    def __init__(
        self, config: DPConfig, path: Path | None = None, *, warn_if_off: bool = True
    ) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.exists():
            self._load(self.path, config)
        else:
            self.config = config.calibrated()
            self._accountant = make_accountant(self.config.accountant)
            self._count: ReleasedCount | None = None
        if not self.config.enabled and warn_if_off:
            warnings.warn(
                "differential privacy is OFF: updates leak information about patients",
                stacklevel=2,
            )

    # -- persistence -------------------------------------------------------------------
    def _load(self, path: Path, config: DPConfig) -> None:
        count: ReleasedCount | None = None
        try:
            state = json.loads(path.read_text())
            stored = DPConfig(**state["config"])
            history = [tuple(h) for h in state["history"]]
            stored_count = state.get("count")
            if stored_count is not None:
                rows = stored_count["rows"]
                count = {
                    "released": int(stored_count["released"]),
                    "rows": None if rows is None else int(rows),
                }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"privacy ledger {path} is unreadable ({exc}); refusing to "
                "start with an unknown spent budget"
            ) from None
        wanted = config.calibrated() if config.noise_multiplier is None else config
        if (stored.target_epsilon, stored.delta, stored.accountant) != (
            wanted.target_epsilon,
            wanted.delta,
            wanted.accountant,
        ):
            log.warning(
                "privacy ledger %s keeps its stored settings (epsilon=%g, delta=%g, accountant=%s)",
                path,
                stored.target_epsilon,
                stored.delta,
                stored.accountant,
            )
        self.config = replace(
            stored, secure_mode=config.secure_mode
        )  # how noise is drawn may change
        self._accountant = make_accountant(stored.accountant)
        self._accountant.history = history
        self._count = count

    def save(self) -> None:
        """Write the ledger atomically; a no-op for an in-memory ledger."""
        if self.path is None:
            return
        state = {
            "config": asdict(self.config),
            "history": [list(h) for h in self.history],
            "epsilon": self.spent(),
            "count": self._count,
        }
        atomic_write_json(self.path, state, mode=0o600)

    # -- accounting --------------------------------------------------------------------
    @property
    def history(self) -> list[tuple[float, float, int]]:
        return list(self._accountant.history)

    def spent(self) -> float:
        """Epsilon spent so far at the campaign's delta (0.0 before any step or with DP off)."""
        if not self.config.enabled or not self._accountant.history:
            return 0.0
        history = tuple(tuple(h) for h in self._accountant.history)
        return epsilon_of(self.config.accountant, history, self.config.delta)

    def projected(self, steps: int) -> float:
        """Epsilon after ``steps`` more DP-SGD steps at the campaign's noise and sample rate."""
        if not self.config.enabled:
            return 0.0
        pending = (
            self.config.count_events if self._count is None else []
        )  # the count, if not yet released
        history = (
            self.history
            + pending
            + [(self.config.noise_multiplier, self.config.sample_rate, steps)]
        )
        return epsilon_of(
            self.config.accountant, tuple(tuple(h) for h in history), self.config.delta
        )

    @property
    def released_count(self) -> int | None:
        """The row count Ñ this hospital released (None before :meth:`release_count`)."""
        return None if self._count is None else self._count["released"]

    def release_count(self, rows: int, ceiling: int | None = None) -> int:
        """The row count this hospital may publish and weigh: Ñ (see the module doc), drawn on
        the first call of the campaign, charged to the accountant and saved before it is
        returned; every later call, in this process or after a restart, returns the same Ñ
        and charges nothing. ``ceiling``: the cohort declared at admission (Ñ never exceeds
        it). Exactly ``rows`` with DP off or ``count_noise=None`` (nothing released, nothing
        charged)."""
        if rows < 1:
            raise ValueError(f"a row count must be >= 1, got {rows}")
        if self._count is not None:
            if self._count["rows"] is not None and rows != self._count["rows"]:
                log.warning(
                    "the training data has %d rows, but this campaign's count was released for %d; "
                    "keeping the released count %d (a new draw would leak N)",
                    rows,
                    self._count["rows"],
                    self._count["released"],
                )
            return self._count["released"]
        noise = self.config.count_noise
        if not self.config.enabled or noise is None:  # nothing released (no count_events)
            return rows
        # the count's noise comes from where the DP-SGD noise comes from (module doc): the secure
        # RNG, or with secure_mode off torch's default RNG, so a seeded benchmark repeats itself
        z = None if self.config.secure_mode else float(torch.randn(()).item())
        released = noisy_count(rows, float(noise), ceiling, z=z)
        self._accountant.history = self.history + self.config.count_events
        self._count = {"released": released, "rows": rows}
        self.save()
        return released

    def adopt_released_count(self, released: int) -> None:
        """Take back a count this campaign already published (read off the chain after the ledger
        file was lost, :mod:`node.service.privacyfloor`): charged once, first, and never drawn
        again. The caller saves the ledger."""
        if self._count is not None:
            raise ValueError(
                f"this ledger already holds the released count {self._count['released']}"
            )
        if released < 1:
            raise ValueError(f"a released count must be >= 1, got {released}")
        self._accountant.history = self.config.count_events + self.history
        self._count = {"released": int(released), "rows": None}

    def cap(self) -> float:
        """The most epsilon this campaign may spend: the target, with the 10^-3 relative slack
        that calibrating the noise to it leaves (0.0 with DP off). It is the budget the peer
        declares on chain, where every committed epsilon is checked against it."""
        return self.config.target_epsilon * (1 + CAP_SLACK) if self.config.enabled else 0.0

    def check_round(self) -> None:
        """Raise :class:`BudgetExhausted` if one more round would exceed the target."""
        after = self.projected(self.config.steps_per_round)
        if self.config.enabled and after > self.cap():
            raise BudgetExhausted(
                f"one more round would spend epsilon {after:.3f} > target "
                f"{self.config.target_epsilon:g} (spent {self.spent():.3f}); refusing to train"
            )

    @property
    def accountant(self) -> IAccountant:
        """The live accountant; the DP optimizer steps it (see :mod:`node.learning.training`)."""
        return self._accountant
