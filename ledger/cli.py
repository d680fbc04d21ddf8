"""The ledger's ``medmesh`` subcommands: ``devnet`` and ``audit`` (with its views:
``identities``, ``rounds``, ``round N``, ``credits``, ``alerts``, ``peer ID``, ``verify MODEL_FILE`` and
``report --out DIR``; each as a table, ``--json`` or ``--csv``).

``node/cli.py`` owns the ``medmesh`` parser and calls :func:`register_commands` with its
subparsers; each subcommand sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from .anchors import parse_genesis, parse_head
from .audit import collect, format_report, unread_report
from .chain import connect, dev_account, read_state
from .client import LedgerClient
from .committee import set_committee_size
from .deploy import Deployment, deploy
from .devnet import Anvil
from .errors import LedgerError
from .html_report import write_html_report
from .index import cache_dir_default
from .views import (
    alert_rows,
    award_rows,
    credit_rows,
    identity_rows,
    peer_view,
    render,
    round_rows,
    round_view,
    verify_model,
)

__all__ = ["register_commands", "run_audit", "run_devnet"]


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``devnet`` and ``audit`` to the ``medmesh`` CLI."""
    devnet = subparsers.add_parser(
        "devnet",
        help="start a local anvil chain with the medmesh contracts deployed",
        description="Start anvil, deploy the contracts, write the deployment file, and run until Ctrl-C.",
    )
    devnet.add_argument(
        "--port", type=int, default=8545, help="RPC port on 127.0.0.1 (default 8545)"
    )
    devnet.add_argument(
        "--out",
        type=Path,
        default=Path("build/deployment.json"),
        help="deployment file to write (default build/deployment.json)",
    )
    devnet.add_argument(
        "--block-time",
        type=int,
        default=1,
        help="also mine a block every N seconds, so round deadlines pass with wall time (default 1; "
        "0 mines only on transactions)",
    )
    devnet.add_argument(
        "--commit-window",
        type=int,
        default=DEVNET_WINDOW_S,
        metavar="S",
        help=f"seconds a round accepts commits (default {DEVNET_WINDOW_S})",
    )
    devnet.add_argument(
        "--attest-window",
        type=int,
        default=DEVNET_WINDOW_S,
        metavar="S",
        help=f"seconds after the commit window a round accepts attestations (default {DEVNET_WINDOW_S})",
    )
    devnet.add_argument(
        "--committee",
        type=int,
        default=0,
        metavar="K",
        help="attesters the beacon draws per round (default 0: every member; docs/committee.md)",
    )
    devnet.add_argument(
        "--admin-key-out",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write the admin key (0600; default admin.key beside --out)",
    )
    devnet.set_defaults(func=run_devnet)

    audit = subparsers.add_parser(
        "audit",
        help="rebuild and check the consortium's history from the chain",
        description="Read identities, rounds, commits, attestations, rejections and credits from the "
        "event logs, and check them against the contracts' state. Without a view: every table and "
        "every check (exit 2 if a check fails).",
    )
    _audit_options(audit, None)
    views = audit.add_subparsers(dest="view", metavar="VIEW")
    shared = argparse.ArgumentParser(add_help=False)
    _audit_options(shared, argparse.SUPPRESS)
    views.add_parser("identities", parents=[shared], help="registered institutions")
    views.add_parser("rounds", parents=[shared], help="one line per round")
    one = views.add_parser(
        "round", parents=[shared], help="one round: commits, votes, rejections, credits"
    )
    one.add_argument("number", type=int)
    views.add_parser(
        "credits", parents=[shared], help="credit balances (and each IncentiveDistributor's)"
    )
    views.add_parser(
        "awards",
        parents=[shared],
        help="IncentiveDistributor awards: per scheme, round and account",
    )
    views.add_parser("alerts", parents=[shared], help="monitoring alerts members recorded on chain")
    peer = views.add_parser(
        "peer", parents=[shared], help="one member's record, by peer ID or account"
    )
    peer.add_argument("peer_id", metavar="ID")
    verify = views.add_parser(
        "verify",
        parents=[shared],
        help="which finalized round produced a model file (.npy or raw .f32)",
    )
    verify.add_argument("model_file", type=Path, metavar="MODEL_FILE")
    report = views.add_parser("report", parents=[shared], help="write an HTML transparency report")
    report.add_argument("--out", type=Path, required=True, metavar="DIR")
    audit.set_defaults(func=run_audit)


def _audit_options(parser: argparse.ArgumentParser, default: object) -> None:
    """The source and format options, on ``audit`` and again on each view (``default``
    SUPPRESS there, so an option given before the view is not reset after it)."""
    kw: dict[str, Any] = {} if default is None else {"default": default}
    parser.add_argument(
        "--chain-state", type=Path, metavar="FILE", help="an embedded chain saved by the demo", **kw
    )
    parser.add_argument(
        "--deployment",
        type=Path,
        metavar="FILE",
        help="a deployment file (its rpc is used unless --rpc)",
        **kw,
    )
    parser.add_argument("--rpc", metavar="URL", help="JSON-RPC endpoint (with --deployment)", **kw)
    parser.add_argument(
        "--expect-genesis",
        metavar="HASH",
        help="fail unless the chain's block 0 has this hash",
        **kw,
    )
    parser.add_argument(
        "--expect-head",
        action="append",
        metavar="NUMBER:HASH|RECORD",
        help="fail unless block NUMBER has hash HASH, or unless a member's signed attestation record "
        "(its chain head, its transaction, its RoundLedger) matches the chain; repeatable",
        **kw,
    )
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="event index cache for a node (default build/audit-cache; 'none' to disable)",
        **kw,
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON instead of tables", **kw)
    fmt.add_argument("--csv", action="store_true", help="print CSV instead of tables", **kw)


#: Default commit and attestation windows of a devnet: rounds here take seconds to minutes, and a
#: round that cannot finalize is failed (and the campaign goes on) after both windows.
DEVNET_WINDOW_S = 120


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # leave the ``with Anvil`` block: anvil is stopped, its port freed


def run_devnet(args: argparse.Namespace) -> int:
    for key in ("commit_window", "attest_window"):
        if getattr(args, key) < 1:
            print(
                f"medmesh devnet: --{key.replace('_', '-')} must be >= 1 s, got {getattr(args, key)}",
                file=sys.stderr,
            )
            return 2
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Ctrl-C stops the devnet even when it was started with SIGINT ignored: a shell's background
    # job, a pytest-xdist worker or a service manager hands that down, and Python then never
    # raises KeyboardInterrupt (found when `make test` ran in a background job)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with Anvil(args.port, block_time=args.block_time or None) as rpc:
            w3 = connect(rpc)
            admin = dev_account(w3)
            deployment = deploy(
                w3, admin, commit_window=args.commit_window, attest_window=args.attest_window
            )
            if args.committee:
                set_committee_size(LedgerClient(w3, deployment, admin), args.committee)
            deployment.save(args.out)
            key_path = args.admin_key_out or Path(args.out).parent / "admin.key"
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(admin.key.hex() + "\n")
            os.chmod(key_path, 0o600)
            print(f"commit window {args.commit_window} s, attest window {args.attest_window} s")
            print(
                f"admin key written to {key_path} (0600): the consortium admin admits the genesis members "
                f"with it (`medmesh node register --admin-key-file {key_path}`); keep it off the hospitals' machines"
            )
            print(f"anvil devnet at {rpc} (chain id {deployment.chain_id})")
            for name, address in deployment.addresses.items():
                print(f"  {name:<20} {address}")
            print(f"  admin                {deployment.admin}")
            print(f"  genesis              {deployment.genesis}")
            print(f"deployment written to {args.out}; Ctrl-C stops the devnet", flush=True)
            threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        print("devnet stopped", flush=True)
        return 0
    except LedgerError as exc:
        print(f"medmesh devnet: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    return 0


@dataclass
class _Source:
    """Where the audited chain was read: ``w3`` is None when a chain-state file failed its
    verification (nothing in it may then be read)."""

    w3: Web3 | None
    deployment: Deployment
    cache_dir: Path | None
    label: str
    checks: list[dict[str, Any]]


def _audit_source(args: argparse.Namespace) -> _Source:
    chain_state: Path | None = getattr(args, "chain_state", None)
    deployment_file: Path | None = getattr(args, "deployment", None)
    rpc_arg = getattr(args, "rpc", None)
    if chain_state is not None and deployment_file is None:
        if rpc_arg:
            raise LedgerError("--rpc goes with --deployment, not --chain-state")
        saved = read_state(chain_state)
        w3 = saved.web3() if saved.verification.ok else None
        return _Source(
            w3, saved.deployment, None, f"embedded chain from {chain_state}", saved.checks()
        )
    if deployment_file is None or chain_state is not None:
        raise LedgerError("give one of --chain-state FILE or --deployment FILE")
    deployment = Deployment.load(deployment_file)
    rpc = rpc_arg or deployment.rpc
    if rpc == "embedded":
        raise LedgerError(
            "this deployment lives on an embedded chain; audit its --chain-state file"
        )
    cache = getattr(args, "cache", None)
    cache_dir = None if str(cache) == "none" else (cache or cache_dir_default())
    return _Source(connect(rpc), deployment, cache_dir, rpc, [])


def _refused(source: _Source) -> dict[str, Any]:
    """The report of a chain-state file that failed verification: its failures, no history."""
    d = source.deployment
    chain = {
        "chain_id": d.chain_id,
        "rpc": source.label,
        "deployment_rpc": d.rpc,
        "genesis": None,
        "head_hash": None,
        "contracts": dict(d.addresses),
        "admin": d.admin,
        "head_block": "not read (the store failed verification)",
    }
    return unread_report(chain, source.checks)


def _trust_failures(report: dict[str, Any]) -> list[str]:
    return [
        f"FAIL {c['check']} {c['detail']}".rstrip()
        for c in report["checks"]
        if c.get("kind") == "integrity" and not c["ok"]
    ]


def run_audit(args: argparse.Namespace) -> int:
    fmt = (
        "json"
        if getattr(args, "json", False)
        else "csv"
        if getattr(args, "csv", False)
        else "table"
    )
    view = getattr(args, "view", None)
    try:
        genesis = getattr(args, "expect_genesis", None)
        heads = [parse_head(h) for h in getattr(args, "expect_head", None) or []]
        source = _audit_source(args)
        if source.w3 is None:
            report = _refused(source)
        else:
            report = collect(
                source.w3,
                source.deployment,
                cache_dir=source.cache_dir,
                expect_genesis=parse_genesis(genesis) if genesis else None,
                expect_heads=heads,
                source=source.label,
                prior_checks=source.checks,
            )
        if view is None:
            if fmt == "csv":
                raise LedgerError(
                    "--csv needs a view (identities, rounds, round N, credits, awards, peer ID)"
                )
            print(json.dumps(report, indent=2) if fmt == "json" else format_report(report))
            return 0 if report["ok"] else 2
        failures = _trust_failures(report)
        if failures:  # a forged chain or deployment: no view of it is worth reading
            print(
                f"medmesh audit: the chain at {source.label} failed verification; nothing shown",
                file=sys.stderr,
            )
            print("\n".join(failures), file=sys.stderr)
            return 2
        if view == "verify":
            found = verify_model(report, args.model_file)
            if fmt == "table":
                print(_verify_text(found))
            else:
                print(render([found], fmt) if fmt == "json" else render(_verify_rows(found), "csv"))
            return 0 if found["round"] is not None else 3
        if view == "report":
            path = write_html_report(report, args.out)
            print(f"transparency report written to {path}")
            return 0 if report["ok"] else 2
        rows = {
            "identities": lambda: identity_rows(report),
            "rounds": lambda: round_rows(report),
            "round": lambda: round_view(report, args.number),
            "credits": lambda: credit_rows(report),
            "awards": lambda: award_rows(report),
            "alerts": lambda: alert_rows(report),
            "peer": lambda: peer_view(report, args.peer_id),
        }[view]()
    except LedgerError as exc:
        print(f"medmesh audit: {exc}", file=sys.stderr)
        return 1
    print(render(rows, fmt))
    return 0


def _verify_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"role": "contributor", **c, "agrees": ""} for c in found["contributors"]]
    rows += [{"role": "attester", **a} for a in found["attesters"]]
    return [
        {"file": found["file"], "hash": found["hash"], "round": found["round"], **r} for r in rows
    ] or [
        {
            "file": found["file"],
            "hash": found["hash"],
            "round": None,
            "role": "",
            "account": "",
            "peer_id": "",
            "agrees": "",
        }
    ]


def _verify_text(found: dict[str, Any]) -> str:
    if found["round"] is None:
        return f"{found['file']}: hash {found['hash']}\nno finalized round produced this model"
    lines = [
        f"{found['file']}: hash {found['hash']}",
        f"produced by finalized round {found['round']}",
        "contributors:",
    ]
    lines += [f"  {c['account']}  {c['peer_id']}" for c in found["contributors"]]
    lines.append("attesters:")
    lines += [
        f"  {a['account']}  {a['peer_id']}"
        + ("" if a["agrees"] else "  (dissent: attested another aggregate)")
        for a in found["attesters"]
    ]
    return "\n".join(lines)
