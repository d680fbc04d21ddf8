"""The registry as this peer last read it (:class:`Directory`): libp2p peer ID -> the hospital's
registered identity, and the active members in the one canonical order (ascending lower-case
address). The chain is the source of truth; :meth:`Directory.refresh` re-reads it, and every
inbound stream and pubsub message is gated on it (:meth:`Directory.authorize`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger import Identity, LedgerClient

__all__ = ["Directory"]


class Directory:
    """The registered hospitals, keyed by libp2p peer ID; ``address`` is this peer's own."""

    def __init__(self, ledger: LedgerClient, address: str) -> None:
        self.ledger = ledger
        self.address = address
        self._by_peer: dict[str, Identity] = {}

    def refresh(self) -> None:
        """Re-read the registry: peer ID -> identity of every registered hospital."""
        self._by_peer = {i.peer_id: i for i in self.ledger.identities()}

    def authorize(self, peer_id: str) -> bool:
        """Gate for every inbound stream and pubsub message: registered and active only."""
        return self.active(peer_id) is not None

    def identity_of(self, peer_id: str) -> Identity | None:
        """The registered identity behind a libp2p peer ID (any status), or None."""
        return self._by_peer.get(peer_id)

    def active(self, peer_id: str) -> Identity | None:
        """The identity behind ``peer_id`` if it is an active member, else None."""
        ident = self._by_peer.get(peer_id)
        return ident if ident is not None and ident.status == "active" else None

    def member(self, address: str) -> Identity | None:
        """The registered identity with this account address (any case, any status), or None."""
        return next(
            (i for i in self._by_peer.values() if i.address.lower() == address.lower()), None
        )

    def active_members(self) -> list[Identity]:
        """The active members, this peer included, in canonical order."""
        return sorted(
            (i for i in self._by_peer.values() if i.status == "active"),
            key=lambda i: i.address.lower(),
        )

    def others(self) -> list[Identity]:
        """The active members but this peer, in canonical order."""
        return [i for i in self.active_members() if i.address != self.address]
