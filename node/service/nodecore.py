"""What the node process's parts see of it: :class:`NodeCore`, the narrow interface that
:class:`~node.service.runner.NodeRunner` offers its rooms.

The rooms (:class:`~node.service.campaign.Campaign` schedules rounds,
:class:`~node.service.opener.RoundOpener` opens them, :class:`~node.service.catchup.CatchUp`
fetches a missed aggregate, :class:`~node.service.standardizersync.StandardizerSync` agrees on
the standardizer) each hold the runner as a :class:`NodeCore`: its configuration, its chain
client, its host and peer, its event log, the round its parameters come from, and three
actions (adopt parameters, save the state, spawn a task). None of them imports the runner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from gossip import PeerHost
    from ledger import LedgerClient
    from node.peer.identity import NodeIdentity
    from node.peer.pipeline import HospitalPeer
    from node.service.config import NodeConfig
    from node.service.events import EventLog

__all__ = ["NodeCore"]


class NodeCore(Protocol):
    """The node process as its rooms use it (:class:`~node.service.runner.NodeRunner`)."""

    cfg: NodeConfig
    identity: NodeIdentity
    events: EventLog
    client: LedgerClient
    host: PeerHost
    params_round: int  # the round whose finalized aggregate the peer's parameters are

    @property
    def peer(self) -> HospitalPeer:
        """The round pipeline."""
        ...

    def adopt(self, params: np.ndarray, round_: int) -> None:
        """Take ``params`` (round ``round_``'s finalized aggregate) as the global parameters."""
        ...

    def save(self) -> None:
        """Write the node's state (parameters, rounds, standardizer) atomically."""
        ...

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the node's nursery."""
        ...
