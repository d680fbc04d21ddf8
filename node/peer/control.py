"""The peer's control plane: the round topic's hints and the background nursery.

:class:`ControlTopics` subscribes to the round and set-up topics (:mod:`node.consensus.protocol`),
publishes this peer's own hints (a round opened, an update committed, an aggregate attested)
and turns every valid hint into a wake-up (:meth:`ControlTopics.chain_hint`). A hint only
says when to read the chain again, never what it holds: the chain is the truth. It also holds
the nursery the peer's background tasks run in (update transfers, relays, answers).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from node.consensus import protocol

if TYPE_CHECKING:
    from gossip import Transport
    from node.peer.outcome import PeerLog

__all__ = ["ControlTopics"]


class ControlTopics:
    """The round topic's hints, and the background nursery (set while :meth:`serve` runs)."""

    def __init__(self, host: Transport, log: PeerLog) -> None:
        self.host = host
        self.log = log
        self.background: trio.Nursery | None = None
        self._chain_changed = trio.Event()

    async def serve(
        self,
        setup_listener: Callable[[AsyncIterable[Any]], Awaitable[None]],
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen to the control topics until cancelled (the set-up topic's messages go to
        ``setup_listener``)."""
        async with trio.open_nursery() as nursery:
            self.background = nursery
            rounds = await self.host.subscribe(protocol.ROUND_TOPIC)
            setup = await self.host.subscribe(protocol.SETUP_TOPIC)
            nursery.start_soon(self._listen_rounds, rounds)
            nursery.start_soon(setup_listener, setup)
            task_status.started()

    async def _listen_rounds(self, subscription: AsyncIterable[Any]) -> None:
        async for msg in subscription:
            try:
                protocol.decode(msg.data)
            except protocol.ControlError as exc:
                self.log.warning("dropped control message from %s: %s", msg.from_peer[:12], exc)
                continue
            self.poke()

    def chain_hint(self) -> trio.Event:
        """The event the next round-topic hint sets (a round opened, an update committed, an
        aggregate attested). Take it *before* reading the chain, then wait on it with a poll
        interval as the bound: a hint only says when to read the chain again, never what it holds,
        and one that arrives between the read and the wait is not missed (issue 22)."""
        return self._chain_changed

    def poke(self) -> None:
        """A chain hint: wake whoever waits on :meth:`chain_hint`."""
        self._chain_changed.set()
        self._chain_changed = trio.Event()

    async def announce(self, msg: protocol.ControlMessage) -> None:
        """Publish a hint on the round topic (best effort), and wake this peer's own waits."""
        try:
            await self.host.publish(protocol.ROUND_TOPIC, protocol.encode(msg))
        except Exception as exc:  # hints are best effort; the chain is the truth
            self.log.warning("could not publish %s: %s", type(msg).__name__, exc)
        self.poke()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the background nursery (the peer must be serving)."""
        if self.background is None:
            raise RuntimeError("peer is not serving")
        self.background.start_soon(fn, *args)
