"""A hospital node's configuration: one TOML file, read with :mod:`tomllib`, checked at start.

Every problem raises :class:`ConfigError` with one line naming the file, the key and the
problem (``node.toml: [privacy].epsilon: must be > 0, got -1``). Relative paths are resolved
against the config file's folder. ``medmesh node init`` writes a commented template
(:func:`template`); the keys, their types and defaults are the dataclasses below.

This is the one schema: every default of a key is written here once. The library settings
(:class:`node.learning.privacy.DPConfig`, :class:`node.learning.training.TrainConfig`), the round pipeline's
:class:`node.peer.pipeline.PeerSettings` (``PeerSettings.from_config``), ``medmesh demo``'s
:class:`node.sim.demo.DemoConfig` and the incentive simulator's scenario take their defaults from
these sections, so a key left out resolves to the same value wherever it is read.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from node.consensus.rules import DEFAULT_RULE
from node.errors import MedmeshError
from node.protection import MODE_CODES, check_norm_bound, check_protection
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
    "PROTECTION_MODES",
    "DATA_SOURCES",
    "load_config",
    "template",
]

#: Protection modes a node accepts in ``[aggregation].protection``, with the byte recorded
#: on chain (defined once, in :mod:`node.protection`).
PROTECTION_MODES = MODE_CODES

#: ``[data].source``: built-in demo splits, or a loader from :mod:`node.data.loaders` over ``path``.
DATA_SOURCES = ("breast-cancer", "synthetic-imaging", "table", "image-folder", "npz", "manifest")
_BUILTIN_SOURCES = ("breast-cancer", "synthetic-imaging")
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


_SECTIONS = {
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
_REQUIRED_SECTIONS = ("node", "chain")


def load_config(path: str | Path) -> NodeConfig:
    """Read and check ``path``; raise :class:`ConfigError` (one line) on the first problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> NodeConfig:
    where = path.name
    for name in raw:
        if name not in _SECTIONS:
            raise ConfigError(
                f"{where}: [{name}]: unknown section; expected one of {', '.join(_SECTIONS)}"
            )
    for name in _REQUIRED_SECTIONS:
        if name not in raw:
            raise ConfigError(f"{where}: [{name}]: missing section")
    base = path.parent
    sections = {
        name: _section(where, name, cls, raw.get(name, {}), base) for name, cls in _SECTIONS.items()
    }
    cfg = NodeConfig(path=path, **sections)
    _check(where, cfg)
    return cfg


def _section(where: str, name: str, cls: type, values: Any, base: Path) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [{name}]: must be a table")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{where}: [{name}].{key}: unknown key; expected one of {', '.join(known)}"
            )
        annotation = known[key].type
        if not isinstance(annotation, str):  # this module's annotations are postponed: text
            raise TypeError(f"[{name}].{key}: field type {annotation!r} is not annotation text")
        kwargs[key] = _typed(f"{where}: [{name}].{key}", annotation, value, base)
    for key, f in known.items():
        if key not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{where}: [{name}].{key}: missing (required)")
    return cls(**kwargs)


def _typed(what: str, annotation: str, value: Any, base: Path) -> Any:
    """``value`` converted to the field's annotated type, or a ConfigError naming ``what``."""
    kind = annotation.replace(" | None", "")
    if kind == "Path":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{what}: must be a non-empty path string, got {value!r}")
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{what}: must be a string, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{what}: must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{what}: must be an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{what}: must be a number, got {value!r}")
        return float(value)
    if kind == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{what}: must be a list of strings, got {value!r}")
        return tuple(value)
    raise AssertionError(f"no converter for {annotation}")  # a field type this module forgot


def _check(where: str, cfg: NodeConfig) -> None:
    """Checks across keys and against the known names (rules, models, accountants, modes)."""
    from node.consensus.rules import RULES
    from node.learning.modelnames import MODEL_NAMES

    def bad(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: [{key.split('.')[0]}].{key.split('.', 1)[1]}: {problem}")

    n = cfg.node
    parts = n.listen.strip("/").split("/")
    if (
        len(parts) != 4
        or parts[0] != "ip4"
        or parts[2] != "tcp"
        or not parts[3].isdigit()
        or not 0 <= int(parts[3]) <= 65535
    ):
        raise bad("node.listen", f"must look like /ip4/127.0.0.1/tcp/4001, got {n.listen!r}")
    for addr in n.bootstrap:
        if "/p2p/" not in addr or not addr.startswith("/ip4/"):
            raise bad("node.bootstrap", f"{addr!r} must be /ip4/<ip>/tcp/<port>/p2p/<peer id>")
        problem = bootstrap_problem(addr)
        if problem:
            raise bad("node.bootstrap", f"{addr!r}: {problem}")
    if n.state_dir.exists() and not n.state_dir.is_dir():
        raise bad("node.state_dir", f"{n.state_dir} exists and is not a directory")
    if not cfg.chain.rpc.startswith(("http://", "https://")):
        raise bad("chain.rpc", f"must be an http(s) JSON-RPC URL, got {cfg.chain.rpc!r}")

    d = cfg.data
    if d.source not in DATA_SOURCES:
        raise bad(
            "data.source", f"unknown source {d.source!r}; choose one of {', '.join(DATA_SOURCES)}"
        )
    if d.source in _BUILTIN_SOURCES:
        if d.sites < 1:
            raise bad("data.sites", f"must be >= 1, got {d.sites}")
        if not 0 <= d.site < d.sites:
            raise bad(
                "data.site", f"must be in 0..{d.sites - 1} (data.sites = {d.sites}), got {d.site}"
            )
    elif d.path is None:
        raise bad("data.path", f"required for source {d.source!r}")
    elif not d.path.exists():
        raise bad("data.path", f"{d.path} does not exist")
    if not 0 <= d.cohort < 2**64:
        raise bad(
            "data.cohort",
            f"must be a number of patients >= 1 (0: the data's row count rounded up), "
            f"got {d.cohort}",
        )
    if d.scaling not in SCALINGS:
        raise bad("data.scaling", f"must be one of {', '.join(SCALINGS)}, got {d.scaling!r}")
    if d.bounds is not None:
        from node.data.scaling import load_bounds

        try:
            load_bounds(d.bounds)
        except (OSError, ValueError) as exc:
            raise bad("data.bounds", str(getattr(exc, "strerror", None) or exc)) from None
    elif d.scaling in ("secure", "bounds") and d.source != "breast-cancer":
        raise bad(
            "data.bounds",
            f'required with scaling = "{d.scaling}" for source {d.source!r} '
            '(public per-feature ranges, "low,high" per line)',
        )

    t = cfg.training
    if t.model not in MODEL_NAMES:
        raise bad(
            "training.model", f"unknown model {t.model!r}; choose one of {', '.join(MODEL_NAMES)}"
        )
    if not t.learning_rate > 0:
        raise bad("training.learning_rate", f"must be > 0, got {t.learning_rate}")
    if not t.proximal_mu >= 0:
        raise bad("training.proximal_mu", f"must be >= 0, got {t.proximal_mu}")
    if t.threads < 1:
        raise bad("training.threads", f"must be >= 1, got {t.threads}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", t.device):
        raise bad("training.device", f"must be auto, cpu, cuda or cuda:N, got {t.device!r}")

    p = cfg.privacy
    if not p.epsilon > 0:
        raise bad("privacy.epsilon", f"must be > 0, got {p.epsilon}")
    if not 0 < p.delta < 1:
        raise bad("privacy.delta", f"must be in (0, 1), got {p.delta}")
    if p.accountant not in ACCOUNTANTS:
        raise bad(
            "privacy.accountant",
            f"unknown accountant {p.accountant!r}; choose one of {', '.join(ACCOUNTANTS)}",
        )
    if not p.max_grad_norm > 0:
        raise bad("privacy.max_grad_norm", f"must be > 0, got {p.max_grad_norm}")
    if not p.count_noise > 0:
        raise bad(
            "privacy.count_noise",
            f"must be > 0 (the row count is always released noised), got {p.count_noise}",
        )
    for key in ("steps_per_epoch", "local_epochs", "rounds"):
        if getattr(p, key) < 1:
            raise bad(f"privacy.{key}", f"must be >= 1, got {getattr(p, key)}")

    a = cfg.aggregation
    if a.rule not in RULES:
        raise bad("aggregation.rule", f"unknown rule {a.rule!r}; choose one of {', '.join(RULES)}")
    if a.f < 0:
        raise bad("aggregation.f", f"must be >= 0, got {a.f}")
    if a.bucket_size < 1 or (a.bucket_size > 1 and a.rule == "fedavg"):
        raise bad(
            "aggregation.bucket_size",
            f'must be >= 1, and 1 with rule = "fedavg" (a mean of bucket means '
            f"is FedAvg), got {a.bucket_size}",
        )
    try:
        check_protection(a.protection, a.rule)
    except ValueError as exc:
        raise bad("aggregation.protection", str(exc)) from None
    if a.topk is not None and not 0 < a.topk <= 1:
        raise bad("aggregation.topk", f"must be in (0, 1], got {a.topk}")
    if a.quantize and a.protection != "sealed":
        raise bad(
            "aggregation.quantize",
            f'8-bit values compose with protection = "sealed" only, not {a.protection!r}',
        )
    if a.clip_norm is not None and not a.clip_norm > 0:
        raise bad("aggregation.clip_norm", f"must be > 0, got {a.clip_norm}")
    if a.norm_bound:
        try:
            check_norm_bound(a.protection, a.rule)
        except ValueError as exc:
            raise bad("aggregation.norm_bound", str(exc)) from None
    if a.min_contributors < MIN_CONTRIBUTORS:
        raise bad(
            "aggregation.min_contributors",
            f"must be at least {MIN_CONTRIBUTORS}, got {a.min_contributors}: "
            f"a sum of two updates reveals each one to the other contributor",
        )
    if d.source in _BUILTIN_SOURCES and d.sites < RULES[a.rule].min_updates():
        raise bad(
            "aggregation.rule",
            f"{a.rule} needs at least {RULES[a.rule].min_updates()} hospitals, "
            f"the split has {d.sites}",
        )
    if d.source in _BUILTIN_SOURCES and a.f >= d.sites:
        raise bad("aggregation.f", f"must be below the number of hospitals ({d.sites}), got {a.f}")
    if d.source in _BUILTIN_SOURCES and d.sites < RULES[a.rule].min_updates(a.f):
        raise bad(
            "aggregation.f",
            f"{a.rule} with f = {a.f} needs at least {RULES[a.rule].min_updates(a.f)} "
            f"hospitals, the split has {d.sites}",
        )

    r = cfg.rounds
    for key in (
        "round_timeout",
        "open_fallback",
        "poll_interval",
        "setup_timeout",
        "assumed_link_mbit",
    ):
        if not getattr(r, key) > 0:
            raise bad(f"rounds.{key}", f"must be > 0, got {getattr(r, key)}")
    if r.round_timeout_max < r.round_timeout:
        raise bad(
            "rounds.round_timeout_max",
            f"must be >= round_timeout ({r.round_timeout}), got {r.round_timeout_max}",
        )
    if r.when_done not in WHEN_DONE:
        raise bad("rounds.when_done", f"must be one of {', '.join(WHEN_DONE)}, got {r.when_done!r}")
    for key in ("join_margin", "attest_grace", "stop_after_round"):
        if getattr(r, key) < 0:
            raise bad(f"rounds.{key}", f"must be >= 0, got {getattr(r, key)}")

    g = cfg.gossip
    if g.max_blob_bytes <= 0:
        raise bad("gossip.max_blob_bytes", f"must be > 0, got {g.max_blob_bytes}")
    if not 0 < g.max_control_bytes <= 512 * 2**10:
        raise bad(
            "gossip.max_control_bytes", f"must be in 1..{512 * 2**10}, got {g.max_control_bytes}"
        )
    if not 0 < g.reconnect_initial <= g.reconnect_max:
        raise bad(
            "gossip.reconnect_initial",
            f"must be > 0 and <= reconnect_max ({g.reconnect_max}), got {g.reconnect_initial}",
        )
    for key in ("send_attempts", "parallel_sends", "max_connections_per_ip"):
        if getattr(g, key) < 1:
            raise bad(f"gossip.{key}", f"must be >= 1, got {getattr(g, key)}")
    if not g.dial_timeout > 0:
        raise bad("gossip.dial_timeout", f"must be > 0, got {g.dial_timeout}")

    m = cfg.monitoring
    try:
        ipaddress.ip_address(m.host)
    except ValueError:
        raise bad(
            "monitoring.host", f"must be an IP address such as 127.0.0.1, got {m.host!r}"
        ) from None
    if not 0 <= m.port <= 65535:
        raise bad("monitoring.port", f"must be in 0..65535, got {m.port}")
    for key in ("auc_drop", "bias_gap", "norm_z", "drift_smd"):
        if not getattr(m, key) > 0:
            raise bad(f"monitoring.{key}", f"must be > 0, got {getattr(m, key)}")
    if not -1 <= m.min_cosine <= 1:
        raise bad("monitoring.min_cosine", f"must be in [-1, 1], got {m.min_cosine}")
    if not 0 < m.auc_alpha < 1:
        raise bad("monitoring.auc_alpha", f"must be in (0, 1), got {m.auc_alpha}")


def bootstrap_problem(addr: str) -> str | None:
    """Why ``/ip4/<ip>/tcp/<port>/p2p/<peer id>`` cannot be dialed, or None."""
    import ipaddress

    parts = addr.strip("/").split("/")
    if len(parts) != 6 or parts[0] != "ip4" or parts[2] != "tcp" or parts[4] != "p2p":
        return "must be /ip4/<ip>/tcp/<port>/p2p/<peer id>"
    try:
        ip = ipaddress.IPv4Address(parts[1])
    except ValueError:
        return f"{parts[1]!r} is not an IPv4 address"
    if ip.is_unspecified:
        return "0.0.0.0 is a listen address, not one a peer can dial; give the host's reachable IP"
    if not parts[3].isdigit() or not 0 < int(parts[3]) <= 65535:
        return f"port {parts[3]!r} is not in 1..65535"
    try:
        from libp2p.peer.id import ID

        ID.from_base58(parts[5])
    except Exception:  # base58 or multihash errors: the ID cannot name a peer
        return f"{parts[5]!r} is not a libp2p peer ID"
    if not parts[5].startswith("12D3KooW"):
        return f"{parts[5]!r} is not an Ed25519 peer ID (12D3KooW...), which medmesh nodes use"
    return None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def key_comments(cls: type) -> dict[str, str]:
    """Each field's trailing ``# comment`` in its dataclass's source: the template's key notes."""
    import inspect

    notes = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^=]+(?:=[^#]*)?#\s*(.+)$", line)
        if match:
            notes[match[1]] = match[2].strip()
    return notes


def template(values: dict[str, dict[str, Any]]) -> str:
    """A config file: every section with its keys, ``values`` overriding the defaults, each key
    with its one-line note; an optional key without a value is written commented out."""
    lines = [
        "# medmesh hospital node (`medmesh node run --config THIS_FILE`); see README,",
        "# 'Running a hospital node', for every key. Relative paths are relative to this file.",
    ]
    for name, cls in _SECTIONS.items():
        lines += ["", f"[{name}]"]
        given = values.get(name, {})
        notes = key_comments(cls)
        for f in fields(cls):
            note = f"  # {notes[f.name]}" if f.name in notes else ""
            if f.name in given and given[f.name] is not None:
                lines.append(f"{f.name} = {_toml_value(given[f.name])}{note}")
            elif f.default is not MISSING and f.default is not None:
                lines.append(f"{f.name} = {_toml_value(f.default)}{note}")
            else:
                lines.append(f"# {f.name} = ...{note}")
    return "\n".join(lines) + "\n"
