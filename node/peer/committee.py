"""A peer's part in the per-round aggregation committee (issue 19, docs/committee.md).

When the consortium sets a committee size k below a round's member count, the round's beacon
draws k attesters (:mod:`node.consensus.committee`, the same draw ``RoundLedger`` checks). Every
member then seals its update to the committee only and sends it there; committee members
verify, aggregate and attest as before. A member off the committee (a *follower*) waits for
the round to finalize, asks the committee for the aggregate (blob kinds ``aggregate-request``
and ``aggregate``, the :mod:`node.service.modelsync` offer format) and adopts it only if its
``parameters_hash`` is the aggregate hash the chain finalized. A committee member answers one
request per (requester, round), for the aggregates of its last ``KEEP_ROUNDS`` rounds.

Having adopted it, a follower tells every committee member so (``aggregate-held``, the round
number alone). A committee member that stops on purpose after its last round
(:meth:`RoundCommittee.drain_followers`) waits for every follower's notice first, bounded by the
round's deadline: before, the seats exited half a second after finalization and the followers
of a campaign's last round never got its aggregate (``scripts/bench_nodes.py --committee``).

The sealed, secagg and ckks modes run with a committee (secagg with the seats as its aggregators,
:mod:`node.protection.secagg_dealing`; ckks with its key holder and aggregator drawn from the
seats, :mod:`node.protection.ckks_mode`); ckks with a robust rule does not, and a peer of it
refuses a committee round (:class:`CommitteeError`, :func:`node.protection.committee_refusal`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import trio

from ledger.committee import ActiveSlot, SlotBook, committee_info, committee_size
from ledger.records import unmask
from node.consensus.committee import CommitteeError, seat
from node.consensus.update import parameters_hash
from node.errors import NotAuthorized, NotHeld
from node.peer.contribute import ROUND_ERRORS
from node.protection import committee_refusal
from node.service.modelsync import (
    ModelOffer,
    decode_offer,
    decode_request,
    encode_offer,
    encode_request,
)

if TYPE_CHECKING:
    from ledger import Identity

__all__ = [
    "AGGREGATE_KIND",
    "HELD_KIND",
    "KINDS",
    "REQUEST_KIND",
    "RoundCommittee",
]

REQUEST_KIND = "aggregate-request"
AGGREGATE_KIND = "aggregate"
HELD_KIND = "aggregate-held"
KINDS = (REQUEST_KIND, AGGREGATE_KIND, HELD_KIND)
#: Finalized aggregates a committee member keeps to answer followers.
KEEP_ROUNDS = 2
#: How long a follower waits for one committee member's answer before asking the next.
ANSWER_WAIT_S = 10.0


class RoundCommittee:
    """The committee of each round this peer runs, and the follower's fetch. ``peer`` is the
    :class:`~node.peer.pipeline.HospitalPeer` (its ledger, host, log, members, background)."""

    def __init__(self, peer: Any) -> None:
        self.peer = peer
        self._size: int | None = None
        self._seats: dict[int, frozenset[str] | None] = {}
        self._slots: SlotBook | None = None  # the members' Active slots, per membership epoch
        self._held: dict[int, np.ndarray] = {}  # finalized aggregates this peer computed
        self._served: set[tuple[str, int]] = set()
        self._asking: set[int] = set()  # rounds whose aggregate this follower is fetching
        self._offers: dict[int, np.ndarray] = {}
        self._offered = trio.Event()
        self._holding: dict[int, set[str]] = {}  # followers that said they adopted the round's
        self._notice = trio.Event()

    @property
    def enabled(self) -> bool:
        """Whether the consortium draws committees (read from the chain once)."""
        if self._size is None:
            self._size = committee_size(self.peer.ledger)
        return self._size > 0

    def members(self, round_: int) -> frozenset[str] | None:
        """The committee of ``round_`` (lower-case addresses) once drawn; None for every member
        (no committee, or not drawn yet)."""
        return self._seats.get(round_)

    def seated(self, round_: int) -> bool:
        seats = self._seats.get(round_)
        return seats is None or self.peer.address.lower() in seats

    async def ready(self, out: Any) -> bool:
        """Draw ``out.round``'s committee where the consortium has one; False, with ``out.error``
        set (``out``: the peer's :class:`~node.peer.outcome.RoundOutcome`), when it cannot be
        drawn (the beacon failed, or a mode without committees)."""
        if not self.enabled:
            return True
        try:
            await self.draw(out.round)
        except ROUND_ERRORS as exc:
            self.peer.log.error("no committee: %s", exc, round=out.round)
            out.error = str(exc)
            return False
        return True

    async def draw(self, round_: int) -> frozenset[str] | None:
        """Draw the committee of ``round_`` as the chain will check it, waiting for the beacon
        (:meth:`node.peer.roundbeacon.RoundSecrets.ready`; raises BeaconFailed)."""
        peer = self.peer
        info = committee_info(peer.ledger, round_)
        if info.size == 0:
            self._seats[round_] = None
            return None
        refusal = committee_refusal(peer.protection.name, peer.settings.rule)
        if refusal is not None:
            raise CommitteeError(f"committee of {info.size}: {refusal}")
        if info.key is None:
            await peer.beacon.ready(round_)
        seats = self.seats_now(round_)
        peer.log.info(
            "committee of %d drawn (seated: %s)",
            len(seats or ()),
            self.seated(round_),
            round=round_,
        )
        return seats

    def seats_now(self, round_: int) -> frozenset[str] | None:
        """The committee of ``round_`` (lower-case addresses; None for every member), drawn now
        from the chain if this peer has not drawn it yet: a mode may need it for a message that
        came before this peer's own draw. Raises CommitteeError while the round's beacon is not
        ready (no key, no committee)."""
        if round_ in self._seats or not self.enabled:
            return self._seats.get(round_)
        peer = self.peer
        info = committee_info(peer.ledger, round_)
        if info.size == 0:
            self._seats[round_] = None
            return None
        if info.key is None:
            raise CommitteeError(f"the committee of round {round_} is not drawn yet (no beacon)")
        epoch = peer.ledger.round_info(round_).membership_epoch
        if self._slots is None:
            self._slots = SlotBook(peer.ledger)
        slots = self._slots
        slots.sync()
        seats = frozenset(
            m.address.lower()
            for m in peer.active_members()
            if _seated(slots.of(m.address), epoch, info.key, info.domain, info.size)
        )
        self._seats[round_] = seats
        return seats

    def keep(self, round_: int, params: np.ndarray) -> None:
        """Hold the finalized aggregate of ``round_`` for followers (committee members)."""
        if not self.seated(round_):
            return
        self._held[round_] = params.copy()
        for old in [r for r in self._held if r <= round_ - KEEP_ROUNDS]:
            del self._held[old]

    def end_round(self, round_: int) -> None:
        for old in [r for r in self._seats if r <= round_ - KEEP_ROUNDS]:
            del self._seats[old]
        self._served = {(a, r) for a, r in self._served if r > round_ - KEEP_ROUNDS}
        for old in [r for r in self._holding if r <= round_ - KEEP_ROUNDS]:
            del self._holding[old]
        self._asking.discard(round_)
        self._offers.pop(round_, None)

    # -- the follower --------------------------------------------------------------------
    async def fetch_finalized(self, out: Any, final: bytes) -> np.ndarray | None:
        """Off the round's committee, once the chain finalized ``out.round`` on ``final``: the
        aggregate fetched from a committee member and checked against that hash (None when no
        member sent it in time); fills ``out`` (the peer's
        :class:`~node.peer.pipeline.RoundOutcome`) with the hash, the accepted set or the error."""
        round_ = out.round
        params = await self.fetch(round_, final, self.peer.waits.deadline())
        if params is None:
            out.error = "no committee member sent the finalized aggregate"
            self.peer.log.error("%s", out.error, round=round_)
            return None
        out.aggregate_hash = final.hex()
        out.accepted = self._finalized_accepted(round_)
        await self._tell_held(round_)
        return params

    async def _tell_held(self, round_: int) -> None:
        """Tell every committee member of ``round_`` that this follower holds its aggregate, so
        none that stops after the round waits for it (best effort, each bounded)."""
        peer, seats = self.peer, self._seats.get(round_) or frozenset()
        notice = encode_request(round_)

        async def tell(member: Identity) -> None:
            with trio.move_on_after(ANSWER_WAIT_S):
                try:
                    await peer.host.send_blob(member.peer_id, notice, kind=HELD_KIND)
                except Exception as exc:  # that seat has gone: it waits for nobody
                    peer.log.debug("held notice to %s: %s", member.address, exc, round=round_)

        async with trio.open_nursery() as nursery:
            for member in peer.others():
                if member.address.lower() in seats:
                    nursery.start_soon(tell, member)

    async def drain_followers(self) -> None:
        """Return once every follower of the last round this committee member holds the
        aggregate of has said it adopted it (callers bound the wait by the round's deadline):
        a seat that stops after a campaign's last round serves its followers first."""
        if not self._held:
            return
        round_ = max(self._held)
        seats = self._seats.get(round_)
        if seats is None:
            return
        followers = {m.address.lower() for m in self.peer.active_members()} - seats
        while not followers <= self._holding.get(round_, set()):
            await self._notice.wait()

    def _finalized_accepted(self, round_: int) -> list[str]:
        """The accepted set of finalized ``round_``: that of a committee member's vote for the
        pair the round finalized on (its leader's), read from the round's events and its
        committers (``attestation`` would rebuild and sort the set in the EVM per call)."""
        ledger = self.peer.ledger
        leader = ledger.round_info(round_).leader
        votes = ledger.votes(round_)
        winning = votes.get(leader.lower()) if leader else None
        if winning is None:
            return []
        for address in sorted(self._seats.get(round_) or ()):
            vote = votes.get(address)
            if vote is not None and vote.vote_key == winning.vote_key:
                return unmask(vote.accepted_mask, ledger.committers(round_))
        return []

    async def fetch(self, round_: int, expected: bytes, timeout: float) -> np.ndarray | None:
        """Ask the committee members, one after another, for the aggregate of ``round_``
        until one arrives whose hash is ``expected`` (the chain's), or ``timeout`` passes."""
        peer = self.peer
        seats = self._seats.get(round_) or frozenset()
        holders = [m for m in peer.others() if m.address.lower() in seats]
        request = encode_request(round_)
        self.expect(round_)
        with trio.move_on_after(timeout):
            while round_ not in self._offers:
                for holder in holders:
                    try:
                        await peer.host.send_blob(holder.peer_id, request, kind=REQUEST_KIND)
                    except Exception as exc:  # not held yet, or unreachable: ask the next one
                        peer.log.debug(
                            "aggregate request to %s: %s", holder.address, exc, round=round_
                        )
                        continue
                    with trio.move_on_after(ANSWER_WAIT_S):
                        while round_ not in self._offers:
                            await self._offered.wait()
                    if round_ in self._offers:
                        break
                else:
                    await trio.sleep(1.0)  # nobody held it yet: they adopt it as they see quorum
        params = self._offers.get(round_)
        if params is not None and parameters_hash(params) == expected:
            return params
        return None

    def expect(self, round_: int) -> None:
        """Accept offers of the aggregate of ``round_`` from now on (a follower asks for it)."""
        self._asking.add(round_)

    def offered(self, round_: int) -> np.ndarray | None:
        """The aggregate of ``round_`` a committee member offered and the chain finalized."""
        return self._offers.get(round_)

    # -- blobs ---------------------------------------------------------------------------
    async def on_blob(self, sender: Identity, kind: str, data: bytes) -> None:
        """Serve an aggregate request, or file an offered aggregate that the chain finalized."""
        peer = self.peer
        if kind == HELD_KIND:
            try:
                round_ = decode_request(data)
            except ValueError as exc:
                raise NotAuthorized(str(exc)) from None
            done = peer.completed_round  # a notice may come before this seat finished the round
            if done - KEEP_ROUNDS < round_ <= done + 1:
                self._holding.setdefault(round_, set()).add(sender.address.lower())
                self._notice.set()
                self._notice = trio.Event()
            return
        if kind == REQUEST_KIND:
            try:
                round_ = decode_request(data)
            except ValueError as exc:
                raise NotAuthorized(str(exc)) from None
            params = self._held.get(round_)
            if params is None:
                raise NotHeld(f"this peer holds no finalized aggregate of round {round_}")
            key = (sender.address.lower(), round_)
            if key in self._served:
                raise NotAuthorized(f"the aggregate of round {round_} was already sent to you")
            self._served.add(key)
            payload = encode_offer(ModelOffer(round_, params))
            peer.background_task(self._answer, sender, round_, payload)
            return
        offer = decode_offer(data, peer.global_params.size)
        if offer.round not in self._asking:
            raise NotAuthorized(f"this peer asked for no aggregate of round {offer.round}")
        info = peer.ledger.round_info(offer.round)
        if info.status != "finalized" or info.aggregate_hash != parameters_hash(offer.params):
            raise NotAuthorized(
                f"offered parameters are not round {offer.round}'s finalized aggregate"
            )
        self._offers[offer.round] = offer.params
        self._offered.set()
        self._offered = trio.Event()

    async def _answer(self, requester: Identity, round_: int, payload: bytes) -> None:
        try:
            await self.peer.host.send_blob(requester.peer_id, payload, kind=AGGREGATE_KIND)
        except Exception as exc:  # the follower asks the next committee member
            self.peer.log.warning(
                "could not send the aggregate to %s: %s", requester.address, exc, round=round_
            )


def _seated(slot: ActiveSlot, epoch: int, key: bytes, domain: int, size: int) -> bool:
    """Whether the member holding ``slot`` sits on the committee: a member of the round (Active
    since its opening at ``epoch``, so holding the slot it held then) whose seat is below
    ``size``."""
    if slot.since == 0 or slot.since > epoch or slot.slot >= domain:
        return False
    return seat(key, slot.slot, domain) < size
