"""The ledger's ``medmesh`` subcommands: ``devnet`` and ``audit``.

``node/cli.py`` owns the ``medmesh`` parser and calls :func:`register_commands` with its
subparsers; each subcommand sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from .audit import collect, format_report
from .chain import connect, dev_account, load_state
from .deploy import Deployment, deploy
from .devnet import Anvil
from .errors import LedgerError

__all__ = ["register_commands", "run_audit", "run_devnet"]


def register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``devnet`` and ``audit`` to the ``medmesh`` CLI."""
    devnet = subparsers.add_parser(
        "devnet",
        help="start a local anvil chain with the medmesh contracts deployed",
        description="Start anvil, deploy the contracts, write the deployment file, and run until Ctrl-C.",
    )
    devnet.add_argument("--port", type=int, default=8545, help="RPC port on 127.0.0.1 (default 8545)")
    devnet.add_argument(
        "--out",
        type=Path,
        default=Path("build/deployment.json"),
        help="deployment file to write (default build/deployment.json)",
    )
    devnet.set_defaults(func=run_devnet)

    audit = subparsers.add_parser(
        "audit",
        help="rebuild and check the consortium's history from the chain",
        description="Read identities, rounds, commits, attestations and credits from the event logs, "
        "and check them against the contracts' state.",
    )
    source = audit.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--chain-state", type=Path, metavar="FILE", help="an embedded chain saved by the demo"
    )
    source.add_argument(
        "--deployment", type=Path, metavar="FILE", help="a deployment file (its rpc is used unless --rpc)"
    )
    audit.add_argument("--rpc", metavar="URL", help="JSON-RPC endpoint (with --deployment)")
    audit.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    audit.set_defaults(func=run_audit)


def run_devnet(args: argparse.Namespace) -> int:
    try:
        with Anvil(args.port) as rpc:
            w3 = connect(rpc)
            deployment = deploy(w3, dev_account(w3))
            deployment.save(args.out)
            print(f"anvil devnet at {rpc} (chain id {deployment.chain_id})")
            for name, address in deployment.addresses.items():
                print(f"  {name:<20} {address}")
            print(f"  admin                {deployment.admin}")
            print(f"deployment written to {args.out}; Ctrl-C stops the devnet", flush=True)
            threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        print("devnet stopped")
        return 0
    except LedgerError as exc:
        print(f"medmesh devnet: {exc}", file=sys.stderr)
        return 1
    return 0


def run_audit(args: argparse.Namespace) -> int:
    try:
        if args.chain_state is not None:
            if args.rpc:
                raise LedgerError("--rpc goes with --deployment, not --chain-state")
            w3, deployment = load_state(args.chain_state)
        else:
            deployment = Deployment.load(args.deployment)
            rpc = args.rpc or deployment.rpc
            if rpc == "embedded":
                raise LedgerError("this deployment lives on an embedded chain; audit its --chain-state file")
            w3 = connect(rpc)
        report = collect(w3, deployment)
    except LedgerError as exc:
        print(f"medmesh audit: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["ok"] else 2
