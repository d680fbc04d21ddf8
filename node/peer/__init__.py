"""A hospital peer: the round pipeline, relaying of blobs, the standardizer set-up, and the peer's
long-lived keys.
"""

from node.peer.pipeline import (
    MODE_SEALED,
    HospitalPeer,
    PeerSettings,
    RoundOutcome,
)

__all__ = [
    "PeerSettings",
    "RoundOutcome",
    "HospitalPeer",
    "MODE_SEALED",
]
