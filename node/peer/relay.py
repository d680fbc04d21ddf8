"""Relaying committed update blobs: a peer whose direct transfer from X failed pulls X's
blob from another peer that holds it.

A committed blob can be relayed by anyone who holds it because the chain pins it: the
committer put ``sha256(blob)`` on chain, the blob is sealed to every peer the mode sends it
to and signed by the committer, so a relayer can neither read nor alter it. Two blob kinds:

- ``update-request`` (JSON ``{"round", "committer", "update_hash"}``): "send me the blob
  ``committer`` committed for ``round``, whose hash is ``update_hash``". The holder accepts
  the request (ok ack) only if it holds exactly that blob, then sends it back; otherwise it
  rejects it, and the requester asks the next peer.
- ``update-relay`` (``MAGIC || committer (20 bytes) || blob``): the blob. The receiver files
  it under (round, committer) only if its hash equals the commitment on chain; then the usual
  checks run on it as on a directly received blob (signature, round binding, mode checks).

A holder answers each (requester, round, committer) once: a peer cannot make it resend.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from node.errors import MedmeshError

__all__ = [
    "REQUEST_KIND",
    "RELAY_KIND",
    "RelayRequest",
    "RelayError",
    "encode_request",
    "decode_request",
    "encode_relay",
    "decode_relay",
]

REQUEST_KIND = "update-request"
RELAY_KIND = "update-relay"
_MAGIC = b"medmesh/relay/v1"


class RelayError(MedmeshError, ValueError):
    """A relay message that does not parse."""


@dataclass(frozen=True)
class RelayRequest:
    round: int
    committer: str  # 0x-prefixed account address
    update_hash: str  # hex sha256 of the committed blob

    def __post_init__(self) -> None:
        if not isinstance(self.round, int) or self.round < 1:
            raise RelayError(f"bad round {self.round!r}")
        _address_bytes(self.committer)
        try:
            if len(bytes.fromhex(self.update_hash)) != 32:
                raise ValueError
        except (ValueError, TypeError):
            raise RelayError(f"bad update hash {self.update_hash!r}") from None


def encode_request(req: RelayRequest) -> bytes:
    return json.dumps(asdict(req), sort_keys=True, separators=(",", ":")).encode()


def decode_request(data: bytes) -> RelayRequest:
    try:
        obj = json.loads(data)
        if set(obj) != {"round", "committer", "update_hash"}:
            raise ValueError(f"fields {sorted(obj)}")
        return RelayRequest(**obj)
    except (ValueError, TypeError, AttributeError) as exc:
        raise RelayError(f"malformed relay request ({exc})") from None


def encode_relay(committer: str, blob: bytes) -> bytes:
    return _MAGIC + _address_bytes(committer) + blob


def decode_relay(data: bytes) -> tuple[str, bytes]:
    """``(committer address, blob)``; the committer comes back lower-case, 0x-prefixed."""
    head = len(_MAGIC) + 20
    if len(data) <= head or not data.startswith(_MAGIC):
        raise RelayError("not a relayed update")
    return "0x" + data[len(_MAGIC) : head].hex(), data[head:]


def _address_bytes(address: str) -> bytes:
    try:
        raw = bytes.fromhex(address[2:]) if address.startswith("0x") else b""
    except (ValueError, AttributeError):
        raw = b""
    if len(raw) != 20:
        raise RelayError(f"bad account address {address!r}")
    return raw
