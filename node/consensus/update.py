"""Typed model updates and their canonical bytes.

Wire layout of a plaintext update (it is always sealed before it leaves the node)::

    b"MMU1" | u32 big-endian header length | header (UTF-8 JSON, sorted keys) | float32 LE values

The header names the round, the sender's registry address, the sample count, the epsilon the
sender has spent, and the number of values; :func:`decode_update` checks every field.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

import numpy as np

from node.errors import MedmeshError

__all__ = ["ModelUpdate", "UpdateFormatError", "encode_update", "decode_update", "parameters_hash"]

_MAGIC = b"MMU1"
_MAX_HEADER = 4096


class UpdateFormatError(MedmeshError, ValueError):
    """The bytes are not a well-formed medmesh update."""


@dataclass(frozen=True)
class ModelUpdate:
    round: int
    sender: str  # registry (Ethereum) address, checksummed
    samples: int
    epsilon: float
    delta: np.ndarray  # float32, flat


def encode_update(update: ModelUpdate) -> bytes:
    header = json.dumps(
        {
            "round": update.round,
            "sender": update.sender,
            "samples": update.samples,
            "epsilon": update.epsilon,
            "values": int(update.delta.size),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    body = np.ascontiguousarray(update.delta, dtype="<f4").tobytes()
    return _MAGIC + struct.pack(">I", len(header)) + header + body


def decode_update(data: bytes, *, expected_values: int | None = None) -> ModelUpdate:
    """Parse and validate; raises :class:`UpdateFormatError` with a one-line reason."""
    if len(data) < 8 or data[:4] != _MAGIC:
        raise UpdateFormatError("not a medmesh update (bad magic)")
    (hlen,) = struct.unpack(">I", data[4:8])
    if hlen > _MAX_HEADER or 8 + hlen > len(data):
        raise UpdateFormatError(f"update header length {hlen} is out of bounds")
    try:
        header = json.loads(data[8 : 8 + hlen])
        round_, sender = int(header["round"]), str(header["sender"])
        samples, epsilon, values = (
            int(header["samples"]),
            float(header["epsilon"]),
            int(header["values"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UpdateFormatError(f"malformed update header ({exc})") from None
    body = data[8 + hlen :]
    if len(body) != 4 * values:
        raise UpdateFormatError(f"update declares {values} values but carries {len(body)} bytes")
    if expected_values is not None and values != expected_values:
        raise UpdateFormatError(f"update has {values} values, the model has {expected_values}")
    if samples <= 0 or not np.isfinite(epsilon) or epsilon < 0:
        raise UpdateFormatError(
            f"implausible update metadata (samples={samples}, epsilon={epsilon})"
        )
    delta = np.frombuffer(body, dtype="<f4").astype(np.float32)
    if not np.isfinite(delta).all():
        raise UpdateFormatError("update contains NaN or infinite values")
    return ModelUpdate(round_, sender, samples, epsilon, delta)


def parameters_hash(params: np.ndarray) -> bytes:
    """SHA-256 of a parameter vector's canonical float32 little-endian bytes (32 bytes).

    This is the aggregate hash peers attest on chain and that ``audit verify`` recomputes.
    """
    return hashlib.sha256(
        b"medmesh/params/v1" + np.ascontiguousarray(params, dtype="<f4").tobytes()
    ).digest()
