"""``medmesh audit``: read the chain from a chain-state file or a deployment's endpoint, run
the audit (:func:`ledger.audit.collect`) and show the report or one of its views (tables, JSON,
CSV, model verification, the HTML report); exit 0 when every check passed, 1 on an error, 2 on
a failed check (3: no finalized round produced the model given to ``verify``)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from .anchors import parse_genesis, parse_head
from .audit import collect, format_report, unread_report
from .chain import connect, read_state
from .deploy import Deployment
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

__all__ = ["run_audit"]


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
