"""The standardizer the members agree on before the first round, or fetch after it.

On a first start every member shares masked feature sums (:meth:`HospitalPeer.agree_standardizer`,
:mod:`node.peer.setupsum`); images, or public feature bounds, need no exchange. Once the
consortium has run a round, the agreement is over: a node without state (a late member, a lost
state directory) asks the members for the agreed standardizer and takes the one a majority sent
alike (:mod:`node.service.setupsync`'s wire format). A member answers such requests at most once
per ``RESPONSE_INTERVAL_S``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from gossip import GossipError
from node.data.samples import ImageData
from node.errors import NotAuthorized, NotHeld
from node.service import setupsync
from node.service.failures import RunnerError

if TYPE_CHECKING:
    from ledger import Identity
    from node.service.nodecore import NodeCore

__all__ = ["StandardizerSync"]


class StandardizerSync:
    """The node's side of the standardizer agreement: agree or fetch, answer, take offers."""

    def __init__(self, node: NodeCore) -> None:
        self.node = node
        self._offers: dict[str, bytes] = {}  # member address -> the standardizer it sent
        self._changed = trio.Event()
        self._responded: dict[str, float] = {}  # peer id -> when this node last answered it

    async def agree(self) -> None:
        """First start: agree on the standardizer with every member (restarts restore it).

        Once the consortium has run a round, the agreement is over: a node without state (a late
        member, or a lost state directory) fetches the agreed standardizer from the members."""
        if self.node.peer.data is not None:
            return
        settings = self.node.peer.settings
        shares = not isinstance(self.node.peer.raw_data, ImageData) and (
            settings.feature_bounds is None or settings.scaling == "secure"
        )
        if not shares:  # images, or public bounds: nothing to exchange
            await self.node.peer.agree_standardizer()
            self.node.save()
            self.node.events.emit(
                "setup_done",
                members=len(self.node.peer.active_members()),
                scaling="none" if self.node.peer.standardizer is None else "bounds",
            )
            return
        if self.node.client.current_round() > 0:
            await self._fetch()
            return
        others = {i.peer_id for i in self.node.peer.others()}
        with trio.move_on_after(self.node.cfg.rounds.setup_timeout):
            while not others <= set(self.node.host.connected_peers()):
                await trio.sleep(self.node.cfg.rounds.poll_interval)  # the keeper is dialing them
        absent = len(others - set(self.node.host.connected_peers()))
        if absent and settings.feature_bounds is None:
            raise RunnerError(
                f"{absent} member(s) not connected within rounds.setup_timeout; start all members "
                "for the first run (or give public feature bounds: docs/standardizer.md)"
            )
        # with bounds, an absent member's masked sum is missing: everyone falls back to the bounds
        try:
            await self.node.peer.agree_standardizer(timeout=self.node.cfg.rounds.setup_timeout)
        except trio.TooSlowError:
            raise RunnerError(
                "not every member shared its feature sums within rounds.setup_timeout; "
                "start all members for the first run"
            ) from None
        self.node.save()
        self.node.events.emit("setup_done", members=len(self.node.peer.active_members()))

    async def _fetch(self) -> None:
        """A majority of the other members' identical standardizer, asked of each connected one."""
        others = self.node.peer.others()
        need = setupsync.majority(len(others))
        asked: set[str] = set()
        self.node.events.emit("fetching_standardizer", need=need, members=len(others))
        try:
            with trio.fail_after(self.node.cfg.rounds.setup_timeout):
                while (std := setupsync.agreed(self._offers, need)) is None:
                    connected = set(self.node.host.connected_peers())
                    for ident in others:
                        if ident.peer_id in connected and ident.address not in asked:
                            asked.add(ident.address)
                            self.node.spawn(self._request, ident)
                    with trio.move_on_after(self.node.cfg.rounds.poll_interval):
                        await self._changed.wait()
        except trio.TooSlowError:
            raise RunnerError(
                f"fewer than {need} members sent one identical standardizer within "
                f"rounds.setup_timeout ({len(self._offers)} answered)"
            ) from None
        peer = self.node.peer
        peer.standardizer = std
        peer.data = std.apply(peer.raw_data)
        self.node.save()
        self.node.events.emit("standardizer_fetched", sources=len(self._offers), need=need)

    async def _request(self, ident: Identity) -> None:
        try:
            await self.node.host.send_blob(ident.peer_id, b"{}", kind=setupsync.REQUEST_KIND)
        except GossipError as exc:
            self.node.events.emit(
                "standardizer_request_failed", peer=ident.address, error=str(exc)[:160]
            )

    def take_offer(self, from_peer: str, data: bytes) -> None:
        """A member's standardizer, kept by its address until a majority agree (:meth:`_fetch`)."""
        ident = self.node.peer.identity_of(from_peer)
        if ident is None:
            raise NotAuthorized("standardizer from an unknown peer")
        self._offers[ident.address] = setupsync.decode_offer(
            data, self.node.peer.raw_data.x[0].size
        )
        self._changed.set()
        self._changed = trio.Event()

    def answer(self, from_peer: str) -> None:
        """A member asked for the agreed standardizer: send it (at most once per
        ``setupsync.RESPONSE_INTERVAL_S`` per member)."""
        std = self.node.peer.standardizer
        if std is None:
            raise NotHeld("this node holds no standardizer")
        now = time.monotonic()
        if now - self._responded.get(from_peer, -1e9) < setupsync.RESPONSE_INTERVAL_S:
            raise NotAuthorized(
                f"standardizer requests are limited to one per {setupsync.RESPONSE_INTERVAL_S:g} s"
            )
        self._responded[from_peer] = now
        self.node.spawn(self._send, from_peer, setupsync.encode_offer(std))

    async def _send(self, peer_id: str, payload: bytes) -> None:
        try:
            await self.node.host.send_blob(peer_id, payload, kind=setupsync.OFFER_KIND)
        except GossipError as exc:
            self.node.events.emit(
                "standardizer_offer_failed", peer_id=peer_id, error=str(exc)[:160]
            )
