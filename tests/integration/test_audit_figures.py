"""Issue 14, section 3, the audit's side: on the embedded chain and on anvil, the audit shows each
member's declared budget and its spend round by round, passes an honest history, and fails a
history that holds the figures an older contract accepted (sample counts of 2^64-1, an epsilon
of 0 or one that goes down, a rejection of an update the reporter itself accepted), naming each
in a FAIL line and exiting 2. The contracts' refusals: tests/integration/test_ledger_figures.py."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from ledger_support import (
    BUDGET,
    COHORT,
    LedgerSetup,
    h32,
)

from ledger import audit as audit_module
from ledger import is_embedded, save_state
from ledger.audit import build_history, expected_credits
from ledger.cli import register_commands
from ledger.figures import check_figures, privacy_by_hospital
from ledger.index import EventIndex

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

UINT64_MAX = 2**64 - 1


def _history_of(s: LedgerSetup) -> dict[str, Any]:
    """A finalized round 1 and an open round 2, rebuilt from the chain's logs like the audit does."""
    a, b, c, d = s.hospitals
    r1 = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(r1, h32(f"r1-{i}"), 100 * (i + 1), 0.42, 0)
    a.record_rejections(r1, {d.address: "hash-mismatch"})
    for h in (a, b, c):
        h.attest(r1, h32("agg"), [a.address, b.address, c.address])
    a.finalize(r1)
    r2 = b.open_round()
    for h in (a, b):
        h.commit_update(r2, h32(f"r2-{h.address}"), 50, 0.8, 0)
    history = build_history(EventIndex(s.w3, s.deployment).update().events)
    history["privacy"] = privacy_by_hospital(history)
    return history


def _failures(history: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    checks: list[dict[str, Any]] = []
    flags = check_figures(
        history,
        lambda name, ok, detail="": checks.append(
            {"check": name, "ok": bool(ok), "detail": detail}
        ),
    )
    return [c for c in checks if not c["ok"]], flags


def test_the_audit_shows_budgets_and_spend_and_passes_an_honest_history(
    ledger_consortium: LedgerSetup,
) -> None:
    s = ledger_consortium
    history = _history_of(s)
    a, b = s.hospitals[:2]
    assert history["privacy"][a.address] == {
        "budget": {**BUDGET.to_json(), "block": history["privacy"][a.address]["budget"]["block"]},
        "spend": [{"round": 1, "epsilon": 0.42}, {"round": 2, "epsilon": 0.8}],
    }
    failures, flags = _failures(history)
    assert failures == [] and flags == []


def test_the_audit_fails_on_figures_an_older_contract_accepted(
    ledger_consortium: LedgerSetup,
) -> None:
    """The history as a chain written before the contracts refused these figures would hold
    it: each breach fails a check whose line names it."""
    s = ledger_consortium
    a, b, c, d = s.hospitals
    honest = _history_of(s)
    forged = copy.deepcopy(honest)
    r1, r2 = forged["rounds"]
    r1["commits"][0]["samples"] = UINT64_MAX  # the 2^64-1 claim
    r2["commits"][1]["epsilon"] = 0.10  # b: 0.42 -> 0.10
    r1["rejections"].append(
        {"account": b.address, "reporter": c.address, "reason": 6, "reason_name": "robust-rule"}
    )
    forged["privacy"] = privacy_by_hospital(forged)
    failures, flags = _failures(forged)
    lines = {c["check"]: c["detail"] for c in failures}
    cohort = "round 1: every committed sample count is within its committer's declared cohort"
    own_set = "round 1: no member rejected an update in its own accepted set"
    spend = f"privacy spend of {b.address} never decreases and stays within its declared budget"
    assert lines == {
        cohort: f"{r1['commits'][0]['account']} claims {UINT64_MAX} samples, above its cohort {COHORT}",
        own_set: f"{c.address} rejected {b.address} (robust-rule) and accepted it",
        spend: "epsilon decreases in round 2 (0.42 -> 0.1)",
    }
    assert [f["account"] for f in flags] == [
        r1["commits"][0]["account"]
    ]  # also far above the median
    # credits recomputed on capped counts: the 2^64-1 claim weighs its cohort, not 2^64-1
    expected = expected_credits(
        {**r1, "accepted": [x["account"] for x in r1["commits"][:3]]},
        100,
        "samples",
        {i["account"]: i["cohort"] for i in forged["identities"]},
    )
    weights = [COHORT, 200, 300]
    assert list(expected.values()) == [100 * w // sum(weights) for w in weights]

    zero = copy.deepcopy(honest)
    zero["rounds"][0]["commits"][2]["epsilon"] = 0.0
    for budgetless in zero["identities"]:
        if budgetless["account"] == d.address:
            budgetless["privacy_budget"] = None
    zero["privacy"] = privacy_by_hospital(zero)
    details = sorted(c["detail"] for c in _failures(zero)[0])
    assert details == [
        "committed in round 1 without a declared privacy budget",
        "epsilon 0 in round 1 under a DP budget",
    ]


def test_medmesh_audit_exits_2_naming_the_breach(
    ledger_consortium: LedgerSetup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`medmesh audit`'s exit status and its FAIL line (text and --json), on a history doctored
    as an older contract would have let it be written."""
    s = ledger_consortium
    _history_of(s)
    real = audit_module.build_history

    def older_contract(events: list[dict[str, Any]]) -> dict[str, Any]:
        history = real(events)
        history["rounds"][1]["commits"][1]["epsilon"] = 0.10
        return history

    monkeypatch.setattr(audit_module, "build_history", older_contract)
    parser = argparse.ArgumentParser(prog="medmesh")
    register_commands(parser.add_subparsers())
    if is_embedded(s.w3):
        save_state(s.w3, tmp_path / "chain.json", s.deployment)
        source = ["--chain-state", str(tmp_path / "chain.json")]
    else:
        s.deployment.save(tmp_path / "deployment.json")
        source = [
            "--deployment",
            str(tmp_path / "deployment.json"),
            "--rpc",
            s.w3.provider.endpoint_uri,
            "--cache",
            "none",
        ]
    b = s.hospitals[1].address
    line = (
        f"FAIL privacy spend of {b} never decreases and stays within its declared budget "
        f"epsilon decreases in round 2 (0.42 -> 0.1)"
    )
    args = parser.parse_args(["audit", *source])
    assert args.func(args) == 2
    text = capsys.readouterr().out
    assert line in text.splitlines() or f"  {line}" in text.splitlines()
    assert "Privacy budgets and cumulative spend" in text
    args = parser.parse_args(["audit", *source, "--json"])
    assert args.func(args) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["privacy"][b]["spend"] == [
        {"round": 1, "epsilon": 0.42},
        {"round": 2, "epsilon": 0.1},
    ]
    assert report["privacy"][b]["budget"]["epsilon"] == BUDGET.epsilon
