"""What a protection mode sees of its peer: :class:`ModeContext`.

The peer builds one context and hands it to its mode (:func:`node.protection.make_mode`);
the mode reads membership, keys, settings and parameters through it and sends through it,
and never sees the peer itself. So the modes import nothing of :mod:`node.peer.pipeline`, and a
change inside the peer cannot reach into a mode unnoticed.

Membership is the registry as the peer last read it: the active members in one canonical
order (ascending lower-case address), the order every mode draws roles and thresholds from.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from node.consensus.rules.fedavg import cohort_weight
from node.crypto.sealing import SealContext
from node.errors import AggregationError

if TYPE_CHECKING:
    from ledger import Identity, LedgerClient
    from node.consensus.compression import UpdateCodec
    from node.peer.identity import NodeIdentity
    from node.peer.roundbeacon import RoundSecrets

__all__ = ["ModeContext", "canonical"]


def canonical(members: list[Identity]) -> list[Identity]:
    """``members`` in the one order every peer uses: ascending lower-case address."""
    return sorted(members, key=lambda i: i.address.lower())


@dataclass(frozen=True)
class ModeContext:
    """A protection mode's view of its peer.

    ``settings`` is the peer's :class:`~node.peer.pipeline.PeerSettings` (round timeout, rule, clipping,
    compression, secagg ring, ``min_contributors``); ``state_path`` the file next to which a
    mode may keep state across restarts (None: in memory only).
    """

    identity: NodeIdentity
    ledger: LedgerClient
    settings: Any
    codec: UpdateCodec
    log: logging.LoggerAdapter
    state_path: Path | None
    read_members: Callable[[], list[Identity]]  # the registry as the peer last read it
    read_params: Callable[[], np.ndarray]
    transport: Callable[[Identity, bytes, str], Awaitable[None]]  # (recipient, blob, kind)
    beacon: RoundSecrets | None = None  # this peer's beacon secrets (modes with uses_beacon)
    #: the round's aggregation committee (lower-case addresses), None for every member
    committee: Callable[[int], frozenset[str] | None] | None = None
    #: the same, drawn from the chain now if the peer has not drawn it yet (raises
    #: CommitteeError before the round's beacon is ready); None: use ``committee``
    draw_committee: Callable[[int], frozenset[str] | None] | None = None

    @property
    def address(self) -> str:
        return self.identity.address

    @property
    def global_params(self) -> np.ndarray:
        """The peer's current global parameters (float32)."""
        return self.read_params()

    # -- membership --------------------------------------------------------------------
    def members(self) -> list[Identity]:
        """The active registered members, this peer included, in canonical order."""
        return canonical([i for i in self.read_members() if i.status == "active"])

    def others(self) -> list[Identity]:
        """The active members but this peer, in canonical order."""
        me = self.address.lower()  # derived from the key: once, not once per member
        return [i for i in self.members() if i.address.lower() != me]

    def aggregators(self, round_: int) -> list[Identity]:
        """The other members that aggregate ``round_``: its committee (docs/committee.md), or
        every other member without one."""
        seats = self.committee(round_) if self.committee is not None else None
        return [i for i in self.others() if seats is None or i.address.lower() in seats]

    def is_active(self, address: str) -> bool:
        return self.member(address) is not None

    def member(self, address: str) -> Identity | None:
        """The active member with this address (any case), or None."""
        return next((i for i in self.members() if i.address.lower() == address.lower()), None)

    def cohort(self, address: str) -> int:
        """The cohort ``address`` declared at admission (on chain): the ceiling of its claims."""
        member = self.member(address)
        if member is None:
            raise AggregationError(f"{address} is not an active member: its update has no weight")
        return member.cohort

    def claim_weight(self, address: str, samples: float) -> float:
        """The weight of ``address``'s update in a masked or encrypted sum: its committed count
        (Ñ) capped by its admission cohort and the active members' lower median cohort, all from
        the registry (:func:`node.consensus.rules.cohort_weight`), so every peer computes it alike."""
        return cohort_weight(samples, self.cohort(address), [m.cohort for m in self.members()])

    # -- sealing and sending -----------------------------------------------------------
    def seal_context(self, round_: int, sender: str) -> SealContext:
        """What an envelope of ``sender`` for ``round_`` is bound to: this deployment's chain
        and RoundLedger, the round and the sender."""
        deployment = self.ledger.deployment
        return SealContext(deployment.chain_id, deployment.addresses["RoundLedger"], round_, sender)

    async def send(self, recipient: Identity, blob: bytes, kind: str) -> None:
        """Send one blob to one member (raises the gossip layer's errors)."""
        await self.transport(recipient, blob, kind)
