"""A peer's intake: every blob another member sends it, checked at the door and filed, and the
relay (:mod:`node.peer.relay`) that fetches a committed blob whose direct transfer failed.

:class:`Intake` owns the inbox (round -> sender -> blob), the blobs of the last
``KEEP_ROUNDS`` completed rounds kept for relaying, and the relay's bookkeeping. At the door
(:meth:`Intake.receive`) a blob must come from an active registered member, pass the peer's
mods, and, for an update, claim that member as its sender and a round this peer still runs
(the current or the next chain round); a second, different blob from the same member is
refused as equivocation. Relay requests, relayed blobs, the committee's aggregate requests and
the protection mode's side-channel messages are handed to their owners from here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import trio

from gossip import BlobRejected
from node.crypto.sealing import SealError, blob_hash, peek_context
from node.errors import NotAuthorized, NotHeld
from node.peer import relay
from node.peer.committee import KINDS as COMMITTEE_KINDS

if TYPE_CHECKING:
    from ledger import Commitment, Identity
    from node.peer.committee import RoundCommittee
    from node.peer.core import PeerCore
    from node.peer.mods import ModChain

__all__ = ["KEEP_ROUNDS", "RELAY_WAIT_S", "Intake"]

KEEP_ROUNDS = 2  # completed rounds whose blobs a peer keeps for relaying
RELAY_WAIT_S = 30.0  # how long one holder that accepted a relay request has to deliver the blob


class Intake:
    """The blobs this peer received, per round. ``completed()`` is the peer's last completed
    round (blobs for it and earlier are replays); ``spawn(fn, *args)`` runs a task in the peer's
    background nursery."""

    def __init__(
        self,
        core: PeerCore,
        mods: ModChain,
        committee: RoundCommittee,
        *,
        completed: Callable[[], int],
        spawn: Callable[..., None],
    ) -> None:
        self.directory, self.ledger, self.host = core.directory, core.ledger, core.host
        self.log, self.core = core.log, core
        self.mods = mods
        self.committee = committee
        self.completed = completed
        self.spawn = spawn
        # the chain's current round as last read by the schedule (node.service.runner); when set, blobs
        # are held only for it and the next one, so a member cannot park blobs for other rounds
        self.chain_round: int | None = None
        self._inbox: dict[int, dict[str, bytes]] = defaultdict(dict)
        self._inbox_changed = trio.Event()
        self._relayed: set[tuple[str, int, str]] = set()  # (requester, round, committer) answered
        self._kept: dict[int, dict[str, bytes]] = {}  # the last completed rounds' blobs
        self.relay_counts: dict[str, int] = defaultdict(int)  # requested, served, accepted, refused

    # -- the door ------------------------------------------------------------------------
    async def receive(self, from_peer: str, kind: str, data: bytes) -> None:
        """File a blob from a registered peer under its claimed round, or hand it to its owner.

        Raising here makes the gossip layer answer the sender with a rejection.
        """
        ident = self.directory.active(from_peer)
        if ident is None:
            raise NotAuthorized(f"peer {from_peer[:16]} is not an active registered hospital")
        if not await self.mods.incoming(ident, kind, data):
            return
        if kind == relay.REQUEST_KIND:
            self._serve_relay(ident, relay.decode_request(data))
            return
        if kind == relay.RELAY_KIND:
            self._accept_relayed(ident, *relay.decode_relay(data))
            return
        if kind in COMMITTEE_KINDS:
            await self.committee.on_blob(ident, kind, data)
            return
        ctx = self.core.protection.peek(data)
        if ctx.sender != ident.address.lower():
            raise SealError(f"blob claims sender {ctx.sender} but came from {ident.address}")
        if ctx.round <= self.completed():
            raise SealError(
                f"blob for round {ctx.round}, which this peer already completed (replay?)"
            )
        if (
            self.chain_round is not None
            and not self.chain_round <= ctx.round <= self.chain_round + 1
        ):
            raise SealError(
                f"blob for round {ctx.round}; the chain is at round {self.chain_round}, and blobs are "
                f"held only for the current and the next round"
            )
        if kind != "update":
            await self.core.protection.on_message(ident, kind, data)
            return
        box = self._inbox[ctx.round]
        if ident.address in box and box[ident.address] != data:
            self.log.warning(
                "%s sent two different blobs (equivocation); keeping the first",
                ident.address,
                round=ctx.round,
            )
            raise SealError("a different blob for this round was already received from you")
        box[ident.address] = data
        self._poke()

    def _poke(self) -> None:
        self._inbox_changed.set()
        self._inbox_changed = trio.Event()

    # -- what is held --------------------------------------------------------------------
    def inbox(self, round_: int) -> Mapping[str, bytes]:
        """The blobs received for ``round_`` so far (sender address -> blob), a copy."""
        return dict(self._inbox.get(round_, {}))

    def senders(self, round_: int) -> set[str]:
        """Who sent a blob for ``round_`` so far (sender addresses)."""
        return set(self._inbox[round_])

    def blob(self, round_: int, sender: str) -> bytes | None:
        return self._inbox[round_].get(sender)

    def held_blobs(self, round_: int) -> Mapping[str, bytes]:
        """The blobs this peer holds for ``round_`` (sender address -> blob): while the round runs,
        and for the last ``KEEP_ROUNDS`` completed rounds, which it keeps for relaying."""
        return self._inbox.get(round_) or self._kept.get(round_, {})

    async def await_blobs(self, round_: int, expected: set[str], timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until each of ``expected`` sent its blob for ``round_``."""
        with trio.move_on_after(max(timeout, 0.0)):
            while not expected <= set(self._inbox[round_]):
                await self._inbox_changed.wait()

    def at_chain_round(self, round_: int) -> None:
        """The schedule read ``round_`` as the chain's current round: drop what is held for
        earlier rounds this peer never ran (rounds it ran were kept when they ended)."""
        self.chain_round = round_
        for old in [r for r in self._inbox if r < round_]:
            del self._inbox[old]

    def end_round(self, round_: int) -> None:
        """A slower peer may still be verifying ``round_`` and need a blob relayed: keep the
        blobs of the last KEEP_ROUNDS completed rounds (a peer finishes on quorum, not on all)."""
        self._kept[round_] = self._inbox.pop(round_, {})
        for old in [r for r in self._kept if r <= round_ - KEEP_ROUNDS]:
            del self._kept[old]

    # -- relay (node.peer.relay): a committed blob that missed its direct transfer ----------------
    def _serve_relay(self, requester: Identity, req: relay.RelayRequest) -> None:
        """Accept a relay request only for a blob this peer holds with exactly that hash."""
        if not self.core.protection.relays_updates:
            raise NotAuthorized(
                f"protection mode {self.core.protection.name} does not relay updates"
            )
        committer = self.directory.member(req.committer)
        blob = self.held_blobs(req.round).get(committer.address) if committer else None
        if committer is None or blob is None or blob_hash(blob).hex() != req.update_hash.lower():
            raise NotHeld(f"this peer holds no blob {req.update_hash[:12]} from {req.committer}")
        key = (requester.address, req.round, committer.address)
        if key in self._relayed:
            raise NotAuthorized("this blob was already relayed to you")
        self._relayed.add(key)
        payload = relay.encode_relay(committer.address, blob)
        self.spawn(self._send_relay, requester, req.round, committer.address, payload)

    async def _send_relay(
        self, requester: Identity, round_: int, committer: str, payload: bytes
    ) -> None:
        try:
            await self.host.send_blob(requester.peer_id, payload, kind=relay.RELAY_KIND)
            self.relay_counts["served"] += 1
            self.log.info("relayed %s's update to %s", committer, requester.address, round=round_)
        except Exception as exc:
            self.log.warning(
                "could not relay %s's update to %s: %s",
                committer,
                requester.address,
                exc,
                round=round_,
            )

    def _accept_relayed(self, relayer: Identity, committer_address: str, blob: bytes) -> None:
        """File a relayed blob only if its hash is the committer's commitment on chain."""
        committer = self.directory.member(committer_address)
        if committer is None or committer.status != "active":
            raise NotAuthorized(f"relayed blob of {committer_address}, not an active member")
        ctx = peek_context(blob)
        if ctx.sender != committer.address.lower():
            raise SealError(f"relayed blob claims sender {ctx.sender}, not {committer.address}")
        if ctx.round <= self.completed():
            raise SealError(
                f"relayed blob for round {ctx.round}, which this peer already completed"
            )
        commitment = self.ledger.commitment(ctx.round, committer.address)
        if commitment is None or blob_hash(blob) != commitment.update_hash:
            self.relay_counts["refused"] += 1
            self.log.warning(
                "refused %s's update relayed by %s: hash differs from the commitment on chain",
                committer.address,
                relayer.address,
                round=ctx.round,
            )
            raise SealError("relayed blob does not match the commitment on chain")
        box = self._inbox[ctx.round]
        if committer.address not in box:
            box[committer.address] = blob
            self.relay_counts["accepted"] += 1
            self.log.info(
                "got %s's update relayed by %s", committer.address, relayer.address, round=ctx.round
            )
            self._poke()

    async def pull_missing(self, round_: int, missing: set[str]) -> None:
        """Ask the other peers, one after another, for each committed blob still missing."""
        commitments = self.ledger.commitments(round_)
        async with trio.open_nursery() as nursery:
            for sender in sorted(missing & set(commitments)):
                nursery.start_soon(self._pull_one, round_, commitments[sender])

    async def _pull_one(self, round_: int, commitment: Commitment) -> None:
        sender = commitment.address
        req = relay.encode_request(
            relay.RelayRequest(round_, sender.lower(), commitment.update_hash.hex())
        )
        members = self.directory.active_members()
        me = self.directory.address
        start = next((i + 1 for i, m in enumerate(members) if m.address == me), 0)
        for holder in members[start:] + members[:start]:  # each peer asks its successors first
            if sender in self._inbox[round_]:
                return
            if holder.address in (sender, me):
                continue
            self.relay_counts["requested"] += 1
            try:
                await self.host.send_blob(holder.peer_id, req, kind=relay.REQUEST_KIND)
            except BlobRejected:
                continue  # it does not hold that blob: ask the next peer
            except Exception as exc:
                self.log.debug("relay request to %s failed: %s", holder.address, exc, round=round_)
                continue
            with trio.move_on_after(RELAY_WAIT_S):
                while sender not in self._inbox[round_]:  # it accepted: the blob is on its way
                    await self._inbox_changed.wait()
