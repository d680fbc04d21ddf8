"""Byte layout of a CKKS-encrypted vector: a fixed header, a digest, then one ciphertext per chunk.

``b"MMCK" | u8 version | u8 layout | u64 round | 32-byte context id | u64 length | u32 chunks |
u32 summands | 32-byte SHA-256(header || body) | body``, where the body is ``chunks`` times
``u32 size | SEAL ciphertext bytes`` (big-endian integers throughout).

The header binds the ciphertexts to one round and one public context (the SHA-256 of the key
holder's exported context): SEAL itself only checks that a ciphertext's *parameters* match, so
a ciphertext made under another key holder's key with the same parameters would otherwise load
and decrypt to noise. The digest catches any changed byte (CKKS ciphertexts are malleable and
SEAL accepts most flipped bits); it has no key, so an adversary who recomputes it is caught by
the layer above (the sender's signature and the blob hash committed on chain).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from node.crypto.ckks.params import CKKSError

__all__ = ["Layout", "CipherHeader", "pack", "unpack", "join_chunks", "split_chunks"]

_MAGIC = b"MMCK"
_VERSION = 1
_HEAD = struct.Struct(">4sBBQ32sQII")
_DIGEST = 32
_SIZE = struct.Struct(">I")


class Layout:
    """What the slots hold: plain values, or ``weight * delta`` followed by one slot of ``weight``."""

    PLAIN = 0
    WEIGHTED = 1
    NAMES = {PLAIN: "plain", WEIGHTED: "weighted"}


@dataclass(frozen=True)
class CipherHeader:
    layout: int
    round: int
    context_id: bytes
    length: int  # values encrypted, the weight slot included
    chunks: int
    summands: int  # updates summed into these ciphertexts (1 for a peer's own)

    def describe(self) -> str:
        return (
            f"{Layout.NAMES.get(self.layout, self.layout)} vector of {self.length} values, round {self.round}, "
            f"context {self.context_id.hex()[:16]}, {self.summands} summand(s)"
        )


def pack(header: CipherHeader, chunks: list[bytes]) -> bytes:
    head = _HEAD.pack(
        _MAGIC,
        _VERSION,
        header.layout,
        header.round,
        header.context_id,
        header.length,
        header.chunks,
        header.summands,
    )
    body = join_chunks(chunks)
    return head + hashlib.sha256(head + body).digest() + body


def unpack(
    data: bytes, *, per_chunk: int, max_length: int, max_chunk_bytes: int
) -> tuple[CipherHeader, list[bytes]]:
    """Parse and check the framing of ``data``; raise :class:`CKKSError` naming the first problem."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CKKSError(f"ciphertext: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEAD.size + _DIGEST or data[:4] != _MAGIC:
        raise CKKSError("ciphertext: not a medmesh CKKS vector (bad magic or too short)")
    magic, version, layout, rnd, ctx_id, length, n_chunks, summands = _HEAD.unpack_from(data)
    if version != _VERSION:
        raise CKKSError(
            f"ciphertext: unsupported format version {version} (this node reads {_VERSION})"
        )
    if layout not in Layout.NAMES:
        raise CKKSError(f"ciphertext: unknown layout {layout}")
    if not 1 <= length <= max_length:
        raise CKKSError(f"ciphertext: vector length {length} outside 1..{max_length}")
    if n_chunks != -(-length // per_chunk):
        raise CKKSError(
            f"ciphertext: {n_chunks} chunks cannot hold {length} values at {per_chunk} each"
        )
    if summands < 1:
        raise CKKSError("ciphertext: zero summands")
    bound = _HEAD.size + _DIGEST + n_chunks * (_SIZE.size + max_chunk_bytes)
    if len(data) > bound:
        raise CKKSError(
            f"ciphertext: {len(data)} bytes exceeds the {bound}-byte bound for {length} values"
        )
    body = memoryview(data)[_HEAD.size + _DIGEST :]
    digest = hashlib.sha256(data[: _HEAD.size])
    digest.update(body)
    if digest.digest() != data[_HEAD.size : _HEAD.size + _DIGEST]:
        raise CKKSError(
            "ciphertext: digest mismatch (bytes were changed in transit or tampered with)"
        )
    chunks = split_chunks(body, n_chunks, max_chunk_bytes)
    return CipherHeader(layout, rnd, ctx_id, length, n_chunks, summands), chunks


def join_chunks(chunks: list[bytes]) -> bytes:
    """``u32 size | bytes`` for each chunk, concatenated."""
    return b"".join(part for c in chunks for part in (_SIZE.pack(len(c)), c))


def split_chunks(body: bytes | memoryview, n_chunks: int, max_chunk_bytes: int) -> list[bytes]:
    """Inverse of :func:`join_chunks` for exactly ``n_chunks`` chunks of at most ``max_chunk_bytes``."""
    chunks, pos = [], 0
    for i in range(n_chunks):
        if pos + _SIZE.size > len(body):
            raise CKKSError(f"ciphertext: truncated before chunk {i}")
        (size,) = _SIZE.unpack_from(body, pos)
        pos += _SIZE.size
        if size > max_chunk_bytes or pos + size > len(body):
            raise CKKSError(f"ciphertext: chunk {i} size {size} out of bounds")
        chunks.append(bytes(body[pos : pos + size]))
        pos += size
    if pos != len(body):
        raise CKKSError(f"ciphertext: {len(body) - pos} trailing bytes after the last chunk")
    return chunks
