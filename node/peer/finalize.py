"""The round on chain, from its opening to its final word: open, attest, wait for the quorum,
finalize, and say which aggregate to adopt.

:class:`Finalizer` opens the next round (failing first a previous round stuck without quorum,
:func:`fail_stale_round`) and puts this peer's vote on chain (:meth:`Finalizer.attest`). It then
waits (bounded by :mod:`node.peer.deadlines`) until the round is finalized or failed,
finalizing it itself once a quorum attested and striking the votes of members that left
mid-round, and names the aggregate this peer may adopt: its own when the chain finalized that
hash, or, off the round's committee, the one a committee member sends with the chain's hash
(:mod:`node.peer.committee`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import trio

from ledger import LedgerError
from node.consensus import protocol
from node.consensus.update import parameters_hash
from node.peer.deadlines import attest_room

if TYPE_CHECKING:
    from ledger import LedgerClient
    from ledger.records import RoundInfo
    from node.peer.committee import RoundCommittee
    from node.peer.control import ControlTopics
    from node.peer.core import PeerCore
    from node.peer.outcome import PeerLog, RoundOutcome

__all__ = ["Finalizer", "fail_stale_round"]


class Finalizer:
    """A round's final word, as this peer reads and helps it. ``chain_hint()`` is the event the
    next chain hint sets."""

    def __init__(self, core: PeerCore, committee: RoundCommittee, control: ControlTopics) -> None:
        self.ledger, self.waits, self.log, self.address = (
            core.ledger,
            core.waits,
            core.log,
            core.address,
        )
        self.committee = committee
        self.chain_hint = control.chain_hint
        self.announce = control.announce

    async def open_round(self) -> int:
        """Open the next round on chain; a previous round stuck without quorum is first
        failed once its attestation deadline has passed (waiting for that deadline)."""
        previous = self.ledger.current_round()
        if previous and self.ledger.round_info(previous).status == "open":
            await fail_stale_round(self.ledger, previous, self.log)
        round_ = self.ledger.open_round()
        self.log.info("opened the round", round=round_)
        await self.announce(protocol.RoundOpened(round_, self.address))
        return round_

    async def attest(self, out: RoundOutcome, new_params: np.ndarray) -> None:
        """Attest ``new_params`` with ``out.accepted`` on chain and announce it; a refusal (e.g.
        the round closed first: this peer may still adopt its aggregate) goes in ``out.error``."""
        round_ = out.round
        out.aggregate_hash = parameters_hash(new_params).hex()
        try:
            # the head we saw goes into the signed vote: our record of the history we attest on
            self.ledger.attest(
                round_, parameters_hash(new_params), out.accepted, seen=self.ledger.chain_head()
            )
            await self.announce(
                protocol.AggregateAttested(round_, self.address, out.aggregate_hash)
            )
        except LedgerError as exc:
            self.log.error("attestation failed: %s", exc, round=round_)
            out.error = str(exc)

    async def settle(self, out: RoundOutcome, new_params: np.ndarray | None) -> np.ndarray | None:
        """Finalize once a quorum attested; the finalized aggregate to adopt when it is ours (or,
        for a follower, ``new_params`` None, when a committee member sends it with the chain's
        hash), else None. Sets ``out.finalized``."""
        round_ = out.round
        wait = self.waits.deadline()
        if new_params is None:
            # a follower starts waiting when the committee starts waiting for blobs: it waits as
            # long as they may, for the blobs (as the verify stage bounds it) and then the quorum
            wait += self.waits.deadline(attest_room(self.ledger, round_))
        info = await self.final_word(round_, wait)
        if info.status != "finalized":
            return None
        out.finalized = True
        if info.aggregate_hash is None:  # a finalized round always names its aggregate
            return None
        if new_params is None:
            return await self.committee.fetch_finalized(out, info.aggregate_hash)
        if info.aggregate_hash != parameters_hash(new_params):
            self.log.error(
                "the finalized aggregate %s is not ours; keeping the previous model",
                info.aggregate_hash.hex()[:12],
                round=round_,
            )
            return None
        return new_params

    async def final_word(self, round_: int, wait: float) -> RoundInfo:
        """Wait (at most ``wait`` seconds) until ``round_`` is finalized or failed, finalizing
        it once a quorum attested; the round as the chain then has it."""
        info = None
        polled = None  # the head block of the last read: the same block gives the same answers
        with trio.move_on_after(wait):
            while True:
                head = self.ledger.head_hash()
                if head == polled:
                    with trio.move_on_after(1.0):
                        await self.chain_hint().wait()
                    continue
                polled = head
                info = self.ledger.round_info(round_)
                if info.status in ("finalized", "failed"):
                    break
                if self.ledger.quorum_reached(round_):
                    try:
                        self.ledger.finalize(round_)
                        self.log.info("finalized the round", round=round_)
                    except LedgerError as exc:  # another peer got there first
                        self.log.debug("finalize: %s", exc, round=round_)
                    continue
                if self.ledger.pending_departures(round_) and self.ledger.strike_departures(round_):
                    continue  # a member left mid-round: its vote is struck, the quorum re-read
                with trio.move_on_after(1.0):  # a lost hint only costs a second
                    await self.chain_hint().wait()
        if info is None or info.status not in ("finalized", "failed"):
            info = self.ledger.round_info(round_)  # timed out: read the final word once more
        if info.status == "failed":
            self.log.error("round failed on chain", round=round_)
        elif info.status != "finalized":
            self.log.error("no quorum within %.0f s", wait, round=round_)
        return info


async def fail_stale_round(ledger: LedgerClient, round_: int, log: PeerLog) -> None:
    """Fail ``round_``, stuck without quorum, once its attestation deadline has passed (waiting
    for that deadline); return as soon as another peer failed or finalized it."""
    deadline = ledger.round_info(round_).attest_deadline
    wait = deadline - time.time() + 1
    log.warning(
        "round is stuck without quorum; failing it after its deadline (%.0f s)",
        max(wait, 0),
        round=round_,
    )
    with trio.fail_after(max(wait, 0) + 30):
        await trio.sleep(max(wait, 0))  # a time deadline on chain: nothing else to await
        while True:
            ledger.sync_clock()
            try:
                ledger.fail_round(round_)
                log.info("failed the round", round=round_)
                return
            except LedgerError as exc:
                if ledger.round_info(round_).status != "open":
                    return  # another peer failed (or finalized) it first
                log.debug("fail_round: %s", exc, round=round_)
                await trio.sleep(1.0)  # the chain's clock is a block behind ours
