"""The round pipeline's settings (:class:`PeerSettings`): the consortium's rule, protection mode,
clipping and compression, the round's waits and the feature scaling, checked once when built.

Build them from a node's config with :meth:`PeerSettings.from_config` (the schema,
:mod:`node.service.config`, holds every default); ``medmesh demo`` builds its own sections and
calls :meth:`PeerSettings.from_sections`.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.consensus.compression import CompressionConfig
from node.data.scaling import FeatureBounds
from node.learning.training import TrainConfig
from node.protection import check_norm_bound, check_protection
from node.protection.secagg_consistency import MIN_CONTRIBUTORS
from node.service.config import AggregationSection, NodeConfig, RoundsSection, TrainingSection

__all__ = ["PeerSettings"]

_A, _R, _T = AggregationSection, RoundsSection, TrainingSection  # the schema holds every default


@dataclass(frozen=True)
class PeerSettings:
    """The round pipeline's settings; build them from a node's config with :meth:`from_config`."""

    model: str = _T.model
    rule: str = _A.rule
    f: int = _A.f  # Byzantine peers the Krum family and Bulyan must tolerate
    bucket_size: int = (
        _A.bucket_size
    )  # > 1: bucketing before the rule (rules.Bucketed), seeded by the round
    train: TrainConfig = TrainConfig()
    round_timeout: float = (
        _R.round_timeout
    )  # at least this long to wait for blobs, and again for the quorum
    round_timeout_max: float = (
        _R.round_timeout_max
    )  # at most this long (node.peer.deadlines derives the wait between)
    assumed_link_mbit: float = (
        _R.assumed_link_mbit
    )  # link rate assumed for the first wait, until one is measured
    protection: str = (
        _A.protection
    )  # sealed | secagg | ckks (node.protection); the consortium's choice
    compression: CompressionConfig | None = None  # top-k with error feedback, 8-bit values
    clip_norm: float | None = _A.clip_norm  # L2 clip of each update before masking (secagg, ckks)
    norm_bound: bool = (
        _A.norm_bound
    )  # Sun et al. 2019: scaled to at most the median norm, then the rule
    secagg_ring_bits: int = 32
    secagg_frac_bits: int = 16
    min_contributors: int = (
        _A.min_contributors
    )  # fewest committed updates a secagg or ckks sum may hold
    # public per-feature ranges (node.data.scaling); None: no public bounds, federated sums in the clear
    feature_bounds: FeatureBounds | None = None
    # with bounds: "secure" (scale from the bounds, centre from a secure sum) or "bounds" (nothing shared)
    scaling: str = "secure"

    def __post_init__(self) -> None:
        check_protection(self.protection, self.rule)
        if self.norm_bound:
            check_norm_bound(self.protection, self.rule)
        if self.min_contributors < MIN_CONTRIBUTORS:
            raise ValueError(
                f"min_contributors must be at least {MIN_CONTRIBUTORS}, got {self.min_contributors}: "
                f"a sum of two updates reveals each one to the other contributor"
            )
        if self.bucket_size < 1 or (self.bucket_size > 1 and self.rule == "fedavg"):
            raise ValueError(
                f"bucket_size must be >= 1, and 1 with rule fedavg (a mean of bucket means is FedAvg), "
                f"got {self.bucket_size} with {self.rule}"
            )
        if self.scaling not in ("secure", "bounds"):
            raise ValueError(
                f"scaling must be secure or bounds (with feature_bounds), got {self.scaling!r}"
            )
        if (
            self.compression is not None
            and self.compression.quantize
            and self.protection != "sealed"
        ):
            raise ValueError(
                f"8-bit quantization composes with --protection sealed only; {self.protection} "
                f"sums values in its own fixed-point encoding"
            )

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> PeerSettings:
        """Every training, aggregation, round and scaling key of a node's config carried over."""
        from node.service.sources import feature_bounds

        return cls.from_sections(
            cfg.training,
            cfg.aggregation,
            cfg.rounds,
            feature_bounds(cfg.data),
            mode="bounds" if cfg.data.scaling == "bounds" else "secure",
        )

    @classmethod
    def from_sections(
        cls,
        training: TrainingSection,
        aggregation: AggregationSection,
        rounds: RoundsSection,
        bounds: FeatureBounds | None,
        *,
        mode: str = "secure",
    ) -> PeerSettings:
        """:meth:`from_config` for sections built elsewhere (``medmesh demo`` builds its own)."""
        a = aggregation
        compression = (
            CompressionConfig(a.topk, a.quantize) if a.topk is not None or a.quantize else None
        )
        return cls(
            model=training.model,
            rule=a.rule,
            f=a.f,
            bucket_size=a.bucket_size,
            train=TrainConfig.from_section(training),
            round_timeout=rounds.round_timeout,
            round_timeout_max=rounds.round_timeout_max,
            assumed_link_mbit=rounds.assumed_link_mbit,
            protection=a.protection,
            compression=compression,
            clip_norm=a.clip_norm,
            norm_bound=a.norm_bound,
            min_contributors=a.min_contributors,
            feature_bounds=bounds,
            scaling=mode,
        )
