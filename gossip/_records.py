"""Each pubsub RPC's signed peer record verified once per peer, not once per RPC.

py-libp2p 0.8.1 attaches the sender's signed peer record (an Ed25519-signed envelope) to every
pubsub RPC it writes, and the receiver checks the signature and stores the record for every
RPC it reads: ``maybe_consume_signed_record``, called once per RPC by
``Pubsub.continuously_read_stream`` and again by ``GossipSub.handle_rpc`` for each control
RPC. A peer's record does not change between its RPCs, so all but the first of these checks
repeat one result. With 32 hosts in one process (docs/simulation.md) these checks were the
largest single leaf of the busy event loop while blobs waited (py-spy: ``crypto_sign_open``).

:func:`install` puts :func:`consume_once` in their place: the same check, skipped for the
exact bytes it already accepted from the same peer within :data:`RECHECK_S` (so the record's
peerstore entry, kept 2 hours, is still refreshed). Anything else (a new record, another
peer, a record that failed) takes the library's path unchanged.
"""

from __future__ import annotations

import hashlib
import time

from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.pubsub import gossipsub as _gossipsub
from libp2p.pubsub import pubsub as _pubsub
from libp2p.pubsub import utils as _utils
from libp2p.pubsub.pb.rpc_pb2 import RPC

__all__ = ["RECHECK_S", "consume_once", "install"]

RECHECK_S = 600.0
"""How long an accepted record is trusted again without a check."""
MAX_ENTRIES = 4096
"""Accepted (peer, record) pairs remembered per process; the memory is cleared when full."""

_library_check = _utils.maybe_consume_signed_record
_accepted: dict[tuple[bytes, bytes], float] = {}


def consume_once(msg: RPC, host: IHost, peer_id: ID) -> bool:
    """``maybe_consume_signed_record``, with a recently accepted record taken as accepted."""
    if not msg.HasField("senderRecord"):
        return True
    key = (
        host.get_id().to_bytes() + peer_id.to_bytes(),
        hashlib.sha256(msg.senderRecord).digest(),
    )
    now = time.monotonic()
    until = _accepted.get(key)
    if until is not None and now < until:
        return True
    ok = _library_check(msg, host, peer_id)
    if ok:
        if len(_accepted) >= MAX_ENTRIES:
            _accepted.clear()
        _accepted[key] = now + RECHECK_S
    return ok


def install() -> None:
    """Use :func:`consume_once` wherever py-libp2p's pubsub checks an RPC's record."""
    _pubsub.maybe_consume_signed_record = consume_once
    _gossipsub.maybe_consume_signed_record = consume_once
