"""``medmesh demo``'s options, apart from the demo itself: the command line reads their defaults
without importing the campaign's machinery (evaluation baselines, datasets, the embedded chain),
so ``medmesh node run`` starts without it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from node.protection import check_committee
from node.service.config import (
    AggregationSection,
    DataSection,
    PrivacySection,
    RoundsSection,
    TrainingSection,
)

if TYPE_CHECKING:
    from node.learning.privacy import DPConfig
    from node.peer.pipeline import PeerSettings

__all__ = ["DEMO_DATA", "DemoConfig"]

DEMO_DATA = ("breast-cancer", "synthetic-imaging")

_A, _D, _P, _R, _T = AggregationSection, DataSection, PrivacySection, RoundsSection, TrainingSection


@dataclass(frozen=True)
class DemoConfig:
    """``medmesh demo``'s options. Every key a node's config also has takes its default from the
    node's schema (:mod:`node.service.config`), and :meth:`peer_settings` / :meth:`dp` build the
    pipeline's settings through the same converters as a node process."""

    rounds: int = _P.rounds
    hospitals: int = _D.sites
    epsilon: float = _P.epsilon
    delta: float = _P.delta
    rule: str = _A.rule
    bucket_size: int = (
        _A.bucket_size
    )  # > 1: bucketing before the rule (node.consensus.rules.Bucketed)
    protection: str = _A.protection  # sealed | secagg | ckks (node.protection)
    topk: float | None = _A.topk  # top-k sparsification with error feedback (fraction kept)
    quantize: bool = _A.quantize  # 8-bit quantization of the sent values (sealed only)
    clip_norm: float | None = _A.clip_norm  # L2 clip of each update before masking or encrypting
    norm_bound: bool = (
        _A.norm_bound
    )  # Sun et al. 2019: scaled to at most the median norm, then the rule
    model: str = _T.model
    # breast-cancer features (docs/standardizer.md): "secure" scales by the published ranges and centres
    # by a secure sum (only the consortium total is revealed); "bounds" shares nothing; "federated"
    # takes medians of the sites' sums, shared in the clear
    scaling: str = "secure"
    data: str = (
        _D.source
    )  # or "synthetic-imaging": SYNTHETIC 32 x 32 lesions (cnn, imaging-features)
    seed: int = _D.seed  # the split's seed and every hospital's training seed
    rpc: str | None = None
    chain_state: Path | None = None
    json_path: Path | None = None
    state_dir: Path | None = None
    model_out: Path | None = None  # the final global parameters, as .npy (for `audit verify`)
    progress: bool = True
    local_epochs: int = _P.local_epochs
    steps_per_epoch: int = _P.steps_per_epoch
    max_grad_norm: float = _P.max_grad_norm
    learning_rate: float = _T.learning_rate
    round_timeout: float = _R.round_timeout
    accountant: str = _P.accountant
    count_noise: float = (
        _P.count_noise
    )  # std (rows) of the noise on each hospital's released row count
    commit_window: int = 120  # seconds after opening in which updates may be committed
    attest_window: int = 120  # seconds after the commit deadline in which peers attest
    committee: int = (
        0  # attesters the beacon draws per round (0: every hospital; docs/committee.md)
    )

    def __post_init__(self) -> None:
        from node.consensus.rules import rule_class

        fewest = rule_class(self.rule).min_updates()
        if self.hospitals < fewest:
            raise ValueError(
                f"rule {self.rule} needs at least {fewest} hospitals "
                f"(got --hospitals {self.hospitals})"
            )
        self.peer_settings()  # validates the protection mode against the rule and the compression
        if self.rounds < 1:
            raise ValueError("--rounds must be at least 1")
        if self.committee < 0:
            raise ValueError(
                f"--committee must be 0 (every hospital) or more, got {self.committee}"
            )
        check_committee(self.protection, self.committee, self.hospitals)
        if self.data not in DEMO_DATA:
            raise ValueError(
                f"unknown demo data {self.data!r}; choose one of {', '.join(DEMO_DATA)}"
            )
        if self.scaling not in ("secure", "bounds", "federated"):
            raise ValueError(
                f"unknown scaling {self.scaling!r}; choose secure, bounds or federated"
            )

    def sections(self) -> tuple[TrainingSection, AggregationSection, RoundsSection, PrivacySection]:
        """This demo as the node's config sections (the keys it does not set keep their defaults)."""
        return (
            TrainingSection(model=self.model, learning_rate=self.learning_rate, seed=self.seed),
            AggregationSection(
                rule=self.rule,
                bucket_size=self.bucket_size,
                protection=self.protection,
                topk=self.topk,
                quantize=self.quantize,
                clip_norm=self.clip_norm,
                norm_bound=self.norm_bound,
            ),
            RoundsSection(round_timeout=self.round_timeout),
            PrivacySection(
                epsilon=self.epsilon,
                delta=self.delta,
                accountant=self.accountant,
                max_grad_norm=self.max_grad_norm,
                steps_per_epoch=self.steps_per_epoch,
                local_epochs=self.local_epochs,
                rounds=self.rounds,
                count_noise=self.count_noise,
            ),
        )

    def peer_settings(self) -> PeerSettings:
        from node.data.scaling import BREAST_CANCER_BOUNDS
        from node.peer.pipeline import PeerSettings

        bounds = (
            BREAST_CANCER_BOUNDS
            if self.scaling != "federated" and self.data == "breast-cancer"
            else None
        )
        training, aggregation, rounds, _ = self.sections()
        return PeerSettings.from_sections(
            training,
            aggregation,
            rounds,
            bounds,
            mode="bounds" if self.scaling == "bounds" else "secure",
        )

    def dp(self) -> DPConfig:
        from node.learning.privacy import DPConfig

        return DPConfig.from_section(self.sections()[3])
