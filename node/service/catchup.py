"""Catch-up: a node behind the chain's last finalized aggregate fetches it from a peer.

:meth:`CatchUp.run` asks the connected members one at a time (:mod:`node.service.modelsync`'s
wire format) and adopts the first offer that is the round's finalized aggregate on chain (its
hash checked against the chain's, never the sender's word); :meth:`CatchUp.answer` serves this
node's own model to a member that asks, at most once per ``RESPONSE_INTERVAL_S``. An offer that
arrives while the chain cannot be read ends the catch-up with that error, so the schedule's
retries take over.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from gossip import GossipError
from ledger import LedgerError
from node.consensus.update import parameters_hash
from node.errors import BlobRefused, NotAuthorized
from node.service import modelsync
from node.service.failures import chain_unreachable

if TYPE_CHECKING:
    from node.service.nodecore import NodeCore

__all__ = ["CatchUp", "SYNC_TIMEOUT_S"]

SYNC_TIMEOUT_S = 10.0  # how long a member is given to answer a model request


class CatchUp:
    """The node's model catch-up: fetch a missed aggregate, answer and take model offers."""

    def __init__(self, node: NodeCore) -> None:
        self.node = node
        self._responded: dict[str, float] = {}  # peer id -> when this node last offered it
        self._synced = trio.Event()
        self._sync_error: LedgerError | None = None  # the chain was unreachable checking an offer

    def latest_finalized(self) -> int:
        """The latest finalized round on chain (``params_round`` if none is newer)."""
        for round_ in range(self.node.client.current_round(), self.node.params_round, -1):
            if self.node.client.round_info(round_).status == "finalized":
                return round_
        return self.node.params_round

    async def run(self) -> bool:
        """Fetch the latest finalized aggregate from peers if ours is older (checked on chain);
        True once this node holds it."""
        target = self.latest_finalized()
        if target <= self.node.params_round:
            return True
        connected = set(self.node.host.connected_peers())
        others = [i for i in self.node.peer.others() if i.peer_id in connected]
        if not others:
            return False
        self.node.events.emit("catching_up", target, have=self.node.params_round)
        for ident in others:
            self._synced = trio.Event()
            try:
                await self.node.host.send_blob(
                    ident.peer_id, modelsync.encode_request(target), kind=modelsync.REQUEST_KIND
                )
            except GossipError as exc:
                self.node.events.emit(
                    "sync_request_failed", target, peer=ident.address, error=str(exc)[:160]
                )
                continue
            with trio.move_on_after(SYNC_TIMEOUT_S):
                await self._synced.wait()
            if self._sync_error is not None:  # an offer came, but the chain cannot check it now
                error, self._sync_error = self._sync_error, None
                raise error
            if self.node.params_round >= target:
                self.node.peer.completed_round = max(
                    self.node.peer.completed_round, self.node.params_round
                )
                self.node.save()
                self.node.events.emit(
                    "caught_up",
                    self.node.params_round,
                    source=ident.address,
                    params_hash=parameters_hash(self.node.peer.global_params).hex(),
                )
                return True
        self.node.events.emit("catch_up_failed", target, asked=len(others))
        return False

    def answer(self, from_peer: str, data: bytes) -> None:
        """A member asked for this node's model: offer it (at most once per
        ``modelsync.RESPONSE_INTERVAL_S`` per member)."""
        modelsync.decode_request(data)
        now = time.monotonic()
        if now - self._responded.get(from_peer, -1e9) < modelsync.RESPONSE_INTERVAL_S:
            raise NotAuthorized(
                f"model requests are limited to one per {modelsync.RESPONSE_INTERVAL_S:g} s"
            )
        self._responded[from_peer] = now
        offer = modelsync.ModelOffer(self.node.params_round, self.node.peer.global_params.copy())
        self.node.spawn(self._send_offer, from_peer, offer)

    def take_offer(self, data: bytes) -> None:
        """A member's model: adopted if it is a newer round's finalized aggregate (on chain)."""
        offer = modelsync.decode_offer(data, self.node.peer.global_params.size)
        if offer.round <= self.node.params_round:
            return
        try:
            info = self.node.client.round_info(offer.round)
        except LedgerError as exc:  # the chain is down: the catch-up gives way to the retries
            if chain_unreachable(exc):
                self._sync_error = exc
                self._synced.set()
            raise
        if info.status != "finalized" or info.aggregate_hash != parameters_hash(offer.params):
            raise BlobRefused(
                f"offered parameters are not round {offer.round}'s finalized aggregate"
            )
        self.node.adopt(offer.params, offer.round)
        self._synced.set()

    async def _send_offer(self, peer_id: str, offer: modelsync.ModelOffer) -> None:
        try:
            await self.node.host.send_blob(
                peer_id, modelsync.encode_offer(offer), kind=modelsync.MODEL_KIND
            )
        except GossipError as exc:
            self.node.events.emit(
                "sync_offer_failed", offer.round, peer_id=peer_id, error=str(exc)[:160]
            )
