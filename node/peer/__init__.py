"""A hospital peer: the round pipeline, relaying of blobs, the standardizer set-up, and the peer's
long-lived keys.

The pipeline's names load on first use (PEP 562): `medmesh node init` reads only the peer's
keys (``node.peer.identity``) and must not pay for torch, opacus and the protection modes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.peer.pipeline import MODE_SEALED, HospitalPeer, PeerSettings, RoundOutcome

__all__ = [
    "PeerSettings",
    "RoundOutcome",
    "HospitalPeer",
    "MODE_SEALED",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("node.peer.pipeline"), name)
    raise AttributeError(f"module 'node.peer' has no attribute {name!r}")
