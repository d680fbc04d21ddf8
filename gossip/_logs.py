"""Logging for the gossip layer, and a muzzle for py-libp2p's own loggers.

All our records go to ``logging.getLogger("medmesh.gossip")`` and name the local
peer and the remote one by short id (the last 8 characters of the base58 peer ID;
every Ed25519 ID shares the ``12D3KooW`` prefix).

Sharp edge guarded here (docs/libp2p-pitfalls.md #9): py-libp2p logs connection retries at
ERROR and, at teardown, tracebacks such as ``LifecycleError('Cannot schedule
task after service has stopped')``. With ``LIBP2P_DEBUG`` unset the library's
``libp2p`` logger has no handler and does not propagate, so those records fall
through to Python's last-resort handler and are printed on stderr. We install one
handler on ``libp2p`` that re-emits every record on ``medmesh.gossip.libp2p``
(so the application's logging configuration decides) as one line without
traceback, demoting the known noise (``_NOISE``) to DEBUG and dropping records
below WARNING (``libp2p.network.auto_connector`` sets itself to INFO). Set
``LIBP2P_DEBUG`` to get the library's own, unfiltered output instead.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("medmesh.gossip")

_LIBP2P_LOG = logging.getLogger("medmesh.gossip.libp2p")

# Substrings of py-libp2p records that only mean "a peer or the service went away",
# or that repeat, at ERROR and over several lines, a failure our own API already
# reports (``send_blob`` raises; a refused peer's streams are reset on purpose).
_NOISE = (
    "Cannot schedule task after service has stopped",
    "LifecycleError",
    "Nursery is closed to new arrivals",
    "Failed to open stream to peer",
    "Failed to open TCP stream",
    "MultiselectClient handshake: read failed",
    "fail to read from multiselect communicator",
    "Connection closed",
    "connection closed",
    "Stream reset",
    "StreamReset",
    "StreamEOF",
    "IncompleteReadError",
    "RawConnError",
    "Broken pipe",
    "Connection reset",
)
_MAX_LINE = 300


def short(peer_id: str) -> str:
    """The last 8 characters of a peer ID, for log lines."""
    return peer_id[-8:]


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` on a single line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line[:limit]


class _Libp2pBridge(logging.Handler):
    """Forward ``libp2p.*`` records to ``medmesh.gossip.libp2p``, demoting noise."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:  # chatter; some library loggers sit at INFO
            return
        try:
            text = record.getMessage()
        except Exception:  # a malformed library format string
            text = str(record.msg)
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            text = f"{text} ({type(exc).__name__}: {exc})"
        text = " ".join(text.split())[:_MAX_LINE]
        level = record.levelno
        if level < logging.CRITICAL and any(s in text for s in _NOISE):
            level = logging.DEBUG
        if _LIBP2P_LOG.isEnabledFor(level):
            _LIBP2P_LOG.log(level, "%s: %s", record.name, text)


_installed = False


def quiet_libp2p_logs() -> None:
    """Route py-libp2p's logs through ``medmesh.gossip.libp2p`` (idempotent).

    Does nothing when ``LIBP2P_DEBUG`` is set: whoever set it wants the library's
    own output.
    """
    global _installed
    if _installed or os.environ.get("LIBP2P_DEBUG"):
        return
    lib = logging.getLogger("libp2p")
    lib.handlers = [h for h in lib.handlers if not isinstance(h, _Libp2pBridge)]
    lib.addHandler(_Libp2pBridge(level=logging.NOTSET))
    lib.propagate = False
    if lib.level == logging.NOTSET or lib.level > logging.WARNING:
        lib.setLevel(logging.WARNING)
    _installed = True
