"""The audit, and the persistence of the embedded chain: a round is run here, the chain is
saved, and a new Python process rebuilds it from the file and audits it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ledger_support import LedgerSetup, h32, setup_on

from ledger import (
    LedgerError,
    advance_time,
    collect,
    connect,
    format_report,
    load_state,
    save_state,
)

REPO = Path(__file__).resolve().parents[2]
_AUDIT_CLI = (
    "import argparse, sys; from ledger.cli import register_commands; "
    "p = argparse.ArgumentParser(prog='medmesh'); register_commands(p.add_subparsers()); "
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)


def _history(s: LedgerSetup) -> None:
    """Round 1 finalized (3 of 4 accepted), round 2 failed (split vote), round 3 open."""
    a, b, c, d = s.hospitals
    r1 = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(r1, h32(f"r1-{i}"), 100 * (i + 1), 0.5 * (i + 1), i % 2)
    accepted = [a.address, b.address, c.address]
    for h in (a, b, c):
        h.attest(r1, h32("r1-aggregate"), accepted)
    d.attest(r1, h32("r1-other"), [d.address])
    d.finalize(r1)
    r2 = b.open_round()
    a.commit_update(r2, h32("r2-a"), 50, 1.0, 0)
    b.commit_update(r2, h32("r2-b"), 50, 1.0, 0)
    a.attest(r2, h32("r2-x"), [a.address])
    b.attest(r2, h32("r2-y"), [b.address])
    advance_time(s.w3, 2 * 3600 + 1)
    c.fail_round(r2)
    r3 = c.open_round()
    c.commit_update(r3, h32("r3-c"), 70, 2.0, 1)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "rounds": [
            (
                r["round"],
                r["status"],
                r["aggregate_hash"],
                r["finalized"],
                r["commits"],
                r["attestations"],
            )
            for r in report["rounds"]
        ],
        "credits": report["credits"],
        "identities": report["identities"],
    }


def test_audit_from_logs(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    _history(s)
    report = collect(s.w3, s.deployment)
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert [r["status"] for r in report["rounds"]] == ["finalized", "failed", "open"]
    r1 = report["rounds"][0]
    a, b, c, d = (h.address for h in s.hospitals)
    assert r1["aggregate_hash"] == "0x" + h32("r1-aggregate").hex() and r1["finalized"] is True
    assert r1["opener"] == a and r1["finalizer"] == d
    assert r1["commits"][1] == {
        "account": b,
        "peer_id": s.admin.identity(b).peer_id,  # type: ignore[union-attr]
        "update_hash": "0x" + h32("r1-1").hex(),
        "samples": 200,
        "epsilon": 1.0,
        "mode": 1,
    }
    assert [x["account"] for x in r1["attestations"]] == [a, b, c, d]
    assert r1["attestations"][3]["accepted"] == [d]
    assert sorted(r1["accepted"], key=str.lower) == sorted([a, b, c], key=str.lower)
    credits = {a: 100 * 10**18 // 6, b: 100 * 10**18 // 3, c: 100 * 10**18 // 2}
    assert r1["credited"] == credits and report["credits"] == dict(sorted(credits.items()))
    assert report["total_supply"] == sum(credits.values())
    assert (
        report["rounds"][1]["aggregate_hash"] is None and report["rounds"][1]["finalized"] is False
    )
    assert [x["update_hash"] for x in report["rounds"][2]["commits"]] == ["0x" + h32("r3-c").hex()]
    assert [i["status"] for i in report["identities"]] == ["active"] * 4
    assert report["chain"]["contracts"] == s.deployment.addresses
    assert all(c["ok"] for c in report["checks"] if c["check"].startswith("code of"))

    text = format_report(report)
    assert "Round 1: finalized" in text and "Round 2: failed" in text and "Round 3: open" in text
    assert f"{len(report['checks'])}/{len(report['checks'])} passed" in text
    json.dumps(report)  # JSON-ready


def test_chain_state_survives_the_process(tmp_path: Path, ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    _history(s)
    before = collect(s.w3, s.deployment)
    state = tmp_path / "chain.json"
    save_state(s.w3, state, s.deployment)
    assert [p.name for p in tmp_path.iterdir()] == ["chain.json"]  # written by rename, no temp left

    code = (
        "import json, sys; from ledger import connect, load_state, collect; "
        "w3 = connect(state_file=sys.argv[1]); _, dep = load_state(sys.argv[1]); "
        "print(json.dumps(collect(w3, dep)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(state)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    after = json.loads(run.stdout)
    assert after["ok"]
    assert _summary(after) == _summary(before)
    assert after["chain"]["head_block"] == before["chain"]["head_block"] == s.w3.eth.block_number

    cli = subprocess.run(
        [sys.executable, "-c", _AUDIT_CLI, "audit", "--chain-state", str(state)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert "Round 1: finalized" in cli.stdout and "checks" in cli.stdout.lower()


def test_a_restored_chain_keeps_going(tmp_path: Path, ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    _history(s)
    save_state(s.w3, tmp_path / "chain.json", s.deployment)
    w3, deployment = load_state(tmp_path / "chain.json")
    assert deployment == s.deployment
    assert w3.eth.get_block("latest")["hash"] == s.w3.eth.get_block("latest")["hash"]
    t = setup_on(w3, deployment)
    t.hospitals[3].commit_update(3, h32("r3-d"), 30, 2.5, 0)  # round 3 was open when saved
    assert set(t.admin.commitments(3)) == {t.hospitals[2].address, t.hospitals[3].address}
    assert len(s.admin.commitments(3)) == 1  # the original chain is untouched


def test_state_file_errors_are_one_line(tmp_path: Path, ledger_consortium: LedgerSetup) -> None:
    with pytest.raises(LedgerError, match="cannot read chain state"):
        load_state(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(LedgerError, match="is not a medmesh chain state"):
        connect(state_file=tmp_path / "other.json")
    save_state(ledger_consortium.w3, tmp_path / "ok.json", ledger_consortium.deployment)
    doc = json.loads((tmp_path / "ok.json").read_text())
    doc["store"]["data"] = doc["store"]["data"][:-40]
    (tmp_path / "torn.json").write_text(json.dumps(doc))
    with pytest.raises(LedgerError, match="is corrupt") as info:
        load_state(tmp_path / "torn.json")
    assert "\n" not in str(info.value)
    with pytest.raises(LedgerError, match="only for the embedded chain"):
        from web3 import Web3

        save_state(
            Web3(Web3.HTTPProvider("http://127.0.0.1:9")),
            tmp_path / "x.json",
            ledger_consortium.deployment,
        )


def test_audit_cli_reports_errors_on_stderr(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _AUDIT_CLI, "audit", "--chain-state", str(tmp_path / "nope.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert (
        run.stderr.startswith("medmesh audit: cannot read chain state")
        and run.stderr.count("\n") == 1
    )


def test_code_check_tells_metadata_from_code(ledger_deployed: LedgerSetup) -> None:
    from ledger import compile_contracts
    from ledger.wiring import code_matches

    s = ledger_deployed
    art = compile_contracts()["RoundLedger"]
    address = s.deployment.addresses["RoundLedger"]
    assert code_matches(s.w3, address, art) == (True, "")
    code = art["deployedBytecode"]
    other_metadata = {
        **art,
        "deployedBytecode": code[:-20] + ("0" if code[-20] != "0" else "1") + code[-19:],
    }
    ok, note = code_matches(s.w3, address, other_metadata)
    assert ok and "metadata differs" in note
    other_code = {
        **art,
        "deployedBytecode": code[:100] + ("0" if code[100] != "0" else "1") + code[101:],
    }
    assert code_matches(s.w3, address, other_code) == (
        False,
        " (the code differs from the compiled sources)",
    )
