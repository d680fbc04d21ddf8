"""Alerts on chain: a hospital records each alert its monitoring raised as a signed, hashed record.

With ``[monitoring] alerts_on_chain = true`` the node sends, for every alert of a round,
``RoundLedger.recordAlert(round, kind, keccak256(body))`` from its own account
(:meth:`ledger.client.LedgerClient.record_alert`): the transaction's signature names the hospital,
the event ``AlertRecorded`` is what ``medmesh audit alerts`` and the HTML report list. The body,
the alert's JSON (kind, round, subject, message, value, reporter), stays with the hospital in
``<state_dir>/alerts/round-<r>-<i>.json`` and in the ``alert_recorded`` log event, so an auditor
given it recomputes the hash (:func:`ledger.records.alert_body_hash`). Nothing on chain names a
patient or a row; the chain shows that an alert was raised and when, the body what it said.

Threat limit: recording is the hospital's choice. A member that hides an alert records nothing,
and one that invents alerts pays gas for noise; the record proves who said what and when, not
that the alert was right.
"""

from __future__ import annotations

import json
from pathlib import Path

from ledger.errors import LedgerError
from node.monitoring.alerts import Alert

__all__ = ["AlertRecorder"]


class AlertRecorder:
    """Records alerts through ``client`` (a :class:`~ledger.client.LedgerClient`), logs each
    record on ``events`` and keeps its body under ``directory``. Failures are logged, never raised:
    monitoring must not break a round."""

    def __init__(self, client, events, directory: Path | None) -> None:
        self.client, self.events, self.directory = client, events, directory

    def body(self, alert: Alert) -> dict:
        return {**alert.to_json(), "reporter": self.client.address}

    def record(self, round_: int, alerts: list[Alert]) -> list[str]:
        """Record ``alerts`` (raised in ``round_``); returns the body hashes recorded, 0x-hex."""
        hashes = []
        for index, alert in enumerate(alerts):
            body = self.body(alert)
            try:
                receipt, body_hash = self.client.record_alert(round_, alert.kind, body)
            except (LedgerError, ValueError) as exc:
                self.events.emit(
                    "alert_record_failed", round_, kind=alert.kind, error=str(exc)[:160]
                )
                continue
            digest = "0x" + body_hash.hex()
            hashes.append(digest)
            self.events.emit(
                "alert_recorded",
                round_,
                kind=alert.kind,
                body_hash=digest,
                tx="0x" + bytes(receipt["transactionHash"]).hex(),
                body=body,
            )
            if self.directory is not None:
                try:
                    self.directory.mkdir(parents=True, exist_ok=True)
                    (self.directory / f"round-{round_}-{index}.json").write_text(
                        json.dumps({"body": body, "body_hash": digest}, indent=2) + "\n",
                        encoding="utf-8",
                    )
                except OSError as exc:
                    self.events.emit(
                        "alert_record_failed", round_, kind=alert.kind, error=str(exc)[:160]
                    )
        return hashes
