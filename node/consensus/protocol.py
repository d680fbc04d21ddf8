"""Typed control messages peers publish on the GossipSub round topic.

Control messages are small hints ("round 3 opened", "I committed", "I attested"); the chain
stays the source of truth, so a lost or forged hint can delay a peer but never mislead it.
Model updates never travel here: they go over direct streams (see :mod:`gossip`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from node.errors import MedmeshError

__all__ = [
    "ROUND_TOPIC",
    "SETUP_TOPIC",
    "ControlError",
    "StatsShared",
    "RoundOpened",
    "UpdateCommitted",
    "AggregateAttested",
    "encode",
    "decode",
]

ROUND_TOPIC = "medmesh/v1/rounds"
SETUP_TOPIC = "medmesh/v1/setup"


class ControlError(MedmeshError, ValueError):
    """A control message that does not parse or has the wrong fields."""


@dataclass(frozen=True)
class StatsShared:
    """A hospital's feature statistics (count, sums, sums of squares) for standardization."""

    sender: str
    stats: dict


@dataclass(frozen=True)
class RoundOpened:
    round: int
    opener: str


@dataclass(frozen=True)
class UpdateCommitted:
    round: int
    sender: str
    update_hash: str
    size: int


@dataclass(frozen=True)
class AggregateAttested:
    round: int
    sender: str
    aggregate_hash: str


_TYPES = {
    cls.__name__: cls for cls in (StatsShared, RoundOpened, UpdateCommitted, AggregateAttested)
}
ControlMessage = StatsShared | RoundOpened | UpdateCommitted | AggregateAttested


def encode(msg: ControlMessage) -> bytes:
    return json.dumps(
        {"type": type(msg).__name__, **asdict(msg)}, sort_keys=True, separators=(",", ":")
    ).encode()


def decode(data: bytes) -> ControlMessage:
    try:
        obj = json.loads(data)
        cls = _TYPES[obj.pop("type")]
        names = {f.name for f in fields(cls)}
        if set(obj) != names:
            raise ValueError(f"fields {sorted(obj)} != {sorted(names)}")
        return cls(**obj)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ControlError(f"malformed control message ({exc})") from None
