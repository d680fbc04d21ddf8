"""A blob whose stream negotiation is delayed past py-libp2p's 10 s still arrives.

Reproducer for docs/libp2p-pitfalls.md #11 (gossip/_stack.py): with 16 hosts in one trio loop, the
round's announcements and 240 new blob streams left the loop running 700-800 tasks per
pass, so each connection's reader moved a few frames a second and every stream's
multistream negotiation took more than py-libp2p's 10 s default (outbound and
inbound). All 240 transfers failed with "response timed out after 10s" and the round
waited for the relay. Here the delay is made deterministic: the two real hosts talk
through a TCP relay on 127.0.0.1 that holds the receiver's answers for
``HOLD_S`` seconds, longer than 10 s and shorter than the blob protocol's own
deadline. The trio clock runs ``CLOCK_RATE`` times faster than the wall clock, so the
test takes about ``HOLD_S / CLOCK_RATE`` seconds of real time.
"""

from __future__ import annotations

import hashlib
import os

import pytest
import trio
from trio.testing import MockClock

from gossip import PeerHost

pytestmark = pytest.mark.timeout(60)

CLOCK_RATE = 5.0  # virtual seconds per real second
HOLD_S = 15.0  # > py-libp2p's 10 s negotiation timeout, < the blob deadline (60 s + size / 1 MB/s)
BLOB_BYTES = 200_000


def _seed(name: str) -> bytes:
    return hashlib.sha256(f"medmesh-test/{name}".encode()).digest()


class HoldingRelay:
    """Forwards TCP bytes both ways; while ``holding``, the answers (target -> dialer) wait."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.holding = False
        self.held = trio.Event()  # set once an answer is being held back
        self._release = trio.Event()

    def release(self) -> None:
        self.holding = False
        self._release.set()

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, dialer: trio.SocketStream) -> None:
        target = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        async with dialer, target, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, dialer, target, False)
            nursery.start_soon(self._pump, target, dialer, True)

    async def _pump(self, src: trio.SocketStream, dst: trio.SocketStream, answers: bool) -> None:
        try:
            async for chunk in src:
                if answers and self.holding:
                    self.held.set()
                    await self._release.wait()
                await dst.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def test_a_blob_delayed_past_libp2p_negotiation_timeout_still_arrives() -> None:
    async def main() -> None:
        sender = PeerHost(_seed("congestion-sender"), authorize=lambda p: True)
        receiver = PeerHost(_seed("congestion-receiver"), authorize=lambda p: True)
        got: list[bytes] = []

        async def handler(from_peer: str, kind: str, data: bytes) -> None:
            got.append(data)

        receiver.on_blob(handler)
        payload = os.urandom(BLOB_BYTES)
        async with sender.running(), receiver.running(), trio.open_nursery() as nursery:
            target_port = int(receiver.listen_addrs[0].split("/tcp/")[1].split("/")[0])
            relay = HoldingRelay(target_port)
            await nursery.start(relay.serve)
            await sender.connect(f"/ip4/127.0.0.1/tcp/{relay.port}/p2p/{receiver.peer_id}")
            relay.holding = True
            started = trio.current_time()
            async with trio.open_nursery() as transfer:
                transfer.start_soon(sender.send_blob, receiver.peer_id, payload)
                await relay.held.wait()  # the receiver's first answer on the new stream
                await trio.sleep_until(
                    started + HOLD_S
                )  # the congestion: answers arrive HOLD_S late
                relay.release()
            assert trio.current_time() - started >= HOLD_S
            nursery.cancel_scope.cancel()
        assert got == [payload]
        assert sender.stats.blobs_sent == 1 and sender.stats.blobs_failed == 0

    trio.run(main, clock=MockClock(rate=CLOCK_RATE))
