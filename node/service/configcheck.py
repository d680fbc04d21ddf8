"""The checks of a node's configuration across keys and against the known names (rules, models,
accountants, protection modes, data sources), and of a bootstrap address.

:func:`check_config` runs after every section was read and typed (:mod:`node.service.config`);
it raises :class:`~node.service.configschema.ConfigError` with one line naming the file, the key
and the problem. :func:`bootstrap_problem` says why a peer address cannot be dialed.
"""

from __future__ import annotations

import ipaddress
import re

from node.protection import check_norm_bound, check_protection
from node.protection.secagg_consistency import MIN_CONTRIBUTORS
from node.service.configschema import (
    ACCOUNTANTS,
    BUILTIN_SOURCES,
    DATA_SOURCES,
    SCALINGS,
    WHEN_DONE,
    ConfigError,
    NodeConfig,
)

__all__ = ["check_config", "bootstrap_problem"]


def check_config(where: str, cfg: NodeConfig) -> None:
    """Checks across keys and against the known names (rules, models, accountants, modes)."""
    from node.consensus.rules import RULES
    from node.learning.modelnames import MODEL_NAMES, known_model

    def bad(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: [{key.split('.')[0]}].{key.split('.', 1)[1]}: {problem}")

    def each(section: str, values: object, keys: tuple[str, ...], rule: str) -> None:
        """Every ``[section].key`` of ``keys`` is ``rule``: "> 0", ">= 0" or ">= 1"."""
        for key in keys:
            v = getattr(values, key)
            if {"> 0": not v > 0, ">= 0": v < 0, ">= 1": v < 1}[rule]:
                raise bad(f"{section}.{key}", f"must be {rule}, got {v}")

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
    if d.source in BUILTIN_SOURCES:
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
    if not known_model(t.model):
        raise bad(
            "training.model",
            f"unknown model {t.model!r}; choose one of {', '.join(MODEL_NAMES)} or mlp@<width>",
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
    each("privacy", p, ("steps_per_epoch", "local_epochs", "rounds"), ">= 1")

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
    if d.source in BUILTIN_SOURCES and d.sites < RULES[a.rule].min_updates():
        raise bad(
            "aggregation.rule",
            f"{a.rule} needs at least {RULES[a.rule].min_updates()} hospitals, "
            f"the split has {d.sites}",
        )
    if d.source in BUILTIN_SOURCES and a.f >= d.sites:
        raise bad("aggregation.f", f"must be below the number of hospitals ({d.sites}), got {a.f}")
    if d.source in BUILTIN_SOURCES and d.sites < RULES[a.rule].min_updates(a.f):
        raise bad(
            "aggregation.f",
            f"{a.rule} with f = {a.f} needs at least {RULES[a.rule].min_updates(a.f)} "
            f"hospitals, the split has {d.sites}",
        )

    r = cfg.rounds
    timings = ("round_timeout", "open_fallback", "poll_interval", "setup_timeout")
    each("rounds", r, (*timings, "assumed_link_mbit"), "> 0")
    if r.round_timeout_max < r.round_timeout:
        raise bad(
            "rounds.round_timeout_max",
            f"must be >= round_timeout ({r.round_timeout}), got {r.round_timeout_max}",
        )
    if r.when_done not in WHEN_DONE:
        raise bad("rounds.when_done", f"must be one of {', '.join(WHEN_DONE)}, got {r.when_done!r}")
    each("rounds", r, ("join_margin", "attest_grace", "stop_after_round"), ">= 0")

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
    each("gossip", g, ("send_attempts", "parallel_sends", "max_connections_per_ip"), ">= 1")
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
    each("monitoring", m, ("auc_drop", "bias_gap", "norm_z", "drift_smd"), "> 0")
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
