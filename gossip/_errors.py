"""Exceptions raised by the gossip layer.

Every error carries a one-line, user-facing message. The tree::

    GossipError
    ├── PeerNotAuthorized        authorize() said no to a peer we were asked to reach
    ├── TopicNotReady            wait_topic_peers() ran out of time
    ├── PayloadTooLarge
    │   ├── ControlMessageTooLarge   publish() payload over max_control_bytes
    │   └── BlobTooLarge             blob over our own limit, or rejected as such by the receiver
    └── BlobTransferError        stream failed, timed out, or the receiver rejected the blob
        └── BlobRejected         the receiver answered "rejected" (``code`` and ``reason`` set)

``BlobTooLarge`` raised because the *receiver* rejected the declared length is
also a ``BlobRejected`` (see ``RemoteBlobTooLarge``), so callers may catch either.
"""

from __future__ import annotations


class GossipError(Exception):
    """Root of every error raised by :mod:`gossip`."""


class PeerNotAuthorized(GossipError):
    """The local ``authorize`` callback refused the peer."""


class TopicNotReady(GossipError):
    """The requested peers did not join a topic's mesh in time."""


class PayloadTooLarge(GossipError):
    """A payload exceeds a configured size limit."""


class ControlMessageTooLarge(PayloadTooLarge):
    """A control message exceeds ``max_control_bytes``."""


class BlobTooLarge(PayloadTooLarge):
    """A blob exceeds ``max_blob_bytes`` (ours, or the receiver's)."""


class BlobTransferError(GossipError):
    """A blob transfer failed: no route, stream error, timeout or rejection."""


class BlobRejected(BlobTransferError):
    """The receiver read the blob frame and answered with a reject ack."""

    def __init__(self, message: str, *, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class RemoteBlobTooLarge(BlobRejected, BlobTooLarge):
    """The receiver rejected the blob's declared length before reading it."""


def sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The only non-group exception inside nested ``group``s, or None if several.

    trio nurseries (and py-libp2p's services) wrap what a body raised in nested
    ExceptionGroups; callers use this to hand a single exception back as itself."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else None
