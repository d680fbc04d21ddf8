"""``PeerHost``: one libp2p host per hospital peer.

It owns the py-libp2p host (Noise-only, Yamux, TCP; ``_stack``), a GossipSub
router for control messages (``_control``), the direct blob protocol
(``_blobs``), one authorization gate in front of all of them (``_gate``), and
connection-level limits (``_conncap``: a per-IP cap, unauthorized peers closed on connect).

Sharp edges guarded here: the lifecycle order in ``running`` and the explicit
connection close in ``_close_connections`` (py-libp2p leaks sockets and can
raise out of its swarm at teardown), and the AutoConnector, which we stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import multiaddr as ma
import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.peer.peerstore import PERMANENT_ADDR_TTL
from libp2p.tools.anyio_service import background_trio_service

from ._blobs import BASE_TIMEOUT_S, BlobHandler, BlobService
from ._conncap import DEFAULT_MAX_PER_IP, ConnectionGuard
from ._control import ControlPlane
from ._degree import mesh_degrees
from ._errors import GossipError, PeerNotAuthorized, sole_exception
from ._gate import Gate
from ._logs import log, one_line, quiet_libp2p_logs, short
from ._retry import retrying
from ._stack import (
    build_host,
    build_pubsub,
    check_limits,
    identity_from_seed,
)
from ._stats import GossipStats, StatsRecorder
from ._subscriptions import Subscription

CLOSE_TIMEOUT_S = 10.0


class PeerHost:
    """One hospital peer on the libp2p network.

    :param key_seed: 32 bytes; the Ed25519 identity (and so the ``12D3KooW...``
        peer ID) is derived from it deterministically.
    :param listen_port: TCP port, 0 for any free port.
    :param listen_ip: address to listen on (``127.0.0.1`` by default).
    :param authorize: ``authorize(peer_id) -> bool``, consulted for every inbound
        stream, every received pubsub message (origin and forwarder) and before we
        dial or send a blob to a peer, so keep it fast and synchronous (cache any
        ledger lookup). ``None`` allows everyone and logs a warning. An exception
        inside it counts as "no". The first refusal per peer is logged.
    :param max_blob_bytes: largest blob we accept (and send).
    :param max_control_bytes: largest control message we publish or accept;
        at most 512 KiB (py-libp2p silently drops pubsub RPCs over 1 MiB).
    :param send_attempts: tries per :meth:`send_blob` on transfer failures (a
        rejection is final), with backoff from ``retry_initial_s``, doubled per failure.
    :param parallel_sends: most blob transfers in flight at once (None: no bound).
    :param max_conns_per_ip: inbound connections held at once from one remote IP
        (``_conncap``); more are closed at accept.
    :param blob_timeout_s: the base of every blob deadline: a send gets this plus 1 s per MB
        (unless ``send_blob`` is given a ``timeout``); a receiver waits this long for a new
        stream's header and this plus 1 s per MB for its payload. Raise it where many hosts
        share one event loop (``node.sim.hosts``), whose protocol round trips take seconds.
    :param members: the consortium's size, which sets GossipSub's mesh degree
        (``_degree.mesh_degrees``: the full mesh up to 64 members, D = 8 above);
        None keeps the full mesh. Fixed for the host's life.

    Run it with ``async with host.running(): ...`` (trio). One ``running()`` per
    instance: py-libp2p's services cannot be restarted.
    """

    def __init__(
        self,
        key_seed: bytes,
        *,
        listen_port: int = 0,
        listen_ip: str = "127.0.0.1",
        authorize: Callable[[str], bool] | None = None,
        max_blob_bytes: int = 64 * 2**20,
        max_control_bytes: int = 64 * 2**10,
        send_attempts: int = 1,
        retry_initial_s: float = 0.5,
        parallel_sends: int | None = None,
        max_conns_per_ip: int = DEFAULT_MAX_PER_IP,
        members: int | None = None,
        blob_timeout_s: float = BASE_TIMEOUT_S,
    ) -> None:
        check_limits(max_blob_bytes, max_control_bytes)
        if not 0 <= listen_port <= 65535:
            raise ValueError(f"listen_port must be 0-65535, got {listen_port}")
        quiet_libp2p_logs()
        key_pair = identity_from_seed(key_seed)
        self._host = build_host(key_pair)
        self._id = self._host.get_id()
        self.peer_id: str = self._id.to_base58()
        """Our base58 peer ID (``12D3KooW...``)."""
        self._me = short(self.peer_id)
        self._listen = ma.Multiaddr(f"/ip4/{listen_ip}/tcp/{listen_port}")
        self.max_blob_bytes = max_blob_bytes
        self.max_control_bytes = max_control_bytes
        self._send = retrying(
            self._send_once,
            attempts=send_attempts,
            initial=retry_initial_s,
            parallel=parallel_sends,
        )
        self._stats = StatsRecorder()
        self._running = False
        self._started = False
        if authorize is None:
            log.warning(
                "[%s] no authorize callback: this host accepts blobs and control "
                "messages from any peer that can reach it",
                self._me,
            )

        self._gate = Gate(self.peer_id, authorize, self._stats)
        self._gate.install(self._host.get_network())
        self._guard = ConnectionGuard(
            self.peer_id, self._gate.allows, self._stats, max_conns_per_ip
        )
        self._guard.install(self._host.get_network())
        self.mesh = mesh_degrees(members)
        """GossipSub's degree bounds for this host (:class:`MeshDegrees`)."""
        self._pubsub, self._router = build_pubsub(self._host, self.mesh)
        self._control = ControlPlane(
            self._pubsub, self._router, self._id, self._stats, max_control_bytes, self._gate.allows
        )
        self._blobs = BlobService(
            self._host, self._stats, max_blob_bytes, self._gate.allows, blob_timeout_s
        )

    # -- lifecycle -------------------------------------------------------------

    @property
    def listen_addrs(self) -> list[str]:
        """Full multiaddrs we listen on, each ending in ``/p2p/<peer_id>`` (empty until running)."""
        return [f"{a}/p2p/{self.peer_id}" for a in self._host.get_transport_addrs()]

    @property
    def stats(self) -> GossipStats:
        """Payload byte counters (snapshot); see :class:`GossipStats` for what counts."""
        return self._stats.snapshot

    @asynccontextmanager
    async def running(self) -> AsyncIterator[PeerHost]:
        """Listen, start pubsub and the blob protocol; stop all of it on exit."""
        if self._started:
            raise GossipError("a PeerHost runs once; create a new one to restart")
        self._started = True
        # Pubsub outlives the network on the way out: stopping pubsub first let
        # pubsub stream readers (which run in the swarm's nursery) schedule work on
        # the stopped service: RuntimeError('Nursery is closed to new arrivals')
        # escaped through the swarm in ~1 run out of 3 with traffic in flight.
        try:
            async with background_trio_service(self._pubsub):
                async with background_trio_service(self._router):
                    async with self._host.run([self._listen]):
                        await self._stop_auto_connector()
                        await self._pubsub.wait_until_ready()
                        async with trio.open_nursery() as nursery:
                            self._control.start(nursery)
                            self._gate.quiet = False
                            self._running = True
                            log.info("[%s] listening on %s", self._me, ", ".join(self.listen_addrs))
                            try:
                                yield self
                            finally:
                                self._running = False
                                self._gate.quiet = True
                                self._control.stop()
                                nursery.cancel_scope.cancel()
                                await self._close_connections()
        except BaseExceptionGroup as group:
            # py-libp2p's services and our nursery wrap whatever the body raised in
            # five nested ExceptionGroups; hand a single exception back as itself.
            leaf = sole_exception(group)
            if leaf is None:
                raise
            raise leaf from None
        log.info("[%s] stopped", self._me)

    async def _close_connections(self) -> None:
        """Close every connection and listener before the swarm service stops.

        py-libp2p's swarm closes its connections in a ``finally`` that runs
        under cancellation when its service is stopped, so the first ``await``
        aborts it: sockets stayed open, the remote peer never saw EOF and kept a
        dead connection (measured: one leaked connection and 3 fds per stopped
        peer). We close them first, concurrently (each close sleeps 0.1 s inside
        the library), shielded and bounded, then let ``host.close()`` finish.
        """
        network = self._host.get_network()
        with trio.CancelScope(shield=True):
            with trio.move_on_after(CLOSE_TIMEOUT_S) as scope:
                try:
                    async with trio.open_nursery() as nursery:
                        for peer in network.get_connections_map():
                            nursery.start_soon(network.close_peer, peer)
                    await self._host.close()
                except Exception as exc:
                    log.debug("[%s] error while closing connections: %s", self._me, one_line(exc))
            if scope.cancelled_caught:
                log.warning(
                    "[%s] closing connections took over %g s; abandoned", self._me, CLOSE_TIMEOUT_S
                )

    async def _stop_auto_connector(self) -> None:
        """Turn off py-libp2p's AutoConnector.

        It tries to keep 100+ connections by dialing every peer in the peerstore,
        including peers ``authorize`` refuses, every 10-30 s, and logs failed dials
        at ERROR. A hospital network is a fixed set of peers the node dials itself.
        """
        auto = getattr(self._host.get_network(), "auto_connector", None)
        if auto is not None:
            await auto.stop()

    def _require_running(self) -> None:
        if not self._running:
            raise GossipError("host is not running; use `async with host.running():`")

    # -- peers -----------------------------------------------------------------

    async def connect(self, multiaddr: str) -> str:
        """Dial ``/ip4/.../tcp/.../p2p/<id>``; return the remote peer ID.

        Raises :class:`PeerNotAuthorized` if ``authorize`` refuses the peer and
        :class:`GossipError` if the address is malformed or the dial fails.
        """
        self._require_running()
        try:
            info = info_from_p2p_addr(ma.Multiaddr(multiaddr))
        except Exception as exc:
            raise GossipError(f"bad peer multiaddr {multiaddr!r}: {one_line(exc)}") from None
        remote = info.peer_id.to_base58()
        if remote == self.peer_id:
            raise GossipError("refusing to connect to ourselves")
        if not self._gate.allows(remote, "outbound dial"):
            raise PeerNotAuthorized(f"peer {short(remote)} is not authorized")
        try:
            await self._host.connect(info)
        except Exception as exc:
            raise GossipError(
                f"could not connect to peer {short(remote)}: {one_line(exc)}"
            ) from exc
        log.info("[%s] connected to [%s]", self._me, short(remote))
        return remote

    def remember(self, multiaddr: str) -> str:
        """Keep ``/ip4/.../tcp/.../p2p/<id>`` in the peerstore without dialing; return the peer ID.

        A later :meth:`send_blob` to that peer dials it then (py-libp2p's ``new_stream`` dials
        from the peerstore), so a member can reach any other while it holds connections to a
        few only. Call it after :meth:`connect` to the same peer, if any: py-libp2p's
        ``connect`` keeps a dialed address for 120 s only, and a redial after that fails
        ("peer ID is expired"). Raises :class:`GossipError` for a malformed address.
        """
        try:
            info = info_from_p2p_addr(ma.Multiaddr(multiaddr))
        except Exception as exc:
            raise GossipError(f"bad peer multiaddr {multiaddr!r}: {one_line(exc)}") from None
        if info.peer_id != self._id:
            self._host.get_peerstore().add_addrs(info.peer_id, info.addrs, PERMANENT_ADDR_TTL)
        return info.peer_id.to_base58()

    def connected_peers(self) -> list[str]:
        """Peer IDs we currently hold a connection to."""
        return [p.to_base58() for p in self._host.get_connected_peers()]

    def security_protocol(self, peer_id: str) -> str | None:
        """The security protocol negotiated with ``peer_id`` (``"/noise"``), or None if not connected."""
        for conn in self._host.get_network().get_connections(ID.from_base58(peer_id)):
            secured = getattr(getattr(conn, "muxed_conn", None), "secured_conn", None)
            proto = getattr(secured, "negotiated_security_protocol", None)
            if proto is not None:
                return str(proto)
        return None

    # -- control messages ------------------------------------------------------

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish a signed control message (raises ``ControlMessageTooLarge`` over the limit)."""
        self._require_running()
        await self._control.publish(topic, data)

    async def subscribe(self, topic: str) -> Subscription:
        """An async iterator of :class:`ControlMessage` from other peers on ``topic``."""
        self._require_running()
        return await self._control.subscribe(topic)

    async def wait_topic_peers(
        self, topic: str, peer_ids: Iterable[str], timeout: float = 10.0
    ) -> None:
        """Wait until every peer in ``peer_ids`` will get what we publish on ``topic``.

        Subscribe first: then this waits for each peer to enter our GossipSub mesh
        for the topic (event-driven). Raises :class:`TopicNotReady` on timeout.
        """
        self._require_running()
        await self._control.wait_topic_peers(topic, peer_ids, timeout)

    # -- blobs -----------------------------------------------------------------

    def on_blob(self, handler: BlobHandler) -> None:
        """Register ``async handler(from_peer, kind, data)`` for inbound blobs.

        The sender gets an ok ack after the handler returns, or a reject ack
        (its ``send_blob`` raises ``BlobRejected``) if the handler raises.
        """
        self._blobs.handler = handler

    async def send_blob(
        self, peer_id: str, data: bytes, *, kind: str = "update", timeout: float | None = None
    ) -> None:
        """Send ``data`` to ``peer_id`` over ``/medmesh/blob/1.0.0``; return once accepted.

        ``kind`` is 1-64 ASCII characters. ``timeout`` defaults to ``blob_timeout_s``
        (60 s) plus 1 s per MB. Dials the peer from the peerstore if not connected. Raises
        ``BlobTooLarge`` (ours or the receiver's limit), ``BlobRejected``,
        ``BlobTransferError`` (stream failure, timeout) or ``PeerNotAuthorized``.
        """
        self._require_running()
        await self._send(peer_id, data, kind, timeout)

    async def _send_once(self, peer_id: str, data: bytes, kind: str, timeout: float | None) -> None:
        await self._blobs.send(peer_id, data, kind, timeout)
