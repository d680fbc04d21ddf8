"""Rebuild the consortium's history from the chain's event logs and check it against the
contracts' views, the compiled sources and the quorum and credit rules.

:func:`collect` returns a JSON-ready dict; :func:`format_report` (:mod:`ledger.report_text`)
renders it as tables. The history (identities, rounds, commits, attestations, rejections,
dissent, credits, and the awards of any IncentiveDistributor the deployment lists:
:mod:`ledger.award_audit`) comes from logs alone, through an :class:`~ledger.index.EventIndex`
(replayed by :mod:`ledger.history`); views are read (batched on a node) only to cross-check it
(:mod:`ledger.history_checks`), and every disagreement is listed under ``checks``. This module
runs those steps in order, after the chain's own integrity checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web3 import Web3

from .anchors import AttestationRecord, HeadAnchor, check_anchors, check_attested_heads
from .award_audit import award_history, check_awards
from .awards import artifact_name
from .batch_views import View, view_calls
from .beacon_audit import check_beacon, check_ckks_roles
from .client import LedgerClient
from .committee_audit import check_committee, committee_setting
from .compile import CONTRACT_NAMES, compile_contracts
from .deploy import Deployment, provider_label
from .figures import check_figures, privacy_by_hospital
from .history import build_history, epsilon_by_hospital
from .history_checks import check_against_views, check_round_quorum, expected_credits
from .index import EventIndex
from .report_text import format_report
from .wiring import check_wiring, code_matches

__all__ = [
    "build_history",
    "check_round_quorum",
    "collect",
    "epsilon_by_hospital",
    "expected_credits",
    "format_report",
    "unread_report",
]


def collect(
    w3: Web3,
    deployment: Deployment,
    *,
    index: EventIndex | None = None,
    cache_dir: Path | str | None = None,
    expect_genesis: bytes | None = None,
    expect_heads: list[HeadAnchor | AttestationRecord] | None = None,
    source: str | None = None,
    prior_checks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The audit report of ``deployment`` on ``w3``: chain, settings, identities, rounds,
    credits, privacy spend and checks. History comes from the event logs (an
    :class:`~ledger.index.EventIndex`, updated here; pass one, or a ``cache_dir``, to reuse it);
    the contracts' views are read, batched, only to cross-check it.

    Before the history, the chain itself is checked (checks of ``kind`` "integrity"): the
    anchors (:mod:`ledger.anchors`: the deployment's genesis, ``expect_genesis``, each of
    ``expect_heads``), the deployed code and its wiring (:mod:`ledger.wiring`), and each
    attested head. ``prior_checks`` (e.g. the chain-state file's verification) come first;
    ``source`` names where the chain was read (default: the provider's endpoint)."""
    artifacts = compile_contracts()
    checks: list[dict[str, Any]] = list(prior_checks or [])

    def check(name: str, ok: bool, detail: str = "", kind: str = "history") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail, "kind": kind})

    check_anchors(w3, deployment, check, expect_genesis=expect_genesis, heads=expect_heads or ())
    first = len(checks)
    for name, address in sorted(deployment.addresses.items()):
        ok, detail = code_matches(w3, address, artifacts[artifact_name(name)])
        kind = (
            "integrity" if name in CONTRACT_NAMES else "history"
        )  # distributors: ledger.award_audit
        check(
            f"code of {name} matches contracts/{artifact_name(name)}.sol",
            ok,
            f"{address}{detail}",
            kind=kind,
        )
    check_wiring(w3, deployment, check)
    chain = {
        "chain_id": w3.eth.chain_id,
        "rpc": source or provider_label(w3),
        "deployment_rpc": deployment.rpc,
        "genesis": "0x" + bytes(w3.eth.get_block(0)["hash"]).hex(),
        "contracts": dict(deployment.addresses),
        "admin": deployment.admin,
        "anchors": {
            "genesis": [
                g for g in (deployment.genesis, expect_genesis and "0x" + expect_genesis.hex()) if g
            ],
            "heads": len(expect_heads or ()),
        },
    }
    if not all(c["ok"] for c in checks[first:] if c["kind"] == "integrity"):
        # not the consortium's contracts, or not wired as the file says: read nothing of them
        latest = w3.eth.get_block("latest")
        chain.update(head_block=int(latest["number"]), head_hash="0x" + bytes(latest["hash"]).hex())
        return unread_report(chain, checks)
    viewer = LedgerClient(w3, deployment)  # read-only: no key
    index = (index or EventIndex(w3, deployment, cache_dir)).update()

    settings = {"registry": viewer.registry_config(), "ledger": viewer.ledger_config()}
    history = build_history(index.events)
    check_attested_heads(w3, history["rounds"], check)
    check_against_views(w3, viewer, history, settings, check)
    check_beacon(
        viewer, deployment, index.events, history["rounds"], settings["ledger"]["quorum"], check
    )
    numbers = [r["round"] for r in history["rounds"]] if committee_setting(index.events) else []
    drawn = view_calls(w3, View(viewer.round_ledger, "committeeOf"), [(n,) for n in numbers])
    check_committee(
        index.events,
        history["rounds"],
        dict(zip(numbers, drawn, strict=True)),
        settings["ledger"]["quorum"],
        check,
    )
    check_ckks_roles(deployment, index.events, history["rounds"], check)
    history["incentives"] = award_history(index.events, deployment)
    for key, token in check_awards(
        w3, deployment, history, settings["ledger"]["quorum"], check
    ).items():
        ok, detail = code_matches(w3, token, artifacts["ContributionCredit"])
        check(
            f"code of {key}'s token matches contracts/ContributionCredit.sol",
            ok,
            f"{token}{detail}",
        )
    history["epsilon"] = epsilon_by_hospital(history)
    history["privacy"] = privacy_by_hospital(history)
    history["flags"] = check_figures(history, check)
    chain.update(
        head_block=index.last_block,
        head_hash="0x" + bytes(w3.eth.get_block(index.last_block)["hash"]).hex(),
    )
    return {
        "chain": chain,
        "settings": settings,
        **history,
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


def unread_report(chain: dict[str, Any], checks: list[dict[str, Any]]) -> dict[str, Any]:
    """A report whose history was not read because the chain or the deployment failed its
    integrity checks: the ``chain`` description and the ``checks``, no history."""
    return {
        "chain": chain,
        "settings": {},
        "identities": [],
        "rounds": [],
        "credits": {},
        "total_supply": 0,
        "checks": checks,
        "ok": False,
    }
