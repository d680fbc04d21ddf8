"""What every room of a peer shares (:class:`PeerCore`), handed to each room when the peer is
built (:class:`~node.peer.pipeline.HospitalPeer`), as :class:`~node.protection.ModeContext` is
to a protection mode: a room sees these, and the callables the peer passes it, never the peer.

The settings and the protection mode may change after the peer is built (a benchmark switches
modes, a test puts a forging subclass in place through ``HospitalPeer.protection``): rooms read
them from the core at each use, never keep their own copy. The peer sets ``protection`` once
its mode is built (the mode's context reads the peer's committee and beacon).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gossip import Transport
    from ledger import LedgerClient
    from node.monitoring.stagetimes import StageClock
    from node.peer.deadlines import WaitClock
    from node.peer.directory import Directory
    from node.peer.outcome import PeerLog
    from node.peer.settings import PeerSettings
    from node.protection import ProtectionMode

__all__ = ["PeerCore"]


@dataclass
class PeerCore:
    """The peer's chain client, libp2p host, log, registry view, settings, waits (blob and
    quorum deadlines), stage clock and protection mode; ``address`` is the peer's account."""

    address: str
    ledger: LedgerClient
    host: Transport
    log: PeerLog
    directory: Directory
    settings: PeerSettings
    waits: WaitClock
    clock: StageClock
    protection: ProtectionMode = field(init=False)
