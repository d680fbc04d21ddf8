"""Update compression: top-k sparsification with error feedback, and 8-bit quantization.

- **Top-k with error feedback** (Stich et al. 2018, "Sparsified SGD with Memory"; Lin et al.
  2018, "Deep Gradient Compression"): send only the k largest-magnitude coordinates of
  ``delta + residual`` and keep what was not sent as the residual for the next round, so
  nothing is lost, only delayed. The residual is per-peer state that lives across rounds
  (:class:`UpdateCodec` holds it; :meth:`UpdateCodec.state_dict` saves it).
- **8-bit quantization**: symmetric, one float32 scale per update, ``q = rint(v / s)`` with
  ``s = max|v| / 127``; what quantization loses also goes into the residual.
- **Shared random-k for secure aggregation**: masked inputs can only be summed coordinate by
  coordinate if every peer sends the *same* coordinates, and per-peer top-k indices would leak
  where each update is large. So under secagg the k coordinates are drawn from a seed every
  peer derives from the round (:func:`shared_indices`): random-k with error feedback
  (Stich et al. 2018 analyse random-k too). No index travels on the wire.

Wire layout of a compressed update (it is sealed before it leaves the node)::

    b"MMZ1" | u32 header length | header JSON | bitmap of kept coordinates (n bits, if sparse)
            | kept values (float32 LE, or int8 when quantized)

The header carries round, sender, samples, epsilon, the model size, and the scale.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, replace

import numpy as np

from node.consensus.update import ModelUpdate, UpdateFormatError, decode_update, encode_update

__all__ = [
    "CompressionConfig",
    "top_k_indices",
    "quantize8",
    "dequantize8",
    "shared_indices",
    "ErrorFeedback",
    "UpdateCodec",
    "encode_compressed",
    "decode_compressed",
]

_MAGIC = b"MMZ1"
_MAX_HEADER = 4096


@dataclass(frozen=True)
class CompressionConfig:
    topk: float | None = None  # fraction of coordinates kept (0 < topk <= 1), e.g. 0.1
    quantize: bool = False  # 8-bit values

    def __post_init__(self) -> None:
        if self.topk is not None and not 0 < self.topk <= 1:
            raise ValueError(f"top-k fraction must be in (0, 1], got {self.topk}")

    @property
    def active(self) -> bool:
        return self.topk is not None or self.quantize

    def kept(self, n: int) -> int:
        return n if self.topk is None else max(1, int(round(self.topk * n)))


def top_k_indices(v: np.ndarray, k: int) -> np.ndarray:
    """Ascending indices of the ``k`` largest |v| (ties broken towards lower indices)."""
    if k >= v.size:
        return np.arange(v.size)
    order = np.argsort(-np.abs(v), kind="stable")[:k]
    return np.sort(order)


def quantize8(values: np.ndarray) -> tuple[np.ndarray, float]:
    peak = float(np.abs(values).max(initial=0.0))
    scale = np.float32(peak / 127.0) if peak > 0 else np.float32(1.0)
    q = np.clip(np.rint(values / scale), -127, 127).astype(np.int8)
    return q, float(scale)


def dequantize8(q: np.ndarray, scale: float) -> np.ndarray:
    return (q.astype(np.float32) * np.float32(scale)).astype(np.float32)


def shared_indices(seed: bytes, n: int, k: int) -> np.ndarray:
    """The round's common coordinate set for secure aggregation (ascending)."""
    if k >= n:
        return np.arange(n)
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(hashlib.sha256(seed).digest(), "big")))
    return np.sort(rng.choice(n, size=k, replace=False))


class ErrorFeedback:
    """The residual of what was not yet sent (float32, one per model coordinate)."""

    def __init__(self, size: int) -> None:
        self.residual = np.zeros(size, dtype=np.float32)

    def corrected(self, delta: np.ndarray) -> np.ndarray:
        return (delta.astype(np.float32) + self.residual).astype(np.float32)

    def keep(self, corrected: np.ndarray, sent_dense: np.ndarray) -> None:
        self.residual = (corrected - sent_dense).astype(np.float32)


def encode_compressed(
    update: ModelUpdate, idx: np.ndarray, values: np.ndarray, scale: float | None
) -> bytes:
    n = int(update.delta.size)
    sparse = idx.size < n
    header = json.dumps(
        {
            "round": update.round,
            "sender": update.sender,
            "samples": update.samples,
            "epsilon": update.epsilon,
            "values": n,
            "kept": int(idx.size),
            "sparse": sparse,
            "scale": scale,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    bitmap = b""
    if sparse:
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        bitmap = np.packbits(mask).tobytes()
    body = values.astype(np.int8).tobytes() if scale is not None else values.astype("<f4").tobytes()
    return _MAGIC + struct.pack(">I", len(header)) + header + bitmap + body


def decode_compressed(data: bytes, *, expected_values: int | None = None) -> ModelUpdate:
    """Parse a compressed update into a dense one; :class:`UpdateFormatError` if malformed."""
    if len(data) < 8 or data[:4] != _MAGIC:
        raise UpdateFormatError("not a compressed medmesh update (bad magic)")
    (hlen,) = struct.unpack(">I", data[4:8])
    if hlen > _MAX_HEADER or 8 + hlen > len(data):
        raise UpdateFormatError(f"update header length {hlen} is out of bounds")
    try:
        h = json.loads(data[8 : 8 + hlen])
        n, kept, sparse, scale = int(h["values"]), int(h["kept"]), bool(h["sparse"]), h["scale"]
        round_, sender = int(h["round"]), str(h["sender"])
        samples, epsilon = int(h["samples"]), float(h["epsilon"])
        scale = None if scale is None else float(scale)
    except (ValueError, KeyError, TypeError) as exc:
        raise UpdateFormatError(f"malformed compressed update header ({exc})") from None
    if expected_values is not None and n != expected_values:
        raise UpdateFormatError(f"update has {n} values, the model has {expected_values}")
    if (
        not 0 < kept <= n
        or (not sparse and kept != n)
        or (scale is not None and not (np.isfinite(scale) and scale > 0))
    ):
        raise UpdateFormatError(
            f"implausible compressed update (kept {kept} of {n}, scale {scale})"
        )
    rest = data[8 + hlen :]
    nbitmap = (n + 7) // 8 if sparse else 0
    width = 1 if scale is not None else 4
    if len(rest) != nbitmap + kept * width:
        raise UpdateFormatError(
            f"compressed update carries {len(rest)} bytes, expected {nbitmap + kept * width}"
        )
    if sparse:
        idx = np.flatnonzero(np.unpackbits(np.frombuffer(rest[:nbitmap], np.uint8), count=n))
        if idx.size != kept:
            raise UpdateFormatError(f"bitmap marks {idx.size} coordinates, header says {kept}")
    else:
        idx = np.arange(n)
    raw = rest[nbitmap:]
    values = (
        dequantize8(np.frombuffer(raw, np.int8), scale)
        if scale is not None
        else np.frombuffer(raw, "<f4")
    )
    delta = np.zeros(n, dtype=np.float32)
    delta[idx] = values
    # re-validate the dense form exactly as an uncompressed update is validated
    return decode_update(
        encode_update(ModelUpdate(round_, sender, samples, epsilon, delta)),
        expected_values=expected_values,
    )


class UpdateCodec:
    """How this peer's sealed updates are encoded: plain float32, or compressed with error
    feedback. :meth:`encode` advances the residual, so call it once per round."""

    def __init__(self, config: CompressionConfig | None, size: int) -> None:
        self.config = config if config is not None and config.active else None
        self.feedback = ErrorFeedback(size) if self.config is not None else None

    def encode(self, update: ModelUpdate) -> bytes:
        config, feedback = self.config, self.feedback
        if config is None or feedback is None:  # both or neither (__init__)
            return encode_update(update)
        corrected = feedback.corrected(update.delta)
        idx = top_k_indices(corrected, config.kept(corrected.size))
        values = corrected[idx]
        scale = None
        if config.quantize:
            values, scale = quantize8(values)
            sent = dequantize8(values, scale)
        else:
            sent = values.astype(np.float32)
        dense = np.zeros_like(corrected)
        dense[idx] = sent
        feedback.keep(corrected, dense)
        return encode_compressed(update, idx, values, scale)

    def decode(self, data: bytes, *, expected_values: int | None = None) -> ModelUpdate:
        if self.config is None:
            return decode_update(data, expected_values=expected_values)
        return decode_compressed(data, expected_values=expected_values)

    def sparse_for_secagg(
        self, update: ModelUpdate, idx: np.ndarray
    ) -> tuple[ModelUpdate, np.ndarray]:
        """Error-corrected values at the round's shared indices, and the update as sent (dense)."""
        if self.feedback is None:
            return update, update.delta[idx]
        corrected = self.feedback.corrected(update.delta)
        dense = np.zeros_like(corrected)
        dense[idx] = corrected[idx]
        self.feedback.keep(corrected, dense)
        return replace(update, delta=dense), corrected[idx]

    def state_dict(self) -> dict:
        return {"residual": None if self.feedback is None else self.feedback.residual.tolist()}
