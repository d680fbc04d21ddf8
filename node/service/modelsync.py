"""Catching up on the global model after a restart or a missed round.

A node whose parameters are older than the chain's latest finalized aggregate asks its peers
for theirs over the blob protocol:

- ``model-request`` (JSON ``{"round": r}``): "I need the aggregate of round r or later";
- ``model`` (``MAGIC || round (8 bytes, big-endian) || float32 little-endian parameters``):
  a peer's current global parameters and the finalized round they are the aggregate of.

Nothing a peer sends is trusted: the receiver adopts the parameters only if
``parameters_hash`` of them equals the aggregate hash the chain finalized for that round.
A responder answers one request per peer per ``RESPONSE_INTERVAL_S`` (a rate limit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MODEL_KIND",
    "REQUEST_KIND",
    "ModelOffer",
    "encode_offer",
    "decode_offer",
    "encode_request",
    "decode_request",
    "RESPONSE_INTERVAL_S",
]

MODEL_KIND = "model"
REQUEST_KIND = "model-request"
RESPONSE_INTERVAL_S = 2.0
_MAGIC = b"medmesh/model/v1"


@dataclass(frozen=True)
class ModelOffer:
    round: int
    params: np.ndarray


def encode_offer(offer: ModelOffer) -> bytes:
    return _MAGIC + int(offer.round).to_bytes(8, "big") + offer.params.astype("<f4").tobytes()


def decode_offer(data: bytes, expected_values: int) -> ModelOffer:
    head = len(_MAGIC) + 8
    if not data.startswith(_MAGIC) or len(data) != head + 4 * expected_values:
        raise ValueError(f"not a model offer of {expected_values} parameters ({len(data)} bytes)")
    round_ = int.from_bytes(data[len(_MAGIC) : head], "big")
    return ModelOffer(round_, np.frombuffer(data, dtype="<f4", offset=head).astype(np.float32))


def encode_request(round_: int) -> bytes:
    return json.dumps({"round": int(round_)}).encode()


def decode_request(data: bytes) -> int:
    try:
        round_ = json.loads(data)["round"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed model request ({exc})") from None
    if not isinstance(round_, int) or round_ < 1:
        raise ValueError(f"model request for round {round_!r}")
    return round_
