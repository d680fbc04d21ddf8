"""``medmesh node ...``: set up and run one hospital peer.

medmesh node init --dir hospital-a --name hospital-a --rpc URL --deployment deployment.json
medmesh node register --config hospital-a/hospital-a.toml [--admin-key-file admin.key] [--dev-fund]
medmesh node endorse --config hospital-b/hospital-b.toml 0xCANDIDATE
medmesh node add-peer --config hospital-a/hospital-a.toml /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW... [MORE ...]
medmesh node run --config hospital-a/hospital-a.toml [--log-json] [--restore-privacy-from-chain] [--stop-after-round N]
medmesh node status --config hospital-a/hospital-a.toml [--json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["register_node_commands"]


def _peer_id(seed: bytes) -> str:
    from gossip import PeerHost

    return PeerHost(seed, authorize=lambda _pid: False).peer_id


def _cmd_init(args: argparse.Namespace) -> int:
    from node.peer.identity import NodeIdentity
    from node.service.config import load_config, template

    folder = Path(args.dir)
    key_path, cfg_path = folder / f"{args.name}.key", folder / f"{args.name}.toml"
    for path in (key_path, cfg_path):
        if path.exists() and not args.force:
            raise ValueError(
                f"{path} exists; refusing to overwrite a node's identity (use --force)"
            )
    identity = NodeIdentity.generate(args.name)
    identity.save(key_path)
    text = template(
        {
            "node": {"identity": key_path.name, "state_dir": "state", "listen": args.listen},
            "chain": {"rpc": args.rpc, "deployment": str(Path(args.deployment).resolve())},
            "data": {
                "source": args.source,
                "site": args.site,
                "sites": args.sites,
                "cohort": args.cohort,
            },
        }
    )
    fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(cfg_path, 0o600)
    cfg = load_config(cfg_path)  # the template must load as written
    peer_id = _peer_id(identity.libp2p_seed)
    ip, port = cfg.listen_ip_port
    dial_ip = args.public_ip or (ip if ip != "0.0.0.0" else _outbound_ip())
    multiaddr = f"/ip4/{dial_ip}/tcp/{port}/p2p/{peer_id}" if port else None
    if multiaddr:  # a file to hand to the other hospitals (and for scripts: `$(cat DIR/multiaddr)`)
        (folder / "multiaddr").write_text(multiaddr + "\n")
    out = {
        "config": str(cfg_path),
        "identity": str(key_path),
        "address": identity.address,
        "peer_id": peer_id,
        "multiaddr": multiaddr,
    }
    print(
        json.dumps(out, indent=2)
        if args.json
        else f"created {key_path} (0600) and {cfg_path}\naccount {identity.address}\npeer ID {peer_id}\n"
        f"multiaddr {multiaddr or '(none: --listen has port 0; pick a fixed port)'}\n"
        f"  give it to the other hospitals: `medmesh node add-peer --config THEIRS {multiaddr or 'MULTIADDR'}`"
        f"{'' if args.public_ip or ip != '0.0.0.0' else ' (check the IP; --public-ip sets it)'}\n"
        f"next: `medmesh node register --config {cfg_path}` (on a devnet: add --dev-fund and, for a "
        f"genesis member, --admin-key-file admin.key)"
    )
    return 0


def _outbound_ip() -> str:
    """This host's IP on its default route (a UDP socket is connected; no packet is sent)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only
            return sock.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _cmd_add_peer(args: argparse.Namespace) -> int:
    """Append a multiaddr to ``[node].bootstrap``, checked first; the rest of the file is rewritten
    from the template with the same values."""
    import tomllib

    from node.peer.identity import NodeIdentity
    from node.service.config import ConfigError, bootstrap_problem, load_config, template

    cfg = load_config(args.config)
    own = _peer_id(NodeIdentity.load(cfg.node.identity).libp2p_seed)
    for multiaddr in args.multiaddr:
        problem = bootstrap_problem(multiaddr)
        if problem:
            raise ConfigError(f"{multiaddr!r}: {problem}")
        if multiaddr.rsplit("/", 1)[1] == own:
            raise ConfigError(f"{multiaddr!r} is this node's own address")
    raw = tomllib.loads(Path(args.config).read_text(encoding="utf-8"))
    added = {a.rsplit("/", 1)[1] for a in args.multiaddr}
    peers = [a for a in raw["node"].get("bootstrap", []) if a.rsplit("/", 1)[1] not in added]
    raw["node"]["bootstrap"] = peers + list(args.multiaddr)
    fd = os.open(args.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(template(raw))
    load_config(args.config)
    print(f"{args.config}: [node].bootstrap now has {len(raw['node']['bootstrap'])} peer(s)")
    return 0


def _client(cfg, identity):
    from ledger import Deployment, LedgerClient, connect

    return LedgerClient(
        connect(cfg.chain.rpc), Deployment.load(cfg.chain.deployment), identity.account
    )


def _cmd_register(args: argparse.Namespace) -> int:
    from eth_account import Account

    from ledger import LedgerClient, fund
    from node.peer.identity import NodeIdentity
    from node.service.config import load_config

    cfg = load_config(args.config)
    identity = NodeIdentity.load(cfg.node.identity)
    client = _client(cfg, identity)
    if args.dev_fund:  # devnets only: top the account up from the chain's development key
        fund(client.w3, identity.address, 10**18)
    if client.identity(identity.address) is None:
        client.register(
            identity.institution_id,
            _peer_id(identity.libp2p_seed),
            identity.seal_public,
            identity.sign_public,
            _cohort(cfg),
        )
    status = client.identity(identity.address).status
    if status == "pending":
        if client.genesis_open() and args.admin_key_file:
            admin_key = Path(args.admin_key_file).read_text().strip()
            admin = LedgerClient(client.w3, client.deployment, Account.from_key(admin_key))
            admin.admit(identity.address)
        elif client.endorsements(identity.address) >= client.endorsements_needed():
            client.admit(identity.address)
    status = client.identity(identity.address).status
    result = {
        "address": identity.address,
        "status": status,
        "cohort": client.cohort_of(identity.address),
        "endorsements": client.endorsements(identity.address),
        "endorsements_needed": client.endorsements_needed(),
    }
    if args.json:
        print(json.dumps(result))
    elif status == "pending":
        print(
            f"{identity.address} registered with a cohort of {result['cohort']} patients, pending: "
            f"{result['endorsements']} of "
            f"{result['endorsements_needed']} endorsements; members run `medmesh node endorse "
            f"--config THEIR_CONFIG --cohort {result['cohort']} {identity.address}`, then run this command again"
        )
    else:
        print(f"{identity.address} is {status} on chain")
    return 0 if status in ("active", "pending") else 1


def _cohort(cfg) -> int:
    """The cohort to declare: ``[data].cohort``, or a public ceiling above the row count of the
    node's training data (:func:`node.learning.privacy.cohort_ceiling`: never N itself)."""
    if cfg.data.cohort:
        return cfg.data.cohort
    from node.service.sources import load_training_data

    rows = len(load_training_data(cfg.data))
    if rows < 1:
        raise ValueError(
            f"{cfg.path}: [data].cohort: the training data has no rows; declare the cohort"
        )
    from node.learning.privacy import cohort_ceiling

    return cohort_ceiling(rows)


def _cmd_endorse(args: argparse.Namespace) -> int:
    from node.peer.identity import NodeIdentity
    from node.service.config import load_config

    cfg = load_config(args.config)
    client = _client(cfg, NodeIdentity.load(cfg.node.identity))
    candidate = client.identity(args.candidate)
    if candidate is not None and args.cohort is not None and candidate.cohort != args.cohort:
        raise ValueError(
            f"{args.candidate} declared a cohort of {candidate.cohort} patients, not the "
            f"{args.cohort} you expect; not endorsing"
        )
    client.endorse(args.candidate)
    print(
        f"endorsed {args.candidate} (cohort {candidate.cohort if candidate else '?'} patients): "
        f"{client.endorsements(args.candidate)} of {client.endorsements_needed()}"
    )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from node.peer.identity import NodeIdentity
    from node.service.config import load_config

    cfg = load_config(args.config)
    identity = NodeIdentity.load(cfg.node.identity)
    client = _client(cfg, identity)
    on_chain = client.identity(identity.address)
    state_file = cfg.node.state_dir / "state.json"
    privacy_file = cfg.node.state_dir / "privacy.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    privacy = json.loads(privacy_file.read_text()) if privacy_file.exists() else {}
    current = client.current_round()
    result = {
        "institution": identity.institution,
        "address": identity.address,
        "peer_id": _peer_id(identity.libp2p_seed),
        "registry_status": on_chain.status if on_chain else "unregistered",
        "cohort": on_chain.cohort if on_chain else None,
        "chain_round": current,
        "chain_round_status": client.round_info(current).status if current else None,
        "completed_round": state.get("completed_round", 0),
        "params_round": state.get("params_round", 0),
        "epsilon_spent": privacy.get("epsilon", 0.0),
    }
    result["committee"] = committee_status(client, cfg.aggregation.f)
    budget = client.privacy_budget(identity.address) if on_chain else None
    result["privacy_budget_on_chain"] = budget.to_json() if budget else None
    result["epsilon_on_chain"] = client.epsilon_spent(identity.address) if on_chain else None
    print(
        json.dumps(result, indent=2)
        if args.json
        else "\n".join(f"{k:>18}: {v}" for k, v in result.items())
    )
    return 0


def committee_status(client: Any, f: int) -> dict[str, Any]:
    """The committee rounds open with now: its size k (the chain's setting, or every active
    member), the chance that ``f`` Byzantine members hold a third of it, and the default k
    for this N and f (docs/committee.md)."""
    from ledger.committee import committee_size
    from node.consensus.committee import TAIL_TARGET, byzantine_tail
    from node.consensus.committee import committee_size as default_size

    n, setting = client.active_count(), committee_size(client)
    if n == 0:
        return {"k": setting, "members": 0}
    k = setting if 0 < setting < n else n
    f = min(f, n)
    return {
        "k": k,
        "members": n,
        "tolerated_f": f,
        "tail_probability": float(byzantine_tail(n, f, k)),
        "default_k": default_size(n, f),
        "tail_target": TAIL_TARGET,
    }


def _cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    import trio

    from node.service.config import load_config
    from node.service.runner import NodeRunner, configure_logging

    cfg = load_config(args.config)
    if args.stop_after_round is not None:
        if args.stop_after_round < 0:
            raise ValueError(f"--stop-after-round must be >= 0, got {args.stop_after_round}")
        cfg = dataclasses.replace(
            cfg, rounds=dataclasses.replace(cfg.rounds, stop_after_round=args.stop_after_round)
        )
    runner = NodeRunner(
        cfg, events_json=args.log_json, restore_privacy=args.restore_privacy_from_chain
    )
    configure_logging(runner.events, args.verbose)
    return trio.run(runner.run)


def register_node_commands(sub: argparse._SubParsersAction) -> None:
    node = sub.add_parser(
        "node", help="set up and run one hospital peer (init, register, run, status)"
    )
    node_sub = node.add_subparsers(dest="node_command", required=True)

    init = node_sub.add_parser(
        "init", help="create an identity key file (0600) and a config template"
    )
    init.add_argument(
        "--dir", type=Path, required=True, help="folder for the key file and the config"
    )
    init.add_argument("--name", required=True, help="institution name (bound on chain)")
    init.add_argument("--listen", default="/ip4/127.0.0.1/tcp/4001")
    init.add_argument("--rpc", default="http://127.0.0.1:8545")
    init.add_argument("--deployment", default="deployment.json")
    init.add_argument("--source", default="breast-cancer", help="[data].source (see README)")
    init.add_argument("--site", type=int, default=0)
    init.add_argument("--sites", type=int, default=4)
    init.add_argument(
        "--public-ip",
        help="the IP other hospitals dial (default: the listen IP, or this "
        "host's outbound IP when listening on 0.0.0.0)",
    )
    init.add_argument(
        "--cohort",
        type=int,
        default=0,
        help="[data].cohort: a public ceiling on the patients, declared on chain (default 0: the data's "
        "row count rounded up past the next hundred)",
    )
    init.add_argument("--force", action="store_true")
    init.add_argument("--json", action="store_true")
    init.set_defaults(func=_cmd_init)

    reg = node_sub.add_parser(
        "register", help="put this node's identity on chain (and admit it when possible)"
    )
    reg.add_argument("--config", type=Path, required=True)
    reg.add_argument(
        "--admin-key-file", type=Path, help="consortium admin key: admits genesis members"
    )
    reg.add_argument(
        "--dev-fund", action="store_true", help="devnet only: fund the account from the dev key"
    )
    reg.add_argument("--json", action="store_true")
    reg.set_defaults(func=_cmd_register)

    endorse = node_sub.add_parser("endorse", help="endorse a pending candidate as an active member")
    endorse.add_argument("--config", type=Path, required=True)
    endorse.add_argument("candidate", help="the candidate's account address")
    endorse.add_argument(
        "--cohort", type=int, help="endorse only if the candidate declared this many patients"
    )
    endorse.set_defaults(func=_cmd_endorse)

    add = node_sub.add_parser(
        "add-peer", help="add another hospital's multiaddr to [node].bootstrap"
    )
    add.add_argument("--config", type=Path, required=True)
    add.add_argument(
        "multiaddr",
        nargs="+",
        help="/ip4/<ip>/tcp/<port>/p2p/<peer id>, as printed by its `node init` (one or more)",
    )
    add.set_defaults(func=_cmd_add_peer)

    run = node_sub.add_parser("run", help="run the peer until stopped")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--log-json", action="store_true", help="JSON lines instead of text")
    run.add_argument(
        "--stop-after-round",
        type=int,
        metavar="N",
        help="exit once chain round N has ended (overrides [rounds].stop_after_round)",
    )
    run.add_argument(
        "--restore-privacy-from-chain",
        action="store_true",
        help="privacy.json is lost: rebuild it from this node's commitments on chain (a lower bound)",
    )
    run.set_defaults(func=_cmd_run)

    status = node_sub.add_parser(
        "status", help="this node's registration, rounds and privacy budget"
    )
    status.add_argument("--config", type=Path, required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_cmd_status)
