"""gossip.MemoryHost: PeerHost's interface in memory, with the same gate, limits and counters."""

from __future__ import annotations

import hashlib
from contextlib import AsyncExitStack

import pytest
import trio

from gossip import (
    BlobRejected,
    BlobTooLarge,
    ControlMessage,
    ControlMessageTooLarge,
    MemoryNetwork,
    PeerHost,
    PeerNotAuthorized,
    RemoteBlobTooLarge,
    TopicNotReady,
)

STEP_S = 10.0


def _seed(name: str) -> bytes:
    return hashlib.sha256(f"medmesh-test/memory/{name}".encode()).digest()


def test_peer_id_is_the_libp2p_id_of_the_same_seed() -> None:
    host = MemoryNetwork().host(_seed("a"))
    assert host.peer_id == PeerHost(_seed("a"), authorize=lambda _p: True).peer_id


def test_blobs_and_control_messages_are_gated_and_counted() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        refused: set[str] = set()
        a = net.host(_seed("a"), authorize=lambda p: p not in refused)
        b = net.host(_seed("b"), authorize=lambda p: p not in refused, max_blob_bytes=100)
        c = net.host(_seed("c"), authorize=lambda p: True)
        got: list[tuple[str, str, bytes]] = []

        async def keep(sender: str, kind: str, data: bytes) -> None:
            if data == b"bad":
                raise ValueError("not a valid update")
            got.append((sender, kind, data))

        b.on_blob(keep)
        async with AsyncExitStack() as stack:
            for h in (a, b, c):
                await stack.enter_async_context(h.running())
            subs = {h.peer_id: await h.subscribe("t") for h in (a, b, c)}
            await a.wait_topic_peers("t", {b.peer_id, c.peer_id}, timeout=STEP_S)
            with pytest.raises(TopicNotReady, match="1 peer"):
                await a.wait_topic_peers("other", {b.peer_id}, timeout=0.05)

            await a.send_blob(b.peer_id, b"x" * 40, kind="update")
            assert got == [(a.peer_id, "update", b"x" * 40)]
            with pytest.raises(BlobRejected, match="not a valid update"):
                await a.send_blob(b.peer_id, b"bad")
            with pytest.raises(RemoteBlobTooLarge):
                await a.send_blob(b.peer_id, b"y" * 101)
            with pytest.raises(BlobTooLarge):
                await b.send_blob(a.peer_id, b"z" * 101)
            with pytest.raises(ControlMessageTooLarge):
                await a.publish("t", b"m" * (a.max_control_bytes + 1))

            await a.publish("t", b"hello")
            with trio.fail_after(STEP_S):
                for h in (b, c):
                    assert await subs[h.peer_id].receive() == ControlMessage(
                        a.peer_id, b"hello", "t"
                    )
            with pytest.raises(trio.WouldBlock):  # no echo of one's own message
                subs[a.peer_id]._receive.receive_nowait()

            refused.add(c.peer_id)  # c is no longer a member: a and b refuse it both ways
            await c.publish("t", b"intruder")
            with pytest.raises(PeerNotAuthorized):
                await a.send_blob(c.peer_id, b"x")
            with pytest.raises(trio.WouldBlock):
                subs[a.peer_id]._receive.receive_nowait()

        assert (a.stats.blobs_sent, a.stats.blob_bytes_sent, a.stats.blobs_failed) == (1, 40, 2)
        assert (b.stats.blobs_received, b.stats.blob_bytes_received, b.stats.blobs_rejected) == (
            1,
            40,
            2,
        )
        assert (a.stats.control_sent, a.stats.control_bytes_sent) == (1, 5)
        assert (b.stats.control_received, b.stats.control_bytes_received) == (1, 5)
        assert a.stats.control_rejected == b.stats.control_rejected == 1

    trio.run(main)
