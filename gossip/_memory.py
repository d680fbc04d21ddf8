"""An in-process network: :class:`MemoryHost` offers :class:`PeerHost`'s interface without
sockets, so the real round pipeline runs for hundreds of members in one process
(``medmesh simulate``).

What it keeps from the real host: the member's peer ID (derived from the same 32-byte seed),
the ``authorize`` gate on both ends of every blob and control message, the size limits, the
blob handler's ok / reject answer, own messages not echoed back, and :class:`GossipStats`
counted exactly as ``_stats`` defines them (payload bytes, once per publish on the sender and
once per delivered message on a receiver). What it drops: Noise, Yamux and GossipSub
themselves. A control message reaches every subscribed member directly, as in a full mesh with
no forwarding, so the counters equal a real host's payload counters, not its wire bytes
(``scripts/bench_gossip_degree.py`` measures GossipSub's overhead on top).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import trio
from libp2p.peer.id import ID

from ._blobs import BlobHandler, default_timeout
from ._errors import (
    BlobRejected,
    BlobTooLarge,
    BlobTransferError,
    ControlMessageTooLarge,
    GossipError,
    PeerNotAuthorized,
    RemoteBlobTooLarge,
    TopicNotReady,
)
from ._frame import Reason
from ._logs import log, one_line, short
from ._stack import check_limits, identity_from_seed
from ._stats import GossipStats, StatsRecorder
from ._subscriptions import SUBSCRIPTION_BUFFER, ControlMessage, Subscription

__all__ = ["MemoryHost", "MemoryNetwork"]


class MemoryNetwork:
    """The members' shared medium: who is running and who subscribes to what."""

    def __init__(self) -> None:
        self.hosts: dict[str, MemoryHost] = {}
        self._subscribers: dict[str, set[str]] = defaultdict(set)
        self._changed = trio.Event()

    def host(self, key_seed: bytes, **kwargs) -> MemoryHost:
        """A new member on this network (``kwargs`` as :class:`MemoryHost`'s)."""
        return MemoryHost(self, key_seed, **kwargs)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def subscribed(self, topic: str) -> set[str]:
        return self._subscribers[topic]


class MemoryHost:
    """One member on a :class:`MemoryNetwork`; the same methods as :class:`~gossip.PeerHost`.

    :param authorize: as :class:`PeerHost`'s, consulted for every inbound blob and control
        message (origin) and before sending a blob; None allows everyone.
    :param max_blob_bytes: largest blob sent or accepted.
    :param max_control_bytes: largest control message published or accepted.
    """

    def __init__(
        self,
        network: MemoryNetwork,
        key_seed: bytes,
        *,
        authorize: Callable[[str], bool] | None = None,
        max_blob_bytes: int = 64 * 2**20,
        max_control_bytes: int = 64 * 2**10,
    ) -> None:
        check_limits(max_blob_bytes, max_control_bytes)
        self._network = network
        self.peer_id: str = ID.from_pubkey(identity_from_seed(key_seed).public_key).to_base58()
        self._me = short(self.peer_id)
        self._authorize = authorize
        self.max_blob_bytes = max_blob_bytes
        self.max_control_bytes = max_control_bytes
        self._stats = StatsRecorder()
        self._handler: BlobHandler | None = None
        self._feeds: dict[str, dict[Subscription, trio.MemorySendChannel[ControlMessage]]] = {}
        self._connected: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self._started = False

    # -- lifecycle and peers -----------------------------------------------------------
    @property
    def stats(self) -> GossipStats:
        """Payload byte counters (snapshot), as :class:`GossipStats` defines them."""
        return self._stats.snapshot

    @property
    def listen_addrs(self) -> list[str]:
        return [f"/memory/p2p/{self.peer_id}"] if self._nursery is not None else []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[MemoryHost]:
        """Join the network; leave it (ending every subscription) on exit."""
        if self._started:
            raise GossipError("a host runs once; create a new one to restart")
        self._started = True
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._network.hosts[self.peer_id] = self
            try:
                yield self
            finally:
                self._nursery = None
                self._network.hosts.pop(self.peer_id, None)
                for topic, feed in self._feeds.items():
                    self._network.subscribed(topic).discard(self.peer_id)
                    for send in feed.values():
                        send.close()
                self._feeds.clear()
                nursery.cancel_scope.cancel()

    def _allows(self, peer_id: str) -> bool:
        if self._authorize is None:
            return True
        try:
            return bool(self._authorize(peer_id))
        except Exception as exc:
            log.warning("[%s] authorize(%s) raised: %s", self._me, short(peer_id), one_line(exc))
            return False

    def _require_running(self) -> trio.Nursery:
        if self._nursery is None:
            raise GossipError("host is not running; use `async with host.running():`")
        return self._nursery

    def _remote(self, peer_id: str) -> MemoryHost:
        remote = self._network.hosts.get(peer_id)
        if remote is None or remote._nursery is None:
            raise BlobTransferError(f"peer {short(peer_id)} is not reachable")
        return remote

    async def connect(self, multiaddr: str) -> str:
        """ "Dial" ``/memory/p2p/<id>``: both ends then list each other as connected."""
        self._require_running()
        remote_id = multiaddr.rsplit("/", 1)[-1]
        if remote_id == self.peer_id:
            raise GossipError("refusing to connect to ourselves")
        if not self._allows(remote_id):
            raise PeerNotAuthorized(f"peer {short(remote_id)} is not authorized")
        remote = self._network.hosts.get(remote_id)
        if remote is None or not remote._allows(self.peer_id):
            raise GossipError(f"could not connect to peer {short(remote_id)}")
        self._connected.add(remote_id)
        remote._connected.add(self.peer_id)
        await trio.lowlevel.checkpoint()
        return remote_id

    def connected_peers(self) -> list[str]:
        return [p for p in self._connected if p in self._network.hosts]

    # -- control messages --------------------------------------------------------------
    async def publish(self, topic: str, data: bytes) -> None:
        """Hand ``data`` to every other running member subscribed to ``topic`` that accepts us."""
        self._require_running()
        if len(data) > self.max_control_bytes:
            raise ControlMessageTooLarge(
                f"control message of {len(data)} bytes exceeds max_control_bytes={self.max_control_bytes}"
            )
        item = ControlMessage(self.peer_id, bytes(data), topic)
        for peer_id in sorted(self._network.subscribed(topic) - {self.peer_id}):
            remote = self._network.hosts.get(peer_id)
            if remote is not None:
                remote._deliver(item)
        self._stats.add(control_sent=1, control_bytes_sent=len(data))
        await trio.lowlevel.checkpoint()

    def _deliver(self, item: ControlMessage) -> None:
        if len(item.data) > self.max_control_bytes or not self._allows(item.from_peer):
            self._stats.add(control_rejected=1)
            return
        delivered = False
        for send in list(self._feeds.get(item.topic, {}).values()):
            try:
                send.send_nowait(item)
                delivered = True
            except trio.WouldBlock:
                log.warning("[%s] a subscriber on %r is behind; dropped", self._me, item.topic)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        if delivered:
            self._stats.add(control_received=1, control_bytes_received=len(item.data))

    async def subscribe(self, topic: str) -> Subscription:
        self._require_running()
        send, receive = trio.open_memory_channel[ControlMessage](SUBSCRIPTION_BUFFER)
        sub = Subscription(topic, receive, self._unsubscribe)
        self._feeds.setdefault(topic, {})[sub] = send
        self._network.subscribed(topic).add(self.peer_id)
        self._network._notify()
        await trio.lowlevel.checkpoint()
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        feed = self._feeds.get(sub.topic, {})
        send = feed.pop(sub, None)
        if send is not None:
            send.close()
        if not feed:
            self._feeds.pop(sub.topic, None)
            self._network.subscribed(sub.topic).discard(self.peer_id)
        await trio.lowlevel.checkpoint()

    async def wait_topic_peers(
        self, topic: str, peer_ids: Iterable[str], timeout: float = 10.0
    ) -> None:
        """Return once every peer in ``peer_ids`` subscribes to ``topic``."""
        self._require_running()
        targets = set(peer_ids)
        with trio.move_on_after(timeout):
            while not targets <= self._network.subscribed(topic):
                await self._network._wait_change()
        missing = targets - self._network.subscribed(topic)
        if missing:
            raise TopicNotReady(
                f"topic {topic!r}: {len(missing)} peer(s) not subscribed after {timeout:g} s: "
                + ", ".join(sorted(short(p) for p in missing))
            )

    # -- blobs -------------------------------------------------------------------------
    def on_blob(self, handler: BlobHandler) -> None:
        """Register ``async handler(from_peer, kind, data)``; raising in it rejects the blob."""
        self._handler = handler

    async def send_blob(
        self, peer_id: str, data: bytes, *, kind: str = "update", timeout: float | None = None
    ) -> None:
        """Run ``peer_id``'s blob handler on ``data`` (in its own task group); return once it
        accepted. Raises as :meth:`PeerHost.send_blob` does."""
        self._require_running()
        if len(data) > self.max_blob_bytes:
            raise BlobTooLarge(
                f"blob of {len(data)} bytes exceeds max_blob_bytes={self.max_blob_bytes}"
            )
        if not self._allows(peer_id):
            raise PeerNotAuthorized(f"peer {short(peer_id)} is not authorized to receive blobs")
        remote = self._remote(peer_id)
        outcome: list[BaseException | None] = []
        done = trio.Event()
        remote._require_running().start_soon(
            remote._receive, self.peer_id, kind, data, outcome, done
        )
        with trio.move_on_after(default_timeout(len(data)) if timeout is None else timeout):
            await done.wait()
        if not done.is_set():
            self._stats.add(blobs_failed=1)
            raise BlobTransferError(f"blob to {short(peer_id)} timed out")
        if outcome and outcome[0] is not None:
            self._stats.add(blobs_failed=1)
            raise outcome[0]
        self._stats.add(blobs_sent=1, blob_bytes_sent=len(data))

    async def _receive(
        self,
        sender: str,
        kind: str,
        data: bytes,
        outcome: list[BaseException | None],
        done: trio.Event,
    ) -> None:
        try:
            outcome.append(await self._accept(sender, kind, data))
        finally:
            done.set()

    async def _accept(self, sender: str, kind: str, data: bytes) -> BaseException | None:
        if not self._allows(sender):
            return BlobTransferError(f"peer {short(self.peer_id)} refused the stream")
        if len(data) > self.max_blob_bytes:
            self._stats.add(blobs_rejected=1)
            return RemoteBlobTooLarge(
                f"peer {short(self.peer_id)} refused a blob of {len(data)} bytes "
                f"(its max_blob_bytes={self.max_blob_bytes})",
                code=int(Reason.TOO_LARGE),
                reason="too large",
            )
        if self._handler is None:
            self._stats.add(blobs_rejected=1)
            return BlobRejected(
                f"peer {short(self.peer_id)} takes no blobs",
                code=int(Reason.NO_HANDLER),
                reason="no handler",
            )
        try:
            await self._handler(sender, kind, data)
        except Exception as exc:
            self._stats.add(blobs_rejected=1)
            log.info(
                "[%s] rejected %s blob from [%s]: %s", self._me, kind, short(sender), one_line(exc)
            )
            return BlobRejected(
                f"peer {short(self.peer_id)} rejected the blob: {one_line(exc)}",
                code=int(Reason.HANDLER_ERROR),
                reason=one_line(exc),
            )
        self._stats.add(blobs_received=1, blob_bytes_received=len(data))
        return None
