"""What one round left behind for one peer (:class:`RoundOutcome`), and the peer's log, which
prefixes every line with the peer's name and the round (:class:`PeerLog`)."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PeerLog", "RoundOutcome"]


@dataclass
class RoundOutcome:
    round: int
    finalized: bool = False
    aggregate_hash: str | None = None
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    epsilon: float = 0.0
    samples: int = 0
    error: str | None = None
    revealed: str | None = (
        None  # why the blob was released (node.peer.reveal): all-committed | window-closed
    )
    held_s: float = 0.0  # seconds between this peer's commit and the release of its blob


class PeerLog(logging.LoggerAdapter):
    """``[name rN] message``: a ``round=`` keyword on any call names the round."""

    def __init__(self, logger: logging.Logger, peer: str) -> None:
        super().__init__(logger, {"peer": peer})
        self.peer = peer

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        rnd = kwargs.pop("round", None)
        where = f"[{self.peer}{'' if rnd is None else f' r{rnd}'}]"
        return f"{where} {msg}", kwargs
