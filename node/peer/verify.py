"""The verify stage: which committed updates of a round this peer accepts, and why it refuses
the others.

:class:`Verifier` waits (bounded by :mod:`node.peer.deadlines`) for the blob of every member
expected to send one, pulls the missing ones by relay, then checks each committed update
against the chain: the committer is an active member, its sample claim fits its admission
cohort, it committed under the consortium's protection mode, its blob arrived and hashes to
the commitment; the mode then opens it. Where the mode reveals individual updates, copies and
stale updates are screened out (:mod:`node.consensus.freeriding`). Each refusal carries the
reason code recorded on chain (:meth:`Verifier.record_rejections`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import trio

from ledger import LedgerError
from node.consensus.freeriding import screen_free_riders
from node.consensus.update import ModelUpdate
from node.crypto.sealing import blob_hash
from node.peer.deadlines import attest_room
from node.protection import Rejected

if TYPE_CHECKING:
    from ledger import Commitment, Identity
    from node.peer.core import PeerCore
    from node.peer.intake import Intake

__all__ = ["RELAY_AFTER", "Verifier", "update_delta"]

RELAY_AFTER = 0.5  # share of the wait for direct transfers before pulling via relay


def update_delta(opened: object) -> np.ndarray:
    """The delta of an update a mode that reveals individual updates opened (sealed)."""
    if not isinstance(opened, ModelUpdate):
        raise TypeError(f"expected an opened ModelUpdate, got {type(opened).__name__}")
    return opened.delta


class Verifier:
    """Checks a round's committed updates. ``commits_final(round_)``: whether no commitment
    can be added any more (this peer's hold ended); ``last_step()``: the last adopted global
    step; ``earlier(round_)``: the previous round's accepted updates (free-rider screen)."""

    def __init__(
        self,
        core: PeerCore,
        intake: Intake,
        *,
        commits_final: Callable[[int], bool],
        last_step: Callable[[], np.ndarray | None],
        earlier: Callable[[int], dict[str, np.ndarray] | None],
    ) -> None:
        self.core, self.ledger, self.directory = core, core.ledger, core.directory
        self.waits, self.clock, self.log, self.address = (
            core.waits,
            core.clock,
            core.log,
            core.address,
        )
        self.intake = intake
        self.commits_final = commits_final
        self.last_step = last_step
        self.earlier = earlier

    async def verify(
        self, round_: int, own: ModelUpdate | None
    ) -> tuple[dict[str, object], dict[str, str]]:
        """Wait for the members' blobs (bounded), check each against the chain, then screen out
        free-riders (:mod:`node.consensus.freeriding`) where the mode reveals individual updates; returns
        what the protection mode aggregates (whole updates, masked vectors, ciphertexts)."""
        intake = self.intake
        expected = self.core.protection.expected_update_senders(round_)
        if self.commits_final(round_):  # no commitment can be added: wait for the committers' only
            expected &= set(self.ledger.commitments(round_))
        wait, started = self.waits.deadline(attest_room(self.ledger, round_)), trio.current_time()
        deadline = started + wait
        await intake.await_blobs(round_, expected, wait * RELAY_AFTER)
        missing = expected - intake.senders(round_)
        if missing and self.core.protection.relays_updates:
            self.log.warning("pulling %d missing updates via relay", len(missing), round=round_)
            with trio.move_on_at(deadline):
                await intake.pull_missing(round_, missing)
            await intake.await_blobs(round_, expected, deadline - trio.current_time())
        commitments = self.ledger.commitments(round_)
        # a committed blob that never came means the wait was too short; a wait that ran out only on a
        # member that committed nothing (absent, cut off) says nothing about the link
        arrived = intake.senders(round_)
        self.waits.waited(
            trio.current_time() - started if expected <= arrived else 0.0,
            expected & set(commitments) <= arrived,
            wait,
        )
        members = {i.address: i for i in self.directory.active_members()}
        accepted: dict[str, object] = {}
        rejected: dict[str, str] = {}
        if own is not None:
            accepted[self.address] = self.core.protection.own(own)
        for sender, commitment in commitments.items():
            if sender == self.address:
                continue
            try:
                accepted[sender] = await self._check_off_loop(round_, sender, commitment, members)
            except Rejected as exc:
                rejected[sender] = exc.reason
                self.log.warning(
                    "rejected update from %s (%s): %s", sender, exc.reason, exc, round=round_
                )
        for sender in intake.senders(round_) - set(commitments):
            self.log.warning(
                "%s sent a blob but committed nothing on chain; ignored", sender, round=round_
            )
        if self.core.protection.sum_only:
            return accepted, rejected  # masked or encrypted: nothing to compare
        order = [a for a in commitments if a in accepted]  # commit order: the later is the copier
        for i, reason in screen_free_riders(
            [update_delta(accepted[a]) for a in order],
            self.last_step(),
            senders=order,
            earlier=self.earlier(round_),
        ).items():
            if order[i] != self.address:
                rejected[order[i]] = reason
                del accepted[order[i]]
                self.log.warning("rejected update from %s (%s)", order[i], reason, round=round_)
        return accepted, rejected

    async def recheck(
        self, round_: int, arrived: set[str], updates: dict[str, object], rejected: dict[str, str]
    ) -> None:
        """Check blobs that arrived after the verify stage; file them as :meth:`verify` would."""
        commitments = self.ledger.commitments(round_)
        members = {i.address: i for i in self.directory.active_members()}
        for sender in arrived & set(commitments):
            try:
                updates[sender] = await self._check_off_loop(
                    round_, sender, commitments[sender], members
                )
                del rejected[sender]
            except Rejected as exc:
                rejected[sender] = exc.reason

    async def _check_off_loop(
        self, round_: int, sender: str, commitment: Commitment, members: dict[str, Identity]
    ) -> object:
        """:meth:`check` in a worker thread where the mode allows it (``opens_off_loop``): hashing,
        verifying and decrypting a 4 MB blob is C code that releases the GIL, so the event loop
        keeps serving the other transfers meanwhile (with 16 peers in one process, 240 opens
        would otherwise block it for seconds)."""

        def check() -> object:
            with self.clock.stage("check"):
                return self.check(round_, sender, commitment, members)

        if self.core.protection.opens_off_loop:
            return await trio.to_thread.run_sync(check)
        return check()

    def check(
        self, round_: int, sender: str, commitment: Commitment, members: dict[str, Identity]
    ) -> object:
        """Verify one committed update; raise :class:`Rejected` naming the on-chain reason."""
        blob = self.intake.blob(round_, sender)
        if sender not in members:
            raise Rejected("not-a-member", "committer is not an active registered hospital")
        cohort = members[sender].cohort
        if (
            commitment.samples > cohort
        ):  # the contract refuses these; a ledger that did not is caught
            raise Rejected(
                "samples-above-cohort",
                f"claims {commitment.samples} samples, above the cohort "
                f"of {cohort} its admission endorsed",
            )
        if commitment.mode != self.core.protection.code:
            raise Rejected(
                "bad-format",
                f"committed under protection mode {commitment.mode}, the consortium "
                f"uses {self.core.protection.name} ({self.core.protection.code})",
            )
        if blob is None:
            if sender not in self.core.protection.expected_update_senders(round_):
                return None  # not for this peer (ckks: only the aggregator receives ciphertexts)
            raise Rejected("missing-blob", "committed but its blob never arrived")
        if blob_hash(blob) != commitment.update_hash:
            raise Rejected(
                "hash-mismatch",
                "blob hash differs from the hash committed on chain (equivocation?)",
            )
        with self.clock.stage("open"):
            return self.core.protection.open(round_, sender, blob, commitment, members[sender])

    def record_rejections(self, round_: int, rejected: dict[str, str]) -> None:
        """Put on the record which committed updates this peer refused, and why."""
        if not rejected:
            return
        try:
            self.ledger.record_rejections(round_, dict(rejected))
        except LedgerError as exc:
            self.log.error("could not record rejections: %s", exc, round=round_)
