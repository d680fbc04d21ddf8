"""Control messages over GossipSub: publish, subscribe, mesh readiness, validation.

Sharp edges guarded here (numbers refer to docs/libp2p-pitfalls.md):

* #7 subscription buffers and own messages: see ``_subscriptions``.
* Outbound queues: each peer's outbound RPC queue also holds only 32 RPCs and
  drops at DEBUG level when full (``RpcQueue``/``send_rpc``), so a burst of
  publishes could vanish silently. ``publish`` waits until every peer's queue is
  below ``OUTBOUND_HIGH_WATER`` before handing the message over.
* Subscribe race: a peer whose pubsub stream is being set up while we subscribe
  never hears of the topic; see ``ControlPlane._reannounce``.
* Authorization: a topic validator checks the signed origin (``msg.from_id``,
  verified by strict signing before validators run) and the forwarding peer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.subscription import TrioSubscriptionAPI

from ._errors import ControlMessageTooLarge, GossipError, TopicNotReady
from ._logs import log, short
from ._stats import StatsRecorder
from ._subscriptions import SUBSCRIPTION_BUFFER, ControlMessage, Subscription, TopicFanout

OUTBOUND_HIGH_WATER = 24
OUTBOUND_WAIT_S = 5.0
REANNOUNCE_WAIT_S = 30.0
_POLL_S = 0.005


class ControlPlane:
    """Publish/subscribe on top of one ``Pubsub``/``GossipSub`` pair."""

    def __init__(
        self,
        pubsub: Pubsub,
        router: GossipSub,
        local_id: ID,
        stats: StatsRecorder,
        max_control_bytes: int,
        is_authorized: Callable[[str, str], bool],
    ) -> None:
        self._pubsub = pubsub
        self._router = router
        self._local_id = local_id
        self._me = short(local_id.to_base58())
        self._stats = stats
        self._max = max_control_bytes
        self._is_authorized = is_authorized
        self._feeds: dict[str, TopicFanout] = {}
        self._validated: set[str] = set()
        self._nursery: trio.Nursery | None = None

    def start(self, nursery: trio.Nursery) -> None:
        """Accept subscriptions; background repairs run in ``nursery``."""
        self._nursery = nursery

    def stop(self) -> None:
        """End every subscription (their iterators stop); the host is shutting down."""
        self._nursery = None
        for fanout in self._feeds.values():
            fanout.close()
        self._feeds.clear()

    # -- validation --------------------------------------------------------

    def _ensure_validator(self, topic: str) -> None:
        if topic not in self._validated:
            self._pubsub.set_topic_validator(topic, self._validate, is_async_validator=False)
            self._validated.add(topic)

    def _validate(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        ok = self._check(forwarder, msg)
        if not ok:
            self._stats.add(control_rejected=1)
        return ok

    def _check(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        try:
            origin = ID(msg.from_id)
        except Exception:
            return False
        if origin == self._local_id:
            return True
        if len(msg.data) > self._max:
            log.warning(
                "[%s] dropped control message of %d bytes from [%s] (max_control_bytes=%d)",
                self._me,
                len(msg.data),
                short(origin.to_base58()),
                self._max,
            )
            return False
        if not self._is_authorized(origin.to_base58(), "pubsub message"):
            return False
        if forwarder != self._local_id and forwarder != origin:
            return self._is_authorized(forwarder.to_base58(), "pubsub forward")
        return True

    # -- publish -------------------------------------------------------------

    async def publish(self, topic: str, data: bytes) -> None:
        """Sign and publish ``data`` on ``topic``."""
        if len(data) > self._max:
            raise ControlMessageTooLarge(
                f"control message of {len(data)} bytes exceeds max_control_bytes={self._max}"
            )
        self._ensure_validator(topic)
        await self._wait_outbound_room()
        await self._pubsub.publish(topic, bytes(data))
        self._stats.add(control_sent=1, control_bytes_sent=len(data))

    async def _wait_outbound_room(self) -> None:
        deadline = trio.current_time() + OUTBOUND_WAIT_S
        while True:
            full = [p for p, q in self._pubsub.peer_queues.items() if len(q) >= OUTBOUND_HIGH_WATER]
            if not full:
                return
            if trio.current_time() >= deadline:
                log.warning(
                    "[%s] outbound queue still full for %s after %.0f s; publishing anyway",
                    self._me,
                    ", ".join(short(p.to_base58()) for p in full),
                    OUTBOUND_WAIT_S,
                )
                return
            await trio.sleep(_POLL_S)

    # -- subscribe -----------------------------------------------------------

    async def subscribe(self, topic: str) -> Subscription:
        """A new :class:`Subscription` to ``topic`` (joins the topic on first use)."""
        if self._nursery is None:
            raise GossipError("host is not running; use `async with host.running():`")
        self._ensure_validator(topic)
        fanout = self._feeds.get(topic)
        if fanout is None:
            announced_to = set(self._pubsub.peers)
            library_sub = await self._pubsub.subscribe(topic)
            if not isinstance(library_sub, TrioSubscriptionAPI):  # what py-libp2p 0.8 returns
                raise GossipError(
                    f"topic {topic!r}: py-libp2p gave a {type(library_sub).__name__}, "
                    "not the TrioSubscriptionAPI whose channel the fan-out takes over"
                )
            fanout = TopicFanout(topic, self._local_id, self._stats, self._me)
            # Hand over whatever arrived during subscribe()'s awaits, then take the
            # library's place; no await in between, so nothing slips past.
            while True:
                try:
                    fanout.send_nowait(library_sub.receive_channel.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            self._pubsub.subscribed_topics_send[topic] = fanout  # type: ignore[assignment]
            self._feeds[topic] = fanout
            in_flight = {
                p for p in self._pubsub.host.get_connected_peers() if p not in announced_to
            }
            if in_flight:
                self._nursery.start_soon(self._reannounce, topic, in_flight)
        send, receive = trio.open_memory_channel[ControlMessage](SUBSCRIPTION_BUFFER)
        sub = Subscription(topic, receive, self._close_subscription)
        fanout.subscribers[sub] = send
        log.debug("[%s] subscribed to %r", self._me, topic)
        return sub

    async def _close_subscription(self, sub: Subscription) -> None:
        fanout = self._feeds.get(sub.topic)
        if fanout is None or sub not in fanout.subscribers:
            return
        fanout.subscribers.pop(sub).close()
        if not fanout.subscribers:
            del self._feeds[sub.topic]
            if self._nursery is not None:
                await self._pubsub.unsubscribe(sub.topic)

    async def _reannounce(self, topic: str, peers: set[ID]) -> None:
        """Tell ``peers`` about ``topic`` once their pubsub stream is registered.

        py-libp2p race: ``Pubsub._handle_new_peer`` builds the hello (our topic
        list) before its ``await stream.write`` and registers the peer after it;
        ``subscribe`` announces only to registered peers. A peer in that window
        never learns the topic (seen on this machine under load: all 3 peers of a
        4-host mesh missing after 15 s). Duplicate announcements are harmless.
        """

        async def one(peer: ID) -> None:
            try:
                await self._pubsub.wait_for_peer(peer, timeout=REANNOUNCE_WAIT_S)
            except trio.TooSlowError:
                return
            queue = self._pubsub.peer_queues.get(peer)
            if queue is not None and topic in self._pubsub.topic_ids:
                sub = rpc_pb2.RPC.SubOpts(subscribe=True, topicid=topic)
                queue.push(rpc_pb2.RPC(subscriptions=[sub]))

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(one, peer)

    # -- readiness -----------------------------------------------------------

    async def wait_topic_peers(self, topic: str, peer_ids: Iterable[str], timeout: float) -> None:
        """Return once every peer in ``peer_ids`` will receive our messages on ``topic``.

        In a full mesh (``degree_low`` at least the number of targets) and subscribed,
        that means the peer is in our GossipSub mesh for the topic
        (``Pubsub.wait_for_mesh``, event-driven). Otherwise (publish-only, or a partial
        mesh whose members reach the others through their own meshes) it means that the
        peer announced its subscription to us (``wait_for_subscription``) and, when we
        are subscribed, that our mesh holds ``min(degree_low, targets)`` peers.
        Raises :class:`TopicNotReady` after ``timeout`` seconds.
        """
        targets = {ID.from_base58(p) for p in peer_ids}
        subscribed = topic in self._pubsub.topic_ids
        full = self._router.degree_low >= len(targets)
        waiting = set(targets)

        async def wait_one(peer: ID) -> None:
            if subscribed and full:
                await self._pubsub.wait_for_mesh(peer, topic, timeout=math.inf)
            else:
                await self._pubsub.wait_for_subscription(peer, topic, timeout=math.inf)
            waiting.discard(peer)

        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                for peer in targets:
                    nursery.start_soon(wait_one, peer)
                if subscribed and not full:
                    nursery.start_soon(
                        self._wait_mesh_size, topic, min(self._router.degree_low, len(targets))
                    )
        short_mesh = (
            subscribed
            and not full
            and len(self._router.mesh.get(topic, ())) < min(self._router.degree_low, len(targets))
        )
        if short_mesh and not waiting:
            raise TopicNotReady(
                f"topic {topic!r}: our mesh holds {len(self._router.mesh.get(topic, ()))} peer(s), "
                f"below degree_low={self._router.degree_low}, after {timeout:g} s"
            )
        if waiting:
            where = "mesh" if subscribed else "subscriber list"
            raise TopicNotReady(
                f"topic {topic!r}: {len(waiting)} peer(s) not in the {where} after {timeout:g} s: "
                + ", ".join(
                    sorted(f"{short(p.to_base58())} ({self._why(p, topic)})" for p in waiting)
                )
            )

    async def _wait_mesh_size(self, topic: str, size: int) -> None:
        """Return once our mesh for ``topic`` holds ``size`` peers (grafts land on heartbeats)."""
        while len(self._router.mesh.get(topic, ())) < size:
            await trio.sleep(_POLL_S)

    def _why(self, peer: ID, topic: str) -> str:
        """Where ``peer`` is stuck on the way into our mesh for ``topic``."""
        if peer not in self._pubsub.peers:
            connected = self._pubsub.host.get_network().get_connections(peer)
            return "connected, no pubsub stream" if connected else "not connected"
        if peer not in self._pubsub.peer_topics.get(topic, set()):
            return "has not announced the topic"
        until = self._router.back_off.get(topic, {}).get(peer)
        if until is not None and until > time.time():
            return f"PRUNE backoff for {until - time.time():.0f} s"
        return "subscribed, not grafted yet"
