"""Alerts on chain (issue 21): with ``[monitoring] alerts_on_chain = true`` a hospital's Monitor
records each alert it raised as ``RoundLedger.recordAlert`` (signed by its account, keccak-256 of
the alert's JSON body), and the audit lists it. Real EVM and compiled contracts (the embedded
chain); the Monitor raises a real drift alert from shifted rows."""

from __future__ import annotations

import io
import json

import numpy as np
from eth_utils import keccak
from ledger_support import LedgerSetup

from ledger.audit import collect, format_report
from ledger.views import alert_rows
from node.service.alert_records import AlertRecorder
from node.service.events import EventLog
from node.service.metrics import Monitor

POOLED_MEAN, POOLED_STD = np.array([10.0, 100.0, 0.5]), np.array([2.0, 30.0, 0.1])


def _publish_drift(s: LedgerSetup, state_dir, on_chain: bool):
    """Hospital 0 opens a round, its Monitor raises a drift alert and publishes it; returns the
    hospital's client, the round and the Monitor's log lines."""
    client = s.hospitals[0]
    rnd = client.open_round()
    stream = io.StringIO()
    monitor = Monitor("hospital-a", alerts_on_chain=on_chain)
    monitor.events = EventLog("hospital-a", json_lines=True, stream=stream)
    if on_chain:  # what Monitor.attach builds from the runner's client, events and state_dir
        monitor.recorder = AlertRecorder(client, monitor.events, state_dir / "alerts")
    rows = np.random.default_rng(0).normal(POOLED_MEAN, POOLED_STD, size=(80, 3))
    monitor.check_drift(1, rows, POOLED_MEAN, POOLED_STD)  # the baseline
    assert monitor.check_drift(
        1, rows * 1.3 + 0.5 * POOLED_STD, POOLED_MEAN, POOLED_STD
    )  # a scanner change
    monitor._publish_alerts(rnd)
    return client, rnd, [json.loads(line) for line in stream.getvalue().splitlines()]


def test_alert_is_recorded_signed_and_hashed_and_the_audit_lists_it(
    ledger_consortium: LedgerSetup, tmp_path
):
    s = ledger_consortium
    a, rnd, logged = _publish_drift(s, tmp_path, on_chain=True)
    recorded = [e for e in logged if e["event"] == "alert_recorded"]
    assert [e["kind"] for e in recorded] == ["drift"] and recorded[0]["round"] == rnd
    body = recorded[0]["body"]
    assert (
        body["kind"] == "drift"
        and body["reporter"] == a.address
        and "moved more than" in body["message"]
    )
    # the hash on chain is keccak-256 of the canonical JSON of the body the hospital keeps
    kept = json.loads((tmp_path / "alerts" / f"round-{rnd}-0.json").read_text())
    assert kept["body"] == body
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert kept["body_hash"] == recorded[0]["body_hash"] == "0x" + keccak(canonical).hex()

    report = collect(s.w3, s.deployment)
    assert alert_rows(report) == [
        {
            "round": rnd,
            "kind": "drift",
            "reporter": a.address,
            "peer_id": a.identity(a.address).peer_id,
            "body_hash": kept["body_hash"],
            "block": s.w3.eth.block_number,
        }
    ]
    assert "Alerts recorded on chain (1)" in format_report(report)


def test_alerts_stay_off_chain_by_default(ledger_consortium: LedgerSetup, tmp_path):
    s = ledger_consortium
    _, _, logged = _publish_drift(s, tmp_path, on_chain=False)
    assert any(e["event"] == "alert" for e in logged) and not any(
        e["event"] == "alert_recorded" for e in logged
    )
    assert alert_rows(collect(s.w3, s.deployment)) == []
    assert not (tmp_path / "alerts").exists()
