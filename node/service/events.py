"""A node's log: one line per event, naming the peer and the round.

Text (default)::

    2026-11-23T14:02:11Z [hospital-a r3] round_done finalized=True aggregate=9f2c... seconds=1.84

``--log-json`` writes the same events as JSON objects, one per line, with ``ts``, ``peer``,
``round`` (or null), ``event`` and the event's fields. Records from the ``medmesh`` and
``gossip`` loggers (the peer's pipeline, the libp2p layer) pass through the same sink as
``event: "log"`` with ``level`` and ``msg``, so a machine reads one stream.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["EventLog"]

_PREFIX = re.compile(r"^\[(?P<peer>[^\]\s]+)(?: r(?P<round>\d+))?\] (?P<msg>.*)$", re.S)


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


class EventLog:
    def __init__(
        self, peer: str, *, json_lines: bool = False, stream: TextIO | None = None
    ) -> None:
        self.peer = peer
        self.json_lines = json_lines
        self.stream = stream or sys.stdout
        self.listeners: list[
            Callable[[str, int | None, dict[str, Any]], None]
        ] = []  # e.g. the Monitor

    def emit(self, event: str, round: int | None = None, **fields: Any) -> None:
        ts = time.time()
        if self.json_lines:
            line = json.dumps(
                {"ts": round_ts(ts), "peer": self.peer, "round": round, "event": event, **fields},
                default=str,
                separators=(",", ":"),
            )
        else:
            where = f"[{self.peer}{'' if round is None else f' r{round}'}]"
            extra = " ".join(f"{k}={_short(v)}" for k, v in fields.items())
            line = f"{_stamp(ts)} {where} {event}" + (f" {extra}" if extra else "")
        print(line, file=self.stream, flush=True)
        for listener in self.listeners:
            try:
                listener(event, round, fields)
            except (
                Exception
            ) as exc:  # a listener's bug must not stop the node; it is logged once here
                print(
                    f"{_stamp(ts)} [{self.peer}] listener_error {type(exc).__name__}: {exc}",
                    file=sys.stderr,
                    flush=True,
                )

    def handler(self) -> logging.Handler:
        """A logging handler that turns library records into ``log`` events."""
        return _Handler(self)


def round_ts(ts: float) -> float:
    return float(f"{ts:.3f}")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ",".join(f"{k}:{_short(v)}" for k, v in value.items()) or "-"
    return str(value)


class _Handler(logging.Handler):
    def __init__(self, events: EventLog) -> None:
        super().__init__()
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # a malformed library log call must not kill the node
            msg = str(record.msg)
        match = _PREFIX.match(msg)
        rnd = None
        if match and match["peer"] == self.events.peer:
            rnd = int(match["round"]) if match["round"] else None
            msg = match["msg"]
        self.events.emit(
            "log", rnd, level=record.levelname.lower(), logger=record.name, msg=msg.splitlines()[0]
        )
