"""The ckks mode's side-channel messages (sealed and signed before they travel).

Layout: ``b"MMCK" | u32 header length | header JSON {phase, round, sender, included} | body``:

- ``context``: the key holder's public context (:mod:`node.crypto.ckks.scheme`), body = its bytes;
- ``sum``: the aggregator's encrypted sum, body = the framed ciphertext, ``included`` = whose
  ciphertexts it added;
- ``result``: the key holder's decrypted new global parameters, body = float32 LE values;
- with a robust rule (:mod:`node.protection.ckks_robust`): ``gram``, an evaluator's (the
  aggregator's or a verifier's) encrypted inner products (:mod:`node.crypto.ckks.robust`),
  ``included`` = whose, in canonical order; ``sum`` then comes from every evaluator too;
  ``scalars``, the key holder's decrypted Gram matrix, float64 LE, same ``included``.

:func:`majority` says which senders sent one message alike (same members named, same bytes):
the robust key holder acts only on a message a strict majority of the evaluators sent.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

from node.consensus.update import UpdateFormatError

__all__ = ["CkksMessage", "encode", "decode", "largest_group", "majority"]

_MAGIC = b"MMCK"
_MAX_HEADER = 1 << 20
_PHASES = ("context", "sum", "result", "gram", "scalars")


@dataclass(frozen=True)
class CkksMessage:
    phase: str
    round: int
    sender: str
    included: tuple[str, ...]
    body: bytes


def encode(msg: CkksMessage) -> bytes:
    header = json.dumps(
        {
            "phase": msg.phase,
            "round": msg.round,
            "sender": msg.sender.lower(),
            "included": [a.lower() for a in msg.included],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return _MAGIC + struct.pack(">I", len(header)) + header + msg.body


def decode(data: bytes, phase: str) -> CkksMessage:
    if len(data) < 8 or data[:4] != _MAGIC:
        raise UpdateFormatError("not a ckks message (bad magic)")
    (hlen,) = struct.unpack(">I", data[4:8])
    if hlen > _MAX_HEADER or 8 + hlen > len(data):
        raise UpdateFormatError(f"ckks header length {hlen} is out of bounds")
    try:
        h = json.loads(data[8 : 8 + hlen])
        if h["phase"] != phase or phase not in _PHASES:
            raise ValueError(f"a {h['phase']!r} message where {phase!r} was expected")
        return CkksMessage(
            phase,
            int(h["round"]),
            str(h["sender"]),
            tuple(map(str, h["included"])),
            data[8 + hlen :],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UpdateFormatError(f"malformed ckks {phase} message ({exc})") from None


def largest_group(got: dict[str, CkksMessage]) -> list[str]:
    """The senders of the most common message (same members named, same bytes)."""
    groups: dict[tuple[tuple[str, ...], bytes], list[str]] = {}
    for sender, msg in got.items():
        groups.setdefault((msg.included, hashlib.sha256(msg.body).digest()), []).append(sender)
    return max(groups.values(), key=len, default=[])


def majority(got: dict[str, CkksMessage], evaluators: int) -> list[str]:
    """The senders of a message that more than half of ``evaluators`` sent alike, or []."""
    agreeing = largest_group(got)
    return agreeing if 2 * len(agreeing) > evaluators else []
