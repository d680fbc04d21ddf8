"""The ledger's ``medmesh`` subcommands: ``devnet`` and ``audit`` (with its views:
``identities``, ``rounds``, ``round N``, ``credits``, ``alerts``, ``peer ID``, ``verify MODEL_FILE`` and
``report --out DIR``; each as a table, ``--json`` or ``--csv``).

``node/cli.py`` owns the ``medmesh`` parser and calls :func:`register_commands` with its
subparsers. This module holds the two commands' arguments; each subcommand sets
``func(args) -> int``, run by :mod:`ledger.devnet_cli` and :mod:`ledger.audit_cli`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .audit_cli import run_audit
from .devnet_cli import DEVNET_WINDOW_S, run_devnet

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
