"""Joining a running consortium: the agreed standardizer, fetched from the members.

The standardizer is agreed once, at the consortium's first start (:meth:`HospitalPeer.agree_standardizer`).
A node that starts later with no state (a new member admitted by endorsement, or a member whose
state directory was lost) cannot re-run that agreement; it asks the members for the standardizer
they hold over the blob protocol:

- ``standardizer-request`` (empty JSON object ``{}``);
- ``standardizer`` (canonical JSON ``{"mean": [...], "std": [...]}``, float64 values).

Nothing one member sends is trusted: the joiner adopts a standardizer only once a majority of
the other active members (``n_others // 2 + 1``) sent byte-identical copies (:func:`agreed`),
so a minority of members cannot give it a different scaling. Every value must be finite and
every ``std`` positive. A responder answers one request per peer per ``RESPONSE_INTERVAL_S``.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np

from node.data.samples import Standardizer

__all__ = [
    "REQUEST_KIND",
    "OFFER_KIND",
    "RESPONSE_INTERVAL_S",
    "encode_offer",
    "decode_offer",
    "agreed",
    "majority",
]

REQUEST_KIND = "standardizer-request"
OFFER_KIND = "standardizer"
RESPONSE_INTERVAL_S = 2.0


def encode_offer(std: Standardizer) -> bytes:
    return json.dumps(
        {"mean": [float(v) for v in std.mean], "std": [float(v) for v in std.std]},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def decode_offer(data: bytes, features: int) -> bytes:
    """``data`` checked (shape, finite, std > 0); returned as the canonical bytes to vote on."""
    try:
        obj = json.loads(data)
        mean, std = obj["mean"], obj["std"]
        values = [float(v) for v in mean] + [float(v) for v in std]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed standardizer ({exc})") from None
    if len(mean) != features or len(std) != features:
        raise ValueError(
            f"standardizer of {len(mean)}/{len(std)} features, this node has {features}"
        )
    if not all(math.isfinite(v) for v in values) or not all(float(s) > 0 for s in std):
        raise ValueError("standardizer with a non-finite value or a std <= 0")
    return encode_offer(
        Standardizer(np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64))
    )


def majority(n_others: int) -> int:
    """Identical copies needed from the other active members."""
    return n_others // 2 + 1


def agreed(offers: dict[str, bytes], need: int) -> Standardizer | None:
    """The standardizer sent identically by at least ``need`` members, else None."""
    if not offers:
        return None
    blob, votes = Counter(offers.values()).most_common(1)[0]
    if votes < need:
        return None
    obj = json.loads(blob)
    return Standardizer(
        np.asarray(obj["mean"], dtype=np.float64), np.asarray(obj["std"], dtype=np.float64)
    )
