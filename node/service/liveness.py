"""Keeping a node connected: dial the configured peers, back off on failures, notice departures.

Each tick compares the connected peer set with the last one and reports ``peer_joined`` /
``peer_left``. A configured peer that is not connected is dialed when its retry time has come;
a failed dial doubles its delay (from ``initial`` up to ``maximum``), a connection resets it.
Peers ``allowed`` refuses (not registered, revoked) are not dialed at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import trio

from gossip import GossipError, PeerHost
from node.service.events import EventLog

__all__ = ["Backoff", "PeerKeeper"]

TICK_S = 0.25


@dataclass
class Backoff:
    """Exponential backoff: ``initial``, doubled per failure, capped at ``maximum``."""

    initial: float
    maximum: float
    delay: float = 0.0
    next_at: float = 0.0

    def failed(self, now: float) -> float:
        self.delay = self.initial if self.delay == 0 else min(self.delay * 2, self.maximum)
        self.next_at = now + self.delay
        return self.delay

    def reset(self) -> None:
        self.delay, self.next_at = 0.0, 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at


class PeerKeeper:
    def __init__(
        self,
        host: PeerHost,
        bootstrap: tuple[str, ...],
        events: EventLog,
        *,
        allowed: Callable[[str], bool],
        initial: float,
        maximum: float,
        dial_timeout: float,
    ) -> None:
        self.host = host
        self.targets = {addr.rsplit("/p2p/", 1)[1]: addr for addr in bootstrap}
        self.targets.pop(host.peer_id, None)
        self.events = events
        self.allowed = allowed
        self.backoff = {pid: Backoff(initial, maximum) for pid in self.targets}
        self.dial_timeout = dial_timeout
        self.connected: set[str] = set()

    async def run(self) -> None:
        while True:
            self._notice()
            now = trio.current_time()
            for pid, addr in self.targets.items():
                if pid in self.connected:
                    self.backoff[pid].reset()
                elif self.allowed(pid) and self.backoff[pid].due(now):
                    await self._dial(pid, addr)
            await trio.sleep(
                TICK_S
            )  # liveness is a periodic check: libp2p has no disconnect event here

    def _notice(self) -> None:
        now = set(self.host.connected_peers())
        for pid in sorted(now - self.connected):
            self.events.emit("peer_joined", peer_id=pid)
        for pid in sorted(self.connected - now):
            self.events.emit("peer_left", peer_id=pid)
        self.connected = now

    async def _dial(self, pid: str, addr: str) -> None:
        try:
            with trio.fail_after(self.dial_timeout):
                await self.host.connect(addr)
        except (GossipError, trio.TooSlowError) as exc:
            retry = self.backoff[pid].failed(trio.current_time())
            self.events.emit("dial_failed", peer_id=pid, retry_in=retry, error=str(exc)[:160])
            return
        self.backoff[pid].reset()
        self._notice()
