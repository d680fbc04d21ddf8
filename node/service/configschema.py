"""The schema of a hospital node's configuration: its sections, their keys, types and defaults.

Each ``[section]`` of the TOML file is one frozen dataclass below, and :class:`NodeConfig` holds
them all. This is the one place a key's default is written: the library settings
(:class:`node.learning.privacy.DPConfig`, :class:`node.learning.training.TrainConfig`), the
round pipeline's :class:`node.peer.pipeline.PeerSettings`, ``medmesh demo``'s settings and the
incentive simulator's scenario take theirs from these sections. A key's trailing ``# comment``
is its note in ``medmesh node init``'s template. Reading a file is :mod:`node.service.config`;
the checks across keys are :mod:`node.service.configcheck`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from node.consensus.rules import DEFAULT_RULE
from node.errors import MedmeshError
from node.protection import MODE_CODES
from node.protection.secagg_consistency import MIN_CONTRIBUTORS

__all__ = [
    "ConfigError",
    "NodeConfig",
    "NodeSection",
    "ChainSection",
    "DataSection",
    "TrainingSection",
    "PrivacySection",
    "AggregationSection",
    "RoundsSection",
    "GossipSection",
    "MonitoringSection",
    "ACCOUNTANTS",
    "BUILTIN_SOURCES",
    "DATA_SOURCES",
    "PROTECTION_MODES",
    "REQUIRED_SECTIONS",
    "SCALINGS",
    "SECTIONS",
    "WHEN_DONE",
]

#: Protection modes a node accepts in ``[aggregation].protection``, with the byte recorded
#: on chain (defined once, in :mod:`node.protection`).
PROTECTION_MODES = MODE_CODES

#: ``[data].source``: built-in demo splits, or a loader from :mod:`node.data.loaders` over ``path``.
DATA_SOURCES = ("breast-cancer", "synthetic-imaging", "table", "image-folder", "npz", "manifest")
BUILTIN_SOURCES = ("breast-cancer", "synthetic-imaging")
#: ``[rounds].when_done``: after the budget's planned rounds, exit (0) or stay as a non-training member.
WHEN_DONE = ("stop", "standby")
#: ``[data].scaling``: public bounds (nothing shared), federated sums (in the clear), or auto.
SCALINGS = ("auto", "secure", "bounds", "federated")


class ConfigError(MedmeshError, ValueError):
    """A config that cannot run; the message is one line naming the key and the problem."""


@dataclass(frozen=True)
class NodeSection:
    identity: Path  # key file written by `medmesh node init` (mode 0600)
    state_dir: Path  # model, round and privacy ledger survive restarts here
    listen: str = "/ip4/127.0.0.1/tcp/0"  # libp2p listen multiaddr (TCP)
    bootstrap: tuple[str, ...] = ()  # /ip4/.../tcp/.../p2p/12D3KooW... of peers to dial


@dataclass(frozen=True)
class ChainSection:
    rpc: str  # JSON-RPC URL of the consortium chain
    deployment: Path  # contract addresses (`medmesh demo --deployment-out`, deploy())


@dataclass(frozen=True)
class DataSection:
    source: str = (
        "breast-cancer"  # breast-cancer | synthetic-imaging | table | image-folder | npz | manifest
    )
    path: Path | None = None  # for table / image-folder / npz / manifest
    label: str = "label"  # label column (table, manifest)
    positive: tuple[str, ...] = ()  # label values that mean "positive" when labels are not 0/1
    site: int = 0  # built-in splits: which hospital of the split this node is
    sites: int = 4  # built-in splits: hospitals in the split
    seed: int = 0  # built-in splits: the split's seed (same on every node)
    cohort: int = 0  # public ceiling on the patients, declared on chain at registration
    # (0: the data's row count rounded up past the next hundred)
    scaling: str = "auto"  # auto | secure | bounds | federated (docs/standardizer.md)
    bounds: Path | None = None  # public per-feature ranges, "low,high" per line (secure, bounds)


@dataclass(frozen=True)
class TrainingSection:
    model: str = "logreg"  # model architecture (logreg, mlp, cnn, imaging-features)
    learning_rate: float = 2.0  # local SGD learning rate
    seed: int = 0  # training seed (sampling and DP noise use the secure RNG)
    device: str = "cpu"  # auto | cpu | cuda | cuda:N
    proximal_mu: float = 0.0  # FedProx (Li et al. 2020): 0 is plain local SGD
    threads: int = 1  # torch threads per node process


#: the privacy accountants node.learning.privacy offers (named here, in the schema, so that node.learning.privacy can
#: take its defaults from this module without an import cycle)
ACCOUNTANTS = ("rdp", "prv")


@dataclass(frozen=True)
class PrivacySection:
    # One full-batch step per round (sample rate 1) suits hospitals of ~100 patients (chosen by
    # scripts/sweep_dp_schedule.py, docs/results.md); PRV (Gopi et al. 2021) is tighter than RDP
    # for the same guarantee: about 7% less noise here.
    epsilon: float = 1.0  # target for the whole campaign
    delta: float = 1e-5  # delta of the (epsilon, delta) guarantee
    accountant: str = "prv"  # prv | rdp
    max_grad_norm: float = 1.0  # per-sample gradient clip (DP-SGD)
    steps_per_epoch: int = 1  # DP-SGD steps per local epoch (sample rate 1/this)
    local_epochs: int = 1  # local epochs per round
    rounds: int = 5  # campaign length the noise is calibrated for
    secure_rng: bool = True  # DP noise and sampling from ChaCha20 (off: torch's RNG, faster)
    count_noise: float = (
        10.0  # std (rows) of the noise on the row count released once (node.learning.privacy)
    )


@dataclass(frozen=True)
class AggregationSection:
    rule: str = (
        DEFAULT_RULE  # robust aggregation rule (geometric-median, median, trimmed-mean, krum, ...)
    )
    f: int = 1  # Byzantine members the Krum family and Bulyan tolerate
    bucket_size: int = 1  # > 1: bucketing before the rule, seeded by the round (1: off)
    protection: str = "sealed"  # sealed | secagg | ckks; secagg and ckks need rule = "fedavg"
    topk: float | None = None  # top-k sparsification with error feedback (fraction kept, e.g. 0.1)
    quantize: bool = False  # 8-bit values (sealed only)
    clip_norm: float | None = (
        None  # L2 clip of each update before it is sealed, masked or encrypted
    )
    # Sun et al. 2019 before the rule: each update scaled to at most the median norm (sealed; ckks
    # with krum / multi-krum, over the decrypted norms and public factors on the ciphertexts)
    norm_bound: bool = False
    min_contributors: int = (
        MIN_CONTRIBUTORS  # fewest committed updates a secagg or ckks sum may hold (>= 3)
    )


@dataclass(frozen=True)
class RoundsSection:
    round_timeout: float = 60.0  # wait at least this for blobs, then again for the quorum
    round_timeout_max: float = (
        600.0  # ... and at most this; in between, from measured train and link times
    )
    assumed_link_mbit: float = (
        10.0  # link rate assumed for the first round's wait, until one is measured
    )
    open_fallback: float = 5.0  # a peer ranked k after the preferred opener waits k times this
    attest_grace: float = 3.0  # after finalization, wait this long for late attestations
    poll_interval: float = 0.5  # seconds between chain polls while idle
    join_margin: float = 2.0  # do not join a round whose commit deadline is closer than this
    setup_timeout: float = 120.0  # wait for every member's feature sums at first start
    stop_after_round: int = 0  # exit once this chain round has ended (0: run until stopped)
    when_done: str = "stop"  # once the budget funds no more rounds: "stop" (exit 0) or "standby"


@dataclass(frozen=True)
class GossipSection:
    max_blob_bytes: int = 64 * 2**20  # largest blob (sealed update) accepted from a peer
    max_control_bytes: int = 64 * 2**10  # largest control (pubsub) message accepted
    reconnect_initial: float = 0.5  # first retry delay; doubles per failure
    reconnect_max: float = 30.0
    dial_timeout: float = 5.0  # seconds to wait for one dial
    send_attempts: int = 3  # tries per blob on transfer failures (backoff from reconnect_initial)
    parallel_sends: int = 4  # blob transfers in flight at once (a rate limit on fan-out)
    max_connections_per_ip: int = (
        32  # inbound connections held at once from one IP; more are closed
    )


@dataclass(frozen=True)
class MonitoringSection:
    enabled: bool = True  # /metrics (Prometheus) and the status page, on one port
    host: str = "127.0.0.1"  # an IP literal; anything but loopback exposes the node's state
    port: int = 0  # 0: any free port (logged in the `monitoring` event)
    auc_drop: float = 0.05  # alert: validation AUC falls this much below the last or best round
    bias_gap: float = 0.2  # alert: the sensitivity gap between groups widens this much
    norm_z: float = 3.5  # alert: robust z-score of an update's norm above this
    min_cosine: float = -0.5  # alert: an update's cosine to the aggregate step below this (DP noise
    # leaves honest updates near 0; a reversed one is near -1)
    drift_smd: float = 0.5  # alert: a feature's standardized mean difference to the consortium's
    # pooled mean moves this much from its first round (Austin 2009)
    auc_alpha: float = 0.05  # alert: accuracy drops are DeLong-significant at this campaign-wide
    # false-alarm rate (Bonferroni over every pair of rounds)
    alerts_on_chain: bool = False  # record each alert as a signed, hashed RoundLedger.recordAlert


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    node: NodeSection
    chain: ChainSection
    data: DataSection = field(default_factory=DataSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    privacy: PrivacySection = field(default_factory=PrivacySection)
    aggregation: AggregationSection = field(default_factory=AggregationSection)
    rounds: RoundsSection = field(default_factory=RoundsSection)
    gossip: GossipSection = field(default_factory=GossipSection)
    monitoring: MonitoringSection = field(default_factory=MonitoringSection)

    @property
    def listen_ip_port(self) -> tuple[str, int]:
        parts = self.node.listen.strip("/").split("/")
        return parts[1], int(parts[3])


SECTIONS = {
    "node": NodeSection,
    "chain": ChainSection,
    "data": DataSection,
    "training": TrainingSection,
    "privacy": PrivacySection,
    "aggregation": AggregationSection,
    "rounds": RoundsSection,
    "gossip": GossipSection,
    "monitoring": MonitoringSection,
}
REQUIRED_SECTIONS = ("node", "chain")
