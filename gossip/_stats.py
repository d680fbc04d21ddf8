"""Byte accounting for one :class:`~gossip.PeerHost`.

Only *payload* bytes are counted: the bytes the application handed to
``send_blob``/``publish`` or received in a blob handler / subscription. Framing
(blob header, acks), protobuf/pubsub envelopes and signatures, Noise and Yamux
overhead, GossipSub forwarding of other peers' messages and mesh amplification
are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class GossipStats:
    """A snapshot of one host's traffic counters (payload bytes).

    Blobs count when the transfer completed, i.e. the receiver answered "ok":
    ``blob_bytes_sent`` on the sender once it reads the ok ack,
    ``blob_bytes_received`` on the receiver once its handler returned. Rejected
    or failed transfers are counted in ``blobs_failed`` (sender side) or
    ``blobs_rejected`` (receiver side) only.

    Control messages count once per message: ``control_bytes_sent`` once per
    ``publish`` (not once per mesh peer), ``control_bytes_received`` once per
    message from another peer that passed validation and reached at least one
    local subscriber. Own messages echoed back by the library are not counted.

    ``control_rejected`` counts received pubsub messages our validator refused
    (unauthorized origin or forwarder, oversized); ``streams_refused`` counts
    inbound streams reset because ``authorize`` refused the remote peer;
    ``connections_refused`` counts inbound connections closed at once: over the
    per-IP cap at accept, or naming a refused peer at the handshake.
    """

    blobs_sent: int = 0
    blob_bytes_sent: int = 0
    blobs_received: int = 0
    blob_bytes_received: int = 0
    blobs_failed: int = 0
    blobs_rejected: int = 0
    control_sent: int = 0
    control_bytes_sent: int = 0
    control_received: int = 0
    control_bytes_received: int = 0
    control_rejected: int = 0
    streams_refused: int = 0
    connections_refused: int = 0


class StatsRecorder:
    """Mutable holder that hands out immutable :class:`GossipStats` snapshots."""

    def __init__(self) -> None:
        self._stats = GossipStats()

    def add(self, **deltas: int) -> None:
        """Add ``deltas`` (field name -> increment) to the counters."""
        current = self._stats
        self._stats = replace(
            current, **{name: getattr(current, name) + inc for name, inc in deltas.items()}
        )

    @property
    def snapshot(self) -> GossipStats:
        """The counters as they are now (immutable)."""
        return self._stats
