"""Yamux whose connection reader never waits on the socket (docs/libp2p-pitfalls.md #10).

py-libp2p 0.8.1 reads each connection in one task (``Yamux.handle_incoming``), and that
task itself writes frames: the ACK answering a peer's new stream (SYN), an RST, a ping
reply. Writes share one lock and block while the kernel's send buffer is full. So when
two peers stream bulk data to each other over one connection and each opens a new
stream to the other, both readers end up blocked in a write that the other side will
never drain, because the other side's reader is blocked too: a write-write deadlock.
Every stream on that connection then stalls until its timeout.

Measured with ``PeerHost``s in one process, every host sending a 4 MB blob to every
other at once: 16 hosts, 240 transfers, 28-32 of them stalled until their 100 s
timeout, each stuck writing its payload after the receiver's CONTINUE ack (the CPU was
idle meanwhile: 18 s of user time in 134 s). Whole campaigns with 16 node processes lost
blobs the same way.

:class:`NonBlockingReaderYamux` queues the frames the reader writes and has a separate
task write them, so the reader always goes back to reading. Frames keep their order:
another task's frame waits until the queue is empty, so our ACK for a stream still goes
out before the data our handler writes on it. The queue holds only frame headers the
reader answers with (12 bytes each), one per frame it read.

A frame is also written whole or not at all. py-libp2p writes each frame under the
connection's write lock but does not shield the socket write, so a caller's deadline that
fires mid-write (a blob send given up after its timeout, while writing its 64 KB data frames)
left half a Noise message on the wire: the receiver's next decryption failed ("Failed
authentication of message", seen at N = 32 hosts in one process) and every stream on that
connection, GossipSub's included, died with it. :meth:`NonBlockingReaderYamux._write_frame`
shields the write once it holds the lock: a caller cancelled at its deadline still returns,
right after its frame. The shielded write may run until the caller's deadline plus
:data:`FRAME_GRACE_S`, or :data:`FRAME_WRITE_TIMEOUT_S` for a caller without a deadline (a
GossipSub sender, the reader's queued frames); past that the peer has stopped reading, and
the connection is closed.

py-libp2p builds Yamux connections by name (``muxer_multistream.Yamux(...)``) whatever
class the muxer options map to, so :func:`install` rebinds that name in this process.
"""

from __future__ import annotations

import math
from collections import deque

import trio
from libp2p.stream_muxer import muxer_multistream
from libp2p.stream_muxer.exceptions import MuxedConnUnavailable
from libp2p.stream_muxer.yamux.yamux import Yamux

from ._logs import log, one_line

FRAME_GRACE_S = 30.0
"""How long a started frame may take past its caller's deadline before the connection is closed."""
FRAME_WRITE_TIMEOUT_S = 300.0
"""The same bound for a frame whose caller has no deadline."""


class NonBlockingReaderYamux(Yamux):
    """``Yamux`` whose ``handle_incoming`` task hands its writes to a writer task."""

    _reader: trio.lowlevel.Task | None = None
    _backlog: deque[bytes]
    _flushing: bool
    _drained: trio.Event

    async def handle_incoming(self) -> None:
        self._reader = trio.lowlevel.current_task()
        self._backlog = deque()
        self._flushing = False
        self._drained = trio.Event()
        await super().handle_incoming()

    async def _write_frame(self, data: bytes) -> None:
        if self._reader is not None and trio.lowlevel.current_task() is self._reader:
            self._backlog.append(data)
            if not self._flushing:
                nursery = self._nursery  # the muxer's own, open before its reader starts
                if nursery is None:
                    raise RuntimeError("yamux: a frame to queue before the muxer started")
                self._flushing = True
                nursery.start_soon(self._flush)
            return
        while self._reader is not None and (self._backlog or self._flushing):
            await self._drained.wait()  # the reader's frames first, in order
        await self._write_whole(data)

    async def _write_whole(self, data: bytes) -> None:
        """Write one frame under the write lock, shielded: a cancelled caller cannot cut it."""
        deadline = trio.current_effective_deadline()
        async with self._write_lock:
            limit = (
                deadline + FRAME_GRACE_S
                if deadline != math.inf
                else trio.current_time() + FRAME_WRITE_TIMEOUT_S
            )
            with trio.CancelScope(shield=True):
                with trio.move_on_at(limit) as stuck:
                    await self.secured_conn.write(data)
                if stuck.cancelled_caught:
                    await self._give_up(len(data))
        await trio.lowlevel.checkpoint()

    async def _give_up(self, size: int) -> None:
        log.warning(
            "yamux: a %d-byte frame stayed unwritten past its deadline; closing the connection",
            size,
        )
        with trio.move_on_after(1):
            try:
                await self.secured_conn.close()
            except Exception:
                pass
        raise MuxedConnUnavailable("yamux: connection closed after a stuck frame write")

    async def _flush(self) -> None:
        try:
            while self._backlog:
                await self._write_whole(self._backlog.popleft())
        except Exception as exc:  # the connection broke; the reader sees it on its next read
            log.debug("yamux: dropping %d queued frames: %s", len(self._backlog), one_line(exc))
            self._backlog.clear()
        finally:
            self._flushing = False
            self._drained.set()
            self._drained = trio.Event()


def install() -> None:
    """Make py-libp2p build :class:`NonBlockingReaderYamux` for every Yamux connection."""
    muxer_multistream.Yamux = NonBlockingReaderYamux  # type: ignore[misc]
