"""Wire format of the direct blob protocol ``/medmesh/blob/1.0.0``.

Model updates (1-20 MB) never travel over pubsub: py-libp2p silently drops pubsub
messages over 1 MiB at the sender and amplifies large ones 4-5x in the mesh
(docs/libp2p-pitfalls.md #2). They go over one fresh stream per blob instead::

    sender                                   receiver
    header  = version u8 | kind_len u8 | length u64 (big-endian) | kind (ASCII)
                                       -->   rejects length > max_blob_bytes here,
                                             before a single payload byte is read
                                       <--   ack: CONTINUE  or  REJECTED
    payload = exactly `length` bytes   -->   read exactly `length` bytes, run handler
                                       <--   ack: OK        or  REJECTED

    ack      = status u8                          (OK = 0, CONTINUE = 1)
    REJECTED = 2 u8 | reason u8 | text_len u16 | text (UTF-8, <= 256 bytes)

The CONTINUE step (like HTTP's ``100-continue``) means an oversized blob costs one
round trip, not its size in bandwidth, and the receiver never has unread payload
stuck in its Yamux window.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Protocol

BLOB_PROTOCOL = "/medmesh/blob/1.0.0"
VERSION = 1
MAX_KIND_BYTES = 64
MAX_REASON_BYTES = 256
READ_CHUNK = 1 << 20

_HEADER = struct.Struct(">BBQ")
_REASON = struct.Struct(">BBH")


class Status(IntEnum):
    """First byte of every ack."""

    OK = 0
    CONTINUE = 1
    REJECTED = 2


class Reason(IntEnum):
    """Why a receiver rejected a blob (second byte of a REJECTED ack)."""

    TOO_LARGE = 1
    BAD_FRAME = 2
    NO_HANDLER = 3
    HANDLER_ERROR = 4
    INCOMPLETE = 5


class FrameError(Exception):
    """Malformed or truncated frame (internal; mapped to ``BlobTransferError``)."""


class Stream(Protocol):
    """The part of py-libp2p's ``INetStream`` this module uses."""

    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


def check_kind(kind: str) -> bytes:
    """Encode a blob kind, raising ``ValueError`` unless it is 1-64 ASCII bytes."""
    try:
        raw = kind.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"blob kind must be ASCII, got {kind!r}") from None
    if not 1 <= len(raw) <= MAX_KIND_BYTES:
        raise ValueError(f"blob kind must be 1-{MAX_KIND_BYTES} bytes, got {len(raw)}")
    return raw


def encode_header(kind: str, length: int) -> bytes:
    """The frame header announcing a ``length``-byte payload of ``kind``."""
    raw = check_kind(kind)
    return _HEADER.pack(VERSION, len(raw), length) + raw


def encode_reject(reason: Reason, text: str) -> bytes:
    """A REJECTED ack with a short human-readable ``text``."""
    raw = text.encode("utf-8")[:MAX_REASON_BYTES]
    return _REASON.pack(Status.REJECTED, reason, len(raw)) + raw


async def read_exactly(stream: Stream, n: int) -> bytes:
    """Read exactly ``n`` bytes or raise :class:`FrameError`.

    py-libp2p's own ``read_exactly`` gives up after 100 partial reads, which a
    multi-megabyte payload easily needs; this loop has no such cap.
    """
    buf = bytearray(n)
    view = memoryview(buf)
    pos = 0
    while pos < n:
        chunk = await stream.read(min(n - pos, READ_CHUNK))
        if not chunk:
            raise FrameError(f"stream ended after {pos} of {n} bytes")
        view[pos : pos + len(chunk)] = chunk
        pos += len(chunk)
    return bytes(buf)


async def read_header(stream: Stream) -> tuple[str, int]:
    """Read a frame header; return ``(kind, length)``."""
    version, kind_len, length = _HEADER.unpack(await read_exactly(stream, _HEADER.size))
    if version != VERSION:
        raise FrameError(f"unsupported blob frame version {version}")
    if not 1 <= kind_len <= MAX_KIND_BYTES:
        raise FrameError(f"bad kind length {kind_len}")
    raw = await read_exactly(stream, kind_len)
    try:
        kind = raw.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("blob kind is not ASCII") from None
    return kind, length


async def read_ack(stream: Stream) -> tuple[Status, Reason | None, str]:
    """Read one ack; return ``(status, reason, text)`` (reason/text only if REJECTED)."""
    (first,) = await read_exactly(stream, 1)
    if first in (Status.OK, Status.CONTINUE):
        return Status(first), None, ""
    if first != Status.REJECTED:
        raise FrameError(f"unknown ack status {first}")
    code, text_len = struct.unpack(">BH", await read_exactly(stream, 3))
    text = (await read_exactly(stream, text_len)).decode("utf-8", errors="replace")
    try:
        reason: Reason | None = Reason(code)
    except ValueError:
        reason = None
    return Status.REJECTED, reason, text
