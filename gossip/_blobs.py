"""Sending and receiving blobs over the direct stream protocol (see ``_frame``).

One stream per blob. The receiver checks the declared length against
``max_blob_bytes`` before reading any payload, reads exactly that many bytes,
runs the registered handler and answers ok or rejected; the sender raises on a
reject, a broken stream or a timeout. Handler exceptions are logged in one line
and become a reject ack; they never reach py-libp2p (whose stream-handler
nursery would otherwise log a traceback or tear the connection down).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from ._errors import (
    BlobRejected,
    BlobTooLarge,
    BlobTransferError,
    GossipError,
    PeerNotAuthorized,
    RemoteBlobTooLarge,
)
from ._frame import (
    BLOB_PROTOCOL,
    FrameError,
    Reason,
    Status,
    encode_header,
    encode_reject,
    read_ack,
    read_exactly,
    read_header,
)
from ._logs import log, one_line, short
from ._stats import StatsRecorder

BlobHandler = Callable[[str, str, bytes], Awaitable[None]]
"""``async handler(from_peer, kind, data)``; raise to reject the blob."""

BASE_TIMEOUT_S = 60.0
HEADER_TIMEOUT_S = BASE_TIMEOUT_S
"""How long a new blob stream may take to deliver its header: a loop congested by 16
peers delays frames by tens of seconds (``_stack``, docs/libp2p-pitfalls.md #11). Both this
and the base of :func:`default_timeout` are ``PeerHost(blob_timeout_s=...)`` (default
:data:`BASE_TIMEOUT_S`)."""
MIN_RATE_BYTES_PER_S = 1_000_000
"""Slowest link we wait for: a blob of n bytes gets BASE_TIMEOUT_S + n / this."""


def default_timeout(n_bytes: int, base: float = BASE_TIMEOUT_S) -> float:
    """Seconds allowed for one transfer of ``n_bytes`` (handler time included)."""
    return base + n_bytes / MIN_RATE_BYTES_PER_S


class BlobService:
    """The blob protocol for one host: ``send`` and the inbound stream handler."""

    def __init__(
        self,
        host: IHost,
        stats: StatsRecorder,
        max_blob_bytes: int,
        is_authorized: Callable[[str, str], bool],
        base_timeout: float = BASE_TIMEOUT_S,
    ) -> None:
        if base_timeout <= 0:
            raise ValueError(f"blob_timeout_s must be positive, got {base_timeout}")
        self._host = host
        self._base = base_timeout
        self._me = short(host.get_id().to_base58())
        self._stats = stats
        self._max = max_blob_bytes
        self._is_authorized = is_authorized
        self.handler: BlobHandler | None = None
        host.set_stream_handler(TProtocol(BLOB_PROTOCOL), self.handle_stream)

    # -- sender ----------------------------------------------------------------

    async def send(self, peer_id: str, data: bytes, kind: str, timeout: float | None) -> None:
        """Deliver ``data`` to ``peer_id``; return once its handler accepted it."""
        header = encode_header(kind, len(data))
        if len(data) > self._max:
            raise BlobTooLarge(f"blob of {len(data)} bytes exceeds max_blob_bytes={self._max}")
        if not self._is_authorized(peer_id, "blob destination"):
            raise PeerNotAuthorized(f"peer {short(peer_id)} is not authorized to receive blobs")
        try:
            peer = ID.from_base58(peer_id)
        except Exception:
            raise ValueError(f"not a peer ID: {peer_id!r}") from None
        limit = default_timeout(len(data), self._base) if timeout is None else timeout
        them = short(peer_id)
        stream: INetStream | None = None
        try:
            with trio.fail_after(limit):
                stream = await self._host.new_stream(peer, [TProtocol(BLOB_PROTOCOL)])
                await stream.write(header)
                self._check_ack(await read_ack(stream), Status.CONTINUE, len(data), them)
                await stream.write(data if isinstance(data, bytes) else bytes(data))
                self._check_ack(await read_ack(stream), Status.OK, len(data), them)
        except GossipError:
            self._stats.add(blobs_failed=1)
            await _reset(stream)
            raise
        except trio.TooSlowError:
            self._stats.add(blobs_failed=1)
            await _reset(stream)
            raise BlobTransferError(
                f"blob {kind!r} ({len(data)} bytes) to peer {them}: no answer within {limit:g} s"
            ) from None
        except Exception as exc:  # stream, muxer, dial and frame errors from py-libp2p
            self._stats.add(blobs_failed=1)
            await _reset(stream)
            cause = exc.__cause__  # py-libp2p's StreamFailure names only the peer; why is here
            why = one_line(exc) + (f" ({one_line(cause)})" if cause is not None else "")
            raise BlobTransferError(
                f"blob {kind!r} ({len(data)} bytes) to peer {them} failed: {why}"
            ) from exc
        await _close(stream)
        self._stats.add(blobs_sent=1, blob_bytes_sent=len(data))
        log.info("[%s] sent blob %r (%d bytes) to [%s]", self._me, kind, len(data), them)

    @staticmethod
    def _check_ack(
        ack: tuple[Status, Reason | None, str], expected: Status, size: int, them: str
    ) -> None:
        status, reason, text = ack
        if status == expected:
            return
        if status == Status.REJECTED:
            name = reason.name if reason is not None else "UNKNOWN"
            message = f"peer {them} rejected blob of {size} bytes ({name}): {text}"
            code = int(reason) if reason is not None else -1
            if reason == Reason.TOO_LARGE:
                raise RemoteBlobTooLarge(message, code=code, reason=text)
            raise BlobRejected(message, code=code, reason=text)
        raise FrameError(f"expected {expected.name} ack, got {status.name}")

    # -- receiver --------------------------------------------------------------

    async def handle_stream(self, stream: INetStream) -> None:
        """Inbound ``/medmesh/blob/1.0.0`` stream (the host gate already vetted the peer)."""
        remote = stream.muxed_conn.peer_id.to_base58()
        them = short(remote)
        try:
            with trio.fail_after(self._base):
                kind, length = await read_header(stream)
            if length > self._max:
                log.warning(
                    "[%s] rejected blob %r from [%s]: declares %d bytes > max_blob_bytes=%d",
                    self._me,
                    kind,
                    them,
                    length,
                    self._max,
                )
                await self._reject(
                    stream, Reason.TOO_LARGE, f"{length} bytes > max_blob_bytes={self._max}"
                )
                return
            handler = self.handler
            if handler is None:
                log.warning(
                    "[%s] rejected blob %r from [%s]: no blob handler", self._me, kind, them
                )
                await self._reject(stream, Reason.NO_HANDLER, "no blob handler registered")
                return
            await stream.write(bytes([Status.CONTINUE]))
            with trio.fail_after(default_timeout(length, self._base)):
                data = await read_exactly(stream, length)
            try:
                await handler(remote, kind, data)
            except Exception as exc:
                log.warning(
                    "[%s] blob handler failed on %r (%d bytes) from [%s]: %s",
                    self._me,
                    kind,
                    length,
                    them,
                    one_line(exc),
                )
                await self._reject(stream, Reason.HANDLER_ERROR, one_line(exc))
                return
            await stream.write(bytes([Status.OK]))
        except FrameError as exc:
            log.warning("[%s] bad blob frame from [%s]: %s", self._me, them, exc)
            await self._reject(stream, Reason.BAD_FRAME, str(exc))
            return
        except trio.TooSlowError:
            log.warning("[%s] blob from [%s] timed out", self._me, them)
            self._stats.add(blobs_rejected=1)
            await _reset(stream)
            return
        except Exception as exc:  # the stream broke under us
            log.warning("[%s] blob stream from [%s] failed: %s", self._me, them, one_line(exc))
            self._stats.add(blobs_rejected=1)
            await _reset(stream)
            return
        await _close(stream)
        self._stats.add(blobs_received=1, blob_bytes_received=length)
        log.info("[%s] received blob %r (%d bytes) from [%s]", self._me, kind, length, them)

    async def _reject(self, stream: INetStream, reason: Reason, text: str) -> None:
        self._stats.add(blobs_rejected=1)
        try:
            await stream.write(encode_reject(reason, text))
        except Exception:
            await _reset(stream)
            return
        await _close(stream)


async def _close(stream: INetStream | None) -> None:
    if stream is None:
        return
    try:
        await stream.close()
    except Exception:
        await _reset(stream)


async def _reset(stream: INetStream | None) -> None:
    if stream is None:
        return
    with trio.CancelScope(shield=True):
        try:
            await stream.reset()
        except Exception:
            pass
