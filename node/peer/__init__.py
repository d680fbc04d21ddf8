"""A hospital peer: the round pipeline, its stages, relaying of blobs, the standardizer set-up,
and the peer's long-lived keys.

The rooms (:class:`~node.peer.pipeline.HospitalPeer` runs the stages in order and holds the
shared state; each other room sees a :class:`~node.peer.core.PeerCore`, never the peer):

- ``pipeline``: the orchestrator, :class:`~node.peer.pipeline.HospitalPeer`;
- ``settings``: the pipeline's settings (``PeerSettings``), built from a node's config;
- ``outcome``: what a round left behind (``RoundOutcome``), and the peer's log;
- ``core``: what the rooms share; ``control``: the round topic's hints, the background nursery;
- ``directory``: the registry as last read (membership, the canonical order);
- ``standardize``: the set-up before the first round (the agreed z-scorer; ``setupsum``);
- ``trainer``: the train stage; ``outbox``: protect, commit, hold (``reveal``) and send;
- ``intake``: blobs received (the checks at the door, the inbox, the relay: ``relay``);
- ``verify``: the verify stage (checks against the chain, the free-rider screen);
- ``latejoin``: joining the pair already attested; ``finalize``: the quorum wait, finalization;
- ``committee``: the round's aggregation committee; ``roundbeacon``: the round's beacon;
- ``mods``: hooks around the stages; ``deadlines``: the round's waits; ``identity``: the keys.

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
