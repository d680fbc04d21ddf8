"""The secagg messages, typed, and their canonical bytes (always sealed and signed by the
sender before they travel; see :mod:`node.crypto.sealing`).

Layout: ``b"MMSA" | u32 header length | header JSON (sorted keys) | body``. The header's
``phase`` names the message type, so a message of one phase can never be read as another;
the envelope binds it to (deployment, round, sender). Big integers travel as hex strings.
Only :class:`MaskedInput` has a body: its ring elements, little-endian. A
:class:`Consistency` statement also carries its own Ed25519 signature, so it can be checked
apart from its envelope.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from node.consensus.update import UpdateFormatError

__all__ = ["KeyAdvert", "ShareBundle", "MaskedInput", "Consistency", "Unmask", "encode", "decode"]

_MAGIC = b"MMSA"
_MAX_HEADER = 1 << 20


@dataclass(frozen=True)
class KeyAdvert:
    """Phase 1: this round's ephemeral X25519 mask key (signed through the envelope)."""

    round: int
    sender: str
    mask_key: bytes


@dataclass(frozen=True)
class ShareBundle:
    """Phase 2: the holder's Shamir shares (point x) of the sender's self-mask seed b and
    mask key s. Sealed to the holder alone."""

    round: int
    sender: str
    holder: str
    x: int
    b: int
    s: int


@dataclass(frozen=True)
class MaskedInput:
    """Phase 3, the committed blob: y_u over the ring, and the participants it was masked with."""

    round: int
    sender: str
    participants: tuple[str, ...]
    ring_bits: int
    frac_bits: int
    values: np.ndarray


@dataclass(frozen=True)
class Consistency:
    """Phase 4a (Bonawitz et al. 2017, section 6, ConsistencyCheck): the participants, a hash of
    their mask keys and the survivors this peer saw, with its Ed25519 signature over them
    (:func:`node.protection.secagg_consistency.statement_digest`)."""

    round: int
    sender: str
    participants: tuple[str, ...]
    keys_hash: bytes
    survivors: tuple[str, ...]
    signature: bytes


@dataclass(frozen=True)
class Unmask:
    """Phase 4b: the sender's shares of the survivors' b and of the dropped peers' s, released
    for one agreed (participants, survivors) statement."""

    round: int
    sender: str
    participants: tuple[str, ...]
    survivors: tuple[str, ...]
    seeds: dict[str, tuple[int, int]]  # survivor -> (x, y)
    keys: dict[str, tuple[int, int]]  # dropped participant -> (x, y)


Message = KeyAdvert | ShareBundle | MaskedInput | Consistency | Unmask
_PHASES = {
    KeyAdvert: "keys",
    ShareBundle: "shares",
    MaskedInput: "masked",
    Consistency: "consistency",
    Unmask: "unmask",
}


def _points(d: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
    return {a: [hex(x), hex(y)] for a, (x, y) in sorted(d.items())}


def encode(msg: Message) -> bytes:
    head: dict = {"phase": _PHASES[type(msg)], "round": msg.round, "sender": msg.sender.lower()}
    body = b""
    if isinstance(msg, KeyAdvert):
        head["mask_key"] = msg.mask_key.hex()
    elif isinstance(msg, ShareBundle):
        head.update(holder=msg.holder.lower(), x=msg.x, b=hex(msg.b), s=hex(msg.s))
    elif isinstance(msg, MaskedInput):
        head.update(
            participants=[p.lower() for p in msg.participants],
            ring_bits=msg.ring_bits,
            frac_bits=msg.frac_bits,
            count=int(msg.values.size),
        )
        body = msg.values.astype(np.dtype(msg.values.dtype).newbyteorder("<")).tobytes()
    elif isinstance(msg, Consistency):
        head.update(
            participants=[p.lower() for p in msg.participants],
            keys_hash=msg.keys_hash.hex(),
            survivors=[p.lower() for p in msg.survivors],
            signature=msg.signature.hex(),
        )
    else:
        head.update(
            participants=[p.lower() for p in msg.participants],
            survivors=[p.lower() for p in msg.survivors],
            seeds=_points(msg.seeds),
            keys=_points(msg.keys),
        )
    header = json.dumps(head, sort_keys=True, separators=(",", ":")).encode()
    return _MAGIC + struct.pack(">I", len(header)) + header + body


def _read_points(d: dict) -> dict[str, tuple[int, int]]:
    return {str(a): (int(p[0], 16), int(p[1], 16)) for a, p in d.items()}


def decode(data: bytes, phase: str) -> Message:
    """Parse a message that must be of ``phase``; :class:`UpdateFormatError` otherwise."""
    if len(data) < 8 or data[:4] != _MAGIC:
        raise UpdateFormatError("not a secagg message (bad magic)")
    (hlen,) = struct.unpack(">I", data[4:8])
    if hlen > _MAX_HEADER or 8 + hlen > len(data):
        raise UpdateFormatError(f"secagg header length {hlen} is out of bounds")
    body = data[8 + hlen :]
    try:
        h = json.loads(data[8 : 8 + hlen])
        if h["phase"] != phase:
            raise ValueError(f"a {h['phase']!r} message where {phase!r} was expected")
        r, sender = int(h["round"]), str(h["sender"])
        if phase == "keys":
            msg: Message = KeyAdvert(r, sender, bytes.fromhex(h["mask_key"]))
        elif phase == "shares":
            msg = ShareBundle(
                r, sender, str(h["holder"]), int(h["x"]), int(h["b"], 16), int(h["s"], 16)
            )
        elif phase == "masked":
            bits, count = int(h["ring_bits"]), int(h["count"])
            if bits not in (32, 64) or len(body) != count * bits // 8:
                raise ValueError(f"{len(body)} bytes for {count} elements of {bits} bits")
            dtype = np.uint32 if bits == 32 else np.uint64
            values = np.frombuffer(body, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
            msg = MaskedInput(
                r, sender, tuple(map(str, h["participants"])), bits, int(h["frac_bits"]), values
            )
        elif phase == "consistency":
            msg = Consistency(
                r,
                sender,
                tuple(map(str, h["participants"])),
                bytes.fromhex(h["keys_hash"]),
                tuple(map(str, h["survivors"])),
                bytes.fromhex(h["signature"]),
            )
        elif phase == "unmask":
            msg = Unmask(
                r,
                sender,
                tuple(map(str, h["participants"])),
                tuple(map(str, h["survivors"])),
                _read_points(h["seeds"]),
                _read_points(h["keys"]),
            )
        else:
            raise ValueError(f"unknown phase {phase!r}")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise UpdateFormatError(f"malformed secagg {phase} message ({exc})") from None
    if phase != "masked" and body:
        raise UpdateFormatError(f"secagg {phase} message has trailing bytes")
    return msg
