"""The audit's quorum checks (issue 14, section 1): the round's membership is the registry's
Active set when it opened, every attester belonged to it, and a finalization's quorum counts
only members still in good standing. The contracts refuse these breaches, so the breaches are
made here the way a forged or rogue history would show them: by editing the decoded events of
a real round before the audit reads them."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from ledger_support import LedgerSetup, h32

import ledger.audit as audit
from ledger import collect, save_state
from ledger.cli import register_commands
from ledger.index import EventIndex


def _round(s: LedgerSetup) -> None:
    """Round 1: everyone commits, a, b and c attest the same pair (3 of 4), d finalizes."""
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(rnd, h32(f"u{i}"), 100, 0.5, 1)
    for h in (a, b, c):
        h.attest(rnd, h32("agg"), [x.address for x in s.hospitals])
    d.finalize(rnd)


def _events(s: LedgerSetup) -> list[dict[str, Any]]:
    return [dict(ev) for ev in EventIndex(s.w3, s.deployment).update().events]


def _at(events: list[dict[str, Any]], name: str) -> int:
    return next(i for i, ev in enumerate(events) if ev["event"] == name)


def _revoked_before_finalization(
    events: list[dict[str, Any]], account: str
) -> list[dict[str, Any]]:
    """``account`` revoked between the last attestation and the finalization."""
    at = _at(events, "RoundFinalized")
    fake = {
        "contract": "HospitalRegistry",
        "event": "Revoked",
        "block": events[at]["block"],
        "tx": "0xforged",
        "args": {"account": account, "previousStatus": 2, "votes": 3},
    }
    return [*events[:at], fake, *events[at:]]


def _admitted_after_opening(events: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    """``account``'s admission moved after the round's opening."""
    admitted = next(
        ev for ev in events if ev["event"] == "Admitted" and ev["args"]["account"] == account
    )
    rest = [ev for ev in events if ev is not admitted]
    at = _at(rest, "RoundOpened") + 1
    return [*rest[:at], admitted, *rest[at:]]


def _quorum_checks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    history = audit.build_history(events)
    for r in history["rounds"]:
        audit.check_round_quorum(
            r,
            (2, 3),
            lambda name, ok, detail="": checks.append({"check": name, "ok": ok, "detail": detail}),
        )
    return checks


def test_the_quorum_checks_pass_on_an_honest_round(ledger_consortium: LedgerSetup) -> None:
    _round(ledger_consortium)
    checks = _quorum_checks(_events(ledger_consortium))
    assert checks and all(c["ok"] for c in checks), checks
    names = [c["check"] for c in checks]
    assert "round 1: its quorum is over the 4 members Active when it opened" in names
    assert (
        "round 1: the winner had 3 votes of members in good standing, > 2/3 of its 4 members"
        in names
    )


def test_a_vote_by_a_revoked_member_fails_the_audit(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    _round(s)
    a = s.hospitals[0].address
    failed = [c for c in _quorum_checks(_revoked_before_finalization(_events(s), a)) if not c["ok"]]
    assert [c["check"] for c in failed] == [
        "round 1: the winner had 2 votes of members in good standing, > 2/3 of its 4 members"
    ]
    assert a in failed[0]["detail"] and "not in good standing" in failed[0]["detail"]


def test_a_vote_by_a_member_admitted_after_opening_fails_the_audit(
    ledger_consortium: LedgerSetup,
) -> None:
    s = ledger_consortium
    _round(s)
    b = s.hospitals[1].address
    failed = {
        c["check"]: c["detail"]
        for c in _quorum_checks(_admitted_after_opening(_events(s), b))
        if not c["ok"]
    }
    assert set(failed) == {
        "round 1: its quorum is over the 4 members Active when it opened",
        "round 1: every attester was a member when the round opened",
        "round 1: the winner had 2 votes of members in good standing, > 2/3 of its 4 members",
    }
    assert (
        failed["round 1: every attester was a member when the round opened"]
        == f"not members at opening: {b}"
    )


def test_medmesh_audit_exits_2_naming_the_revoked_vote(
    ledger_consortium: LedgerSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ledger_consortium
    _round(s)
    assert collect(s.w3, s.deployment)["ok"]
    state = tmp_path / "chain.json"
    save_state(s.w3, state, s.deployment)
    a = s.hospitals[0].address
    real = audit.build_history
    monkeypatch.setattr(
        audit, "build_history", lambda events: real(_revoked_before_finalization(events, a))
    )
    parser = argparse.ArgumentParser(prog="medmesh")
    register_commands(parser.add_subparsers())
    args = parser.parse_args(["audit", "--chain-state", str(state), "--cache", "none"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = args.func(args)
    assert code == 2
    fails = [line for line in out.getvalue().splitlines() if line.startswith("  FAIL ")]
    # the forged revocation also disagrees with the registry's state, which the audit reports too
    assert fails[-1] == (
        "  FAIL round 1: the winner had 2 votes of members in good standing, > 2/3 of its 4 members "
        f"the finalization counted 3; votes of members not in good standing at finalization or not members "
        f"at opening: {a}"
    )
    assert fails[:-1] == [
        line for line in fails if "identity" in line and "matches the registry" in line
    ]
