"""The CKKS public context's bytes: what a key holder publishes, and how a peer checks it.

``b"MMCP" | u8 version | u32 N | u8 k | k x u8 prime bits | u8 scale bits | SEAL public key``:
the consortium's :class:`~node.crypto.ckks.params.CKKSParams` and the public key, no field for
anything else (no secret can ride along). :func:`parse_export` refuses an export whose
parameters differ from the consortium's; :func:`context_id` is the id every ciphertext carries
(:mod:`node.crypto.ckks.format`), binding it to one public context.
"""

from __future__ import annotations

import hashlib
import struct

from node.crypto.ckks.params import CKKSError, CKKSParams

__all__ = ["context_id", "export_context", "parse_export"]

_CONTEXT_DOMAIN = b"medmesh/ckks/context/v1"
_PUB = struct.Struct(">4sBIB")
_PUB_MAGIC = b"MMCP"
_PUB_VERSION = 1


def context_id(public_context: bytes) -> bytes:
    """The 32-byte id ciphertexts carry: SHA-256 of the exported public context."""
    return hashlib.sha256(_CONTEXT_DOMAIN + bytes(public_context)).digest()


def export_context(params: CKKSParams, public_key: bytes) -> bytes:
    """The public context a key holder publishes: ``params`` and the SEAL ``public_key``."""
    bits = params.coeff_mod_bit_sizes
    return (
        _PUB.pack(_PUB_MAGIC, _PUB_VERSION, params.poly_modulus_degree, len(bits))
        + bytes(bits)
        + bytes([params.scale_bits])
        + public_key
    )


def parse_export(data: bytes, params: CKKSParams) -> bytes:
    """Check an export's parameters against ``params``; return the SEAL public-key bytes."""
    if len(data) < _PUB.size or data[:4] != _PUB_MAGIC:
        raise CKKSError(
            "public context: not a medmesh CKKS public context (bad magic or too short)"
        )
    _, version, n, k = _PUB.unpack_from(data)
    if version != _PUB_VERSION:
        raise CKKSError(
            f"public context: unsupported format version {version} (this node reads {_PUB_VERSION})"
        )
    if len(data) < _PUB.size + k + 1:
        raise CKKSError("public context: truncated parameter block")
    bits = tuple(data[_PUB.size : _PUB.size + k])
    scale_bits = data[_PUB.size + k]
    if (n, bits, scale_bits) != (
        params.poly_modulus_degree,
        params.coeff_mod_bit_sizes,
        params.scale_bits,
    ):
        raise CKKSError(
            f"public context: ring {n}, primes {list(bits)}, scale 2^{scale_bits} differ from the "
            f"consortium's {params.poly_modulus_degree}, {list(params.coeff_mod_bit_sizes)}, "
            f"2^{params.scale_bits}"
        )
    return data[_PUB.size + k + 1 :]
