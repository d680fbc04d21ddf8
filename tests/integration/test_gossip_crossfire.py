"""Two hosts streaming blobs to each other at once over their one connection.

The reproducer for the Yamux write-write deadlock (gossip/_yamux.py, docs/libp2p-pitfalls.md #10): with
py-libp2p's own Yamux, 8 concurrent 4 MB blobs each way between two hosts stalled every
transfer until its timeout (16 of 16 failed; 8 of 48 with 4 hosts x 4 blobs per pair);
with the fix all arrive in about a second.
"""

from __future__ import annotations

import hashlib
import os

import pytest
import trio

from gossip import PeerHost

pytestmark = pytest.mark.timeout(60)

BLOBS_EACH_WAY = 8
BLOB_BYTES = 4 * 10**6
TRANSFER_TIMEOUT_S = (
    30.0  # the fixed stack needs ~1 s on 2 loaded cores; the old one never finished
)


def _seed(name: str) -> bytes:
    return hashlib.sha256(f"medmesh-test/{name}".encode()).digest()


def test_concurrent_blobs_both_ways_all_arrive_intact() -> None:
    async def main() -> None:
        a = PeerHost(_seed("crossfire-a"), authorize=lambda p: True)
        b = PeerHost(_seed("crossfire-b"), authorize=lambda p: True)
        got: dict[str, list[bytes]] = {a.peer_id: [], b.peer_id: []}
        for host in (a, b):

            async def handler(
                from_peer: str, kind: str, data: bytes, me: str = host.peer_id
            ) -> None:
                got[me].append(data)

            host.on_blob(handler)
        payloads = {
            a.peer_id: [os.urandom(BLOB_BYTES) for _ in range(BLOBS_EACH_WAY)],
            b.peer_id: [os.urandom(BLOB_BYTES) for _ in range(BLOBS_EACH_WAY)],
        }
        failures: list[str] = []

        async def send(src: PeerHost, dst: PeerHost, data: bytes) -> None:
            try:
                await src.send_blob(dst.peer_id, data, timeout=TRANSFER_TIMEOUT_S)
            except Exception as exc:
                failures.append(str(exc))

        async with a.running(), b.running():
            await a.connect(b.listen_addrs[0])
            async with trio.open_nursery() as nursery:
                for src, dst in ((a, b), (b, a)):
                    for data in payloads[src.peer_id]:
                        nursery.start_soon(send, src, dst, data)
        assert failures == []
        # each side received exactly what the other sent, byte for byte (order is free)
        assert sorted(got[b.peer_id]) == sorted(payloads[a.peer_id])
        assert sorted(got[a.peer_id]) == sorted(payloads[b.peer_id])
        assert a.stats.blobs_sent == b.stats.blobs_sent == BLOBS_EACH_WAY

    trio.run(main)
