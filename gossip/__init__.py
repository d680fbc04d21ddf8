"""medmesh's libp2p layer: one :class:`PeerHost` per hospital peer.

Bytes on the wire live here; no model arithmetic and no chain calls.

* Control messages (small, signed) travel over GossipSub:
  :meth:`PeerHost.publish`, :meth:`PeerHost.subscribe`, :meth:`PeerHost.wait_topic_peers`.
* Blobs (encrypted model updates, 1-20 MB) travel over a direct stream protocol,
  ``/medmesh/blob/1.0.0``: :meth:`PeerHost.send_blob`, :meth:`PeerHost.on_blob`.
* Connections are Noise-only and Yamux-muxed; ``authorize`` vets every peer.
* GossipSub's mesh degree follows the consortium's size (:func:`mesh_degrees`).
* :class:`MemoryHost` offers the same interface (:class:`Transport`) in one process, without
  sockets, for simulating large consortia (``medmesh simulate``).

Built on py-libp2p 0.8.1 (trio). The library's sharp edges and what each module
does about them: docs/libp2p-pitfalls.md and the module docstrings.
"""

from ._degree import MeshDegrees, mesh_degrees
from ._errors import (
    BlobRejected,
    BlobTooLarge,
    BlobTransferError,
    ControlMessageTooLarge,
    GossipError,
    PayloadTooLarge,
    PeerNotAuthorized,
    RemoteBlobTooLarge,
    TopicNotReady,
    sole_exception,
)
from ._frame import BLOB_PROTOCOL
from ._host import PeerHost
from ._memory import MemoryHost, MemoryNetwork
from ._stats import GossipStats
from ._subscriptions import ControlMessage, Subscription
from ._transport import Transport

__all__ = [
    "BLOB_PROTOCOL",
    "BlobRejected",
    "BlobTooLarge",
    "BlobTransferError",
    "ControlMessage",
    "ControlMessageTooLarge",
    "GossipError",
    "GossipStats",
    "MemoryHost",
    "MemoryNetwork",
    "MeshDegrees",
    "PayloadTooLarge",
    "PeerHost",
    "PeerNotAuthorized",
    "RemoteBlobTooLarge",
    "Subscription",
    "TopicNotReady",
    "Transport",
    "mesh_degrees",
    "sole_exception",
]
