"""Subscriptions to control topics, and the fan-out that feeds them.

Sharp edges guarded here (numbers refer to docs/libp2p-pitfalls.md):

* #7 subscription buffers: the library hands each topic a 32-slot channel and
  drops (one log line) whatever does not fit. A drain task is not enough: a burst
  fills it within one scheduler batch, before the drain runs (measured: 80
  messages, dozens dropped). ``ControlPlane.subscribe`` puts a ``TopicFanout`` in
  the channel's place in ``Pubsub.subscribed_topics_send``; it delivers straight
  into per-subscriber channels of ``SUBSCRIPTION_BUFFER`` messages.
* #7 own messages: a publisher receives its own message; the fan-out drops them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from ._errors import GossipError
from ._logs import log
from ._stats import StatsRecorder

SUBSCRIPTION_BUFFER = 4096


@dataclass(frozen=True)
class ControlMessage:
    """One control message from another peer, as delivered to a subscriber."""

    from_peer: str
    data: bytes
    topic: str


class Subscription:
    """Async iterator of :class:`ControlMessage` on one topic.

    Use as ``async with await host.subscribe(t) as sub: async for m in sub: ...``
    or call :meth:`aclose` when done. Ends (``StopAsyncIteration``) when closed or
    when the host stops.
    """

    def __init__(
        self,
        topic: str,
        receive: trio.MemoryReceiveChannel[ControlMessage],
        on_close: Callable[[Subscription], Awaitable[None]],
    ) -> None:
        self.topic = topic
        self._receive = receive
        self._on_close = on_close
        self._closed = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ControlMessage:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def receive(self) -> ControlMessage:
        """The next message; raises :class:`GossipError` once the subscription ended."""
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise GossipError(f"subscription to {self.topic!r} has ended") from None

    async def aclose(self) -> None:
        """Stop receiving; unsubscribes from the topic when this was the last subscriber."""
        if self._closed:
            return
        self._closed = True
        await self._receive.aclose()
        await self._on_close(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()


class TopicFanout:
    """Takes the place of the library's 32-slot channel for one topic.

    ``Pubsub.notify_subscriptions`` calls ``send_nowait`` on it from the task that
    validated the message, so delivery into our subscribers' channels happens
    right there: no intermediate buffer, no drain task that a burst (many
    ``push_msg`` tasks in one scheduler batch) could outrun. ``Pubsub.unsubscribe``
    calls ``aclose``. Own messages are dropped here.
    """

    def __init__(self, topic: str, local_id: ID, stats: StatsRecorder, me: str) -> None:
        self.topic = topic
        self.subscribers: dict[Subscription, trio.MemorySendChannel[ControlMessage]] = {}
        self._local_id = local_id
        self._stats = stats
        self._me = me
        self._overflowing = False

    def send_nowait(self, msg: rpc_pb2.Message) -> None:
        origin = ID(msg.from_id)
        if origin == self._local_id or not self.subscribers:
            return
        item = ControlMessage(origin.to_base58(), bytes(msg.data), self.topic)
        delivered = False
        for sub, send in list(self.subscribers.items()):
            try:
                send.send_nowait(item)
                delivered = True
            except trio.WouldBlock:
                if not self._overflowing:
                    log.warning(
                        "[%s] a subscriber on %r is %d messages behind; dropping until it catches up",
                        self._me,
                        self.topic,
                        SUBSCRIPTION_BUFFER,
                    )
                self._overflowing = True
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.subscribers.pop(sub, None)
        if delivered:
            self._overflowing = False
            self._stats.add(control_received=1, control_bytes_received=len(item.data))

    def close(self) -> None:
        for send in self.subscribers.values():
            send.close()
        self.subscribers.clear()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()
