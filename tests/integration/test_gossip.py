"""Tests for gossip/: real py-libp2p hosts on 127.0.0.1, driven by ``trio.run``.

No fixed sleeps: every wait is on a real state change (a message, an ack, the
mesh event behind ``wait_topic_peers``) or, where the library offers no event, a
condition polled under a deadline (``_until``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio

import gossip
from gossip import (
    BlobRejected,
    BlobTooLarge,
    BlobTransferError,
    ControlMessage,
    ControlMessageTooLarge,
    GossipError,
    PeerHost,
    PeerNotAuthorized,
    RemoteBlobTooLarge,
    TopicNotReady,
)

pytestmark = pytest.mark.timeout(60)

STEP_S = 15.0  # generous per-step deadline on a loaded 2-core machine


def _seed(name: str) -> bytes:
    return hashlib.sha256(f"medmesh-test/{name}".encode()).digest()


@asynccontextmanager
async def _running(*hosts: PeerHost) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for host in hosts:
            await stack.enter_async_context(host.running())
        yield


async def _until(cond: Callable[[], bool], what: str, timeout: float = STEP_S) -> None:
    """Poll ``cond`` every 10 ms until true (for state py-libp2p exposes no event for)."""
    with trio.move_on_after(timeout):
        while not cond():
            await trio.sleep(0.01)
        return
    raise AssertionError(f"timed out waiting for {what}")


class _Inbox:
    """A blob handler that records what it got (``send_blob`` returns after it ran)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, bytes]] = []

    async def __call__(self, from_peer: str, kind: str, data: bytes) -> None:
        self.items.append((from_peer, kind, data))


def test_public_api_is_pinned() -> None:
    assert sorted(gossip.__all__) == sorted(
        [
            "BLOB_PROTOCOL",
            "BlobRejected",
            "BlobTooLarge",
            "BlobTransferError",
            "ControlMessage",
            "ControlMessageTooLarge",
            "GossipError",
            "GossipStats",
            "MemoryHost",
            "MemoryNetwork",
            "MeshDegrees",
            "PayloadTooLarge",
            "PeerHost",
            "PeerNotAuthorized",
            "RemoteBlobTooLarge",
            "Subscription",
            "TopicNotReady",
            "Transport",
            "mesh_degrees",
            "sole_exception",
        ]
    )
    assert gossip.BLOB_PROTOCOL == "/medmesh/blob/1.0.0"
    for name in gossip.__all__:
        obj = getattr(gossip, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, GossipError)


def test_blob_wire_format_is_pinned() -> None:
    from gossip._frame import Reason, encode_header, encode_reject

    # version 1 | kind length 6 | payload length u64 big-endian | kind
    assert encode_header("update", 5_000_000) == bytes.fromhex("010600000000004c4b40") + b"update"
    # REJECTED | TOO_LARGE | text length u16 | text
    assert encode_reject(Reason.TOO_LARGE, "no") == bytes.fromhex("02010002") + b"no"
    with pytest.raises(ValueError):
        encode_header("x" * 65, 1)


def test_identity_is_stable_and_arguments_are_checked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="medmesh.gossip"):
        PeerHost(_seed("open"))
    assert "no authorize callback" in caplog.text  # an open host says so
    a1 = PeerHost(_seed("a"), authorize=lambda p: True)
    a2 = PeerHost(_seed("a"), authorize=lambda p: True)
    b = PeerHost(_seed("b"), authorize=lambda p: True)
    assert a1.peer_id == a2.peer_id != b.peer_id
    assert a1.peer_id.startswith("12D3KooW")
    assert a1.listen_addrs == []  # not running yet
    with pytest.raises(ValueError, match="32 bytes"):
        PeerHost(b"short")
    with pytest.raises(ValueError, match="max_control_bytes"):
        PeerHost(_seed("c"), max_control_bytes=2 * 2**20)  # over py-libp2p's silent 1 MiB cap
    with pytest.raises(ValueError, match="max_blob_bytes"):
        PeerHost(_seed("c"), max_blob_bytes=0)


def test_blob_5mb_roundtrip_counts_bytes() -> None:
    async def main() -> None:
        a = PeerHost(_seed("blob-a"), authorize=lambda p: True)
        b = PeerHost(_seed("blob-b"), authorize=lambda p: True)
        inbox = _Inbox()
        b.on_blob(inbox)
        payload = os.urandom(5 * 10**6)
        async with _running(a, b):
            assert all(addr.endswith(f"/p2p/{a.peer_id}") for addr in a.listen_addrs)
            assert a.listen_addrs[0].startswith("/ip4/127.0.0.1/tcp/")
            assert await a.connect(b.listen_addrs[0]) == b.peer_id
            with trio.fail_after(STEP_S):
                await a.send_blob(b.peer_id, payload, kind="update")
            assert inbox.items == [(a.peer_id, "update", payload)]
        assert a.stats.blobs_sent == 1 and a.stats.blob_bytes_sent == len(payload)
        assert b.stats.blobs_received == 1 and b.stats.blob_bytes_received == len(payload)
        assert a.stats.blob_bytes_received == 0 and b.stats.blob_bytes_sent == 0

    trio.run(main)


def test_a_remembered_peer_is_dialed_by_its_first_blob() -> None:
    """``remember`` stores an address without dialing; ``send_blob`` then dials on demand."""

    async def main() -> None:
        a = PeerHost(_seed("remember-a"), authorize=lambda p: True)
        b = PeerHost(_seed("remember-b"), authorize=lambda p: True)
        inbox = _Inbox()
        b.on_blob(inbox)
        async with _running(a, b):
            assert a.remember(b.listen_addrs[0]) == b.peer_id
            assert a.remember(a.listen_addrs[0]) == a.peer_id  # ourselves: nothing stored
            assert a.connected_peers() == [] and b.connected_peers() == []
            with trio.fail_after(STEP_S):
                await a.send_blob(b.peer_id, b"hello", kind="update")
            assert inbox.items == [(a.peer_id, "update", b"hello")]
            assert a.connected_peers() == [b.peer_id]
            with pytest.raises(GossipError, match="bad peer multiaddr"):
                a.remember("/ip4/127.0.0.1/tcp/1")  # no /p2p/ part

    trio.run(main)


def test_oversized_blob_is_rejected_and_receiver_keeps_working() -> None:
    async def main() -> None:
        a = PeerHost(_seed("big-a"), authorize=lambda p: True)
        b = PeerHost(_seed("big-b"), authorize=lambda p: True, max_blob_bytes=2**20)
        inbox = _Inbox()
        b.on_blob(inbox)
        async with _running(a, b):
            await a.connect(b.listen_addrs[0])
            with trio.fail_after(STEP_S):
                with pytest.raises(RemoteBlobTooLarge) as info:
                    await a.send_blob(b.peer_id, bytes(2**20 + 1))
            err = info.value
            assert isinstance(err, BlobTooLarge) and isinstance(err, BlobRejected)
            assert "max_blob_bytes=1048576" in str(err) and "\n" not in str(err)
            assert inbox.items == []

            # Our own limit is checked before anything goes on the wire.
            with pytest.raises(BlobTooLarge, match="max_blob_bytes"):
                await b.send_blob(a.peer_id, bytes(2**20 + 1))

            # The receiver is fine: a normal blob goes through on the same connection.
            with trio.fail_after(STEP_S):
                await a.send_blob(b.peer_id, b"ok" * 1000, kind="next")
            assert inbox.items == [(a.peer_id, "next", b"ok" * 1000)]
        assert b.stats.blobs_rejected == 1 and b.stats.blobs_received == 1
        assert a.stats.blobs_failed == 1 and a.stats.blobs_sent == 1
        assert a.stats.blob_bytes_sent == 2000

    trio.run(main)


def test_handler_error_becomes_reject_ack() -> None:
    async def main() -> None:
        a = PeerHost(_seed("h-a"), authorize=lambda p: True)
        b = PeerHost(_seed("h-b"), authorize=lambda p: True)
        calls: list[str] = []

        async def picky(from_peer: str, kind: str, data: bytes) -> None:
            calls.append(kind)
            if kind == "bad":
                raise RuntimeError("cannot decrypt\nupdate")

        b.on_blob(picky)
        async with _running(a, b):
            await a.connect(b.listen_addrs[0])
            with trio.fail_after(STEP_S):
                with pytest.raises(
                    BlobRejected, match="HANDLER_ERROR.*RuntimeError: cannot decrypt update"
                ):
                    await a.send_blob(b.peer_id, b"x", kind="bad")
                await a.send_blob(b.peer_id, b"y", kind="good")
            with pytest.raises(ValueError, match="ASCII"):
                await a.send_blob(b.peer_id, b"z", kind="mise-à-jour")
        assert calls == ["bad", "good"]

    trio.run(main)


def test_unauthorized_peer_gets_no_blob_and_no_message_through() -> None:
    async def main() -> None:
        intruder = PeerHost(_seed("intruder"), authorize=lambda p: True)
        victim = PeerHost(_seed("victim"), authorize=lambda p: p != intruder.peer_id)
        friend = PeerHost(_seed("friend"), authorize=lambda p: True)  # relays anything
        inbox = _Inbox()
        victim.on_blob(inbox)
        topic = "medmesh/round"
        async with _running(intruder, victim, friend):
            # The victim never dials a refused peer...
            with pytest.raises(PeerNotAuthorized):
                await victim.connect(intruder.listen_addrs[0])
            # ...but a refused peer can still open a TCP connection to it.
            await intruder.connect(victim.listen_addrs[0])
            await intruder.connect(friend.listen_addrs[0])
            await friend.connect(victim.listen_addrs[0])

            # Blob: the intruder's connection is closed once its handshake names it (issue 17.11), or
            # any inbound stream it opens first is reset before negotiation.
            with trio.fail_after(STEP_S):
                with pytest.raises(BlobTransferError):
                    await intruder.send_blob(victim.peer_id, b"poison", kind="update")
            assert inbox.items == []
            assert victim.stats.connections_refused + victim.stats.streams_refused >= 1

            subs = {h.peer_id: await h.subscribe(topic) for h in (intruder, victim, friend)}
            await friend.wait_topic_peers(topic, {victim.peer_id, intruder.peer_id}, timeout=STEP_S)
            await intruder.wait_topic_peers(topic, {friend.peer_id}, timeout=STEP_S)
            await victim.wait_topic_peers(topic, {friend.peer_id}, timeout=STEP_S)

            # The intruder's message reaches the friend, who forwards it to the
            # victim; the victim's validator refuses the signed origin.
            await intruder.publish(topic, b"poison")
            with trio.fail_after(STEP_S):
                relayed = await subs[friend.peer_id].receive()
            assert (relayed.from_peer, relayed.data) == (intruder.peer_id, b"poison")
            await _until(lambda: victim.stats.control_rejected >= 1, "victim to refuse the relay")

            await friend.publish(topic, b"fine")
            with trio.fail_after(STEP_S):
                got = await subs[victim.peer_id].receive()
            assert got == ControlMessage(friend.peer_id, b"fine", topic)
            with pytest.raises(trio.WouldBlock):  # nothing else is queued for the victim
                subs[victim.peer_id]._receive.receive_nowait()
        assert victim.stats.control_received == 1
        assert victim.stats.blobs_received == 0

    trio.run(main)


def test_four_hosts_control_messages_reach_everyone() -> None:
    async def main() -> None:
        hosts = [PeerHost(_seed(f"mesh-{i}"), authorize=lambda p: True) for i in range(4)]
        topic = "medmesh/control"
        async with _running(*hosts):
            async with trio.open_nursery() as nursery:  # full mesh, dialed concurrently
                for i, h in enumerate(hosts):
                    for other in hosts[i + 1 :]:
                        nursery.start_soon(h.connect, other.listen_addrs[0])
            subs = [await h.subscribe(topic) for h in hosts]
            publisher, others = hosts[0], hosts[1:]
            await publisher.wait_topic_peers(topic, {h.peer_id for h in others}, timeout=STEP_S)

            await publisher.publish(topic, b"round 1: start")
            with trio.fail_after(STEP_S):
                for sub in subs[1:]:
                    msg = await sub.receive()
                    assert msg == ControlMessage(publisher.peer_id, b"round 1: start", topic)

            # A burst well past py-libp2p's defaults (10 msg/s rate limit, 32-slot
            # subscription and outbound queues) must arrive whole.
            burst = [f"vote {i}".encode() for i in range(80)]
            for data in burst:
                await publisher.publish(topic, data)
            with trio.fail_after(STEP_S):
                for sub in subs[1:]:
                    got = [(await sub.receive()).data for _ in burst]
                    assert sorted(got) == sorted(burst)
            # The publisher never sees its own messages.
            with pytest.raises(trio.WouldBlock):
                subs[0]._receive.receive_nowait()
        sent = len(b"round 1: start") + sum(map(len, burst))
        assert publisher.stats.control_sent == 81 and publisher.stats.control_bytes_sent == sent
        assert all(h.stats.control_bytes_received == sent for h in others)

    trio.run(main)


def test_control_limits_and_readiness_timeout() -> None:
    async def main() -> None:
        a = PeerHost(_seed("lim-a"), authorize=lambda p: True, max_control_bytes=1024)
        b = PeerHost(_seed("lim-b"), authorize=lambda p: True)
        async with _running(a, b):
            with pytest.raises(ControlMessageTooLarge, match="max_control_bytes=1024"):
                await a.publish("t", bytes(1025))
            await a.subscribe("t")
            with pytest.raises(TopicNotReady, match="not in the mesh"):
                await a.wait_topic_peers("t", {b.peer_id}, timeout=0.3)  # never connected
        with pytest.raises(GossipError, match="not running"):
            await a.publish("t", b"x")
        with pytest.raises(GossipError, match="runs once"):
            async with a.running():
                pass
        # An error in the body comes out as itself, not inside nested ExceptionGroups.
        with pytest.raises(KeyError):
            async with PeerHost(_seed("lim-c"), authorize=lambda p: True).running():
                raise KeyError("boom")

    trio.run(main)


def test_connections_are_noise_only() -> None:
    import multiaddr
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.network.exceptions import SwarmException
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
    from libp2p.security.noise.io import NoiseTransportReadWriter
    from libp2p.security.secure_session import SecureSession

    async def main() -> None:
        a = PeerHost(_seed("noise-a"), authorize=lambda p: True)
        b = PeerHost(_seed("noise-b"), authorize=lambda p: True)
        async with _running(a, b):
            await a.connect(b.listen_addrs[0])
            assert a.security_protocol(b.peer_id) == "/noise"
            assert b.security_protocol(a.peer_id) == "/noise"
            (conn,) = a._host.get_network().get_connections(b._id)
            secured = conn.muxed_conn.secured_conn
            assert isinstance(secured, SecureSession)
            assert isinstance(secured.conn, NoiseTransportReadWriter)
            from libp2p.stream_muxer.yamux.yamux import Yamux

            from gossip._yamux import NonBlockingReaderYamux

            assert isinstance(conn.muxed_conn, Yamux)  # with the reader-deadlock fix (_yamux.py)
            assert type(conn.muxed_conn) is NonBlockingReaderYamux

            # A peer that offers only plaintext gets no connection at all.
            kp = create_new_key_pair(_seed("plain"))
            plain = new_host(key_pair=kp, sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(kp)})
            async with plain.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
                with trio.fail_after(STEP_S):
                    with pytest.raises(SwarmException):
                        await plain.connect(
                            info_from_p2p_addr(multiaddr.Multiaddr(a.listen_addrs[0]))
                        )
            assert a.security_protocol(str(plain.get_id())) is None

    trio.run(main)


def test_sole_exception_unwraps_nested_groups() -> None:
    only = ValueError("x")
    nested = BaseExceptionGroup("a", [ExceptionGroup("b", [ExceptionGroup("c", [only])])])
    assert gossip.sole_exception(nested) is only
    assert gossip.sole_exception(ExceptionGroup("two", [only, KeyError("y")])) is None
    assert (
        gossip.sole_exception(BaseExceptionGroup("stop", [KeyboardInterrupt()])).__class__
        is KeyboardInterrupt
    )
