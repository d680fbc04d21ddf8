"""A late peer and the pair already attested in its round (issue 17.5,
:mod:`node.consensus.attested`).

:class:`LateJoin` reads a round's attestations and decides what a peer that ends its wait late
votes for: the pair more than ``f`` other members attested, when this peer reproduces it bit
for bit from updates it checked itself (pulling by relay the committed blobs of that pair it
missed), or else its own pair. A peer cut off from most members (it holds fewer committed
updates than the chain's quorum) neither attests nor accuses anyone
(:meth:`LateJoin.partial_view`). A member back after the commit window votes for the leading
pair without an update of its own (:meth:`LateJoin.reproduce`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import trio

from ledger import LedgerError
from node.consensus.attested import AttestedPair, adopt_attested, attested_pairs, leading_pair
from node.peer.deadlines import attest_room

if TYPE_CHECKING:
    from node.peer.core import PeerCore
    from node.peer.intake import Intake
    from node.peer.outcome import RoundOutcome
    from node.peer.verify import Verifier

__all__ = ["Adopted", "LateJoin"]

#: (the aggregate, its accepted senders, the verified updates it was computed from)
Adopted = tuple[np.ndarray, list[str], dict[str, object]]
Aggregate = Callable[[int, dict[str, object]], Awaitable[tuple[np.ndarray, list[str]]]]


class LateJoin:
    """The attested pairs of a round, as this peer checks and joins them. ``aggregate(round_,
    inputs)`` is this peer's own aggregation (its protection mode and rule)."""

    def __init__(
        self, core: PeerCore, intake: Intake, verifier: Verifier, aggregate: Aggregate
    ) -> None:
        self.core, self.ledger, self.directory = core, core.ledger, core.directory
        self.waits, self.log = core.waits, core.log
        self.intake = intake
        self.verifier = verifier
        self.aggregate = aggregate

    def lead(self, round_: int) -> AttestedPair | None:
        """The pair more than ``f`` other members attested in ``round_`` (None: none yet)."""
        pairs = attested_pairs(self.ledger, round_, [i.address for i in self.directory.others()])
        return leading_pair(pairs, self.core.settings.f)

    def partial_view(self, round_: int, rejected: dict[str, str]) -> str | None:
        """Why this peer must neither attest nor accuse anyone this round, or None. When the
        committed blobs it holds are fewer than the chain's quorum (a network partition cut it
        off), the aggregate it could compute differs from any a quorum can finalize: attesting
        it would put a conflicting vote on chain, and recording the missing blobs would accuse
        members that only sat on the other side of the cut. It catches up by hash instead."""
        missing = [s for s, reason in rejected.items() if reason == "missing-blob"]
        if not missing:
            return None
        num, den = self.ledger.ledger_config()["quorum"]
        need = -(-self.ledger.round_info(round_).member_count * num // den)
        held = len(self.ledger.commitments(round_)) - len(missing)
        if held >= need:
            return None
        return (
            f"holds {held} of the committed updates, fewer than the quorum of {need} (the other "
            f"{len(missing)} never arrived): not attesting a partial aggregate"
        )

    async def decide(
        self, out: RoundOutcome, updates: dict[str, object], params: np.ndarray
    ) -> Adopted | None:
        """What this peer votes for in ``out.round``: the pair already attested if it reproduces
        it (:meth:`join`), else its own (``params``, ``out.accepted``); None when its view is too
        partial to vote (:meth:`partial_view`; ``out.error`` says so). The verified updates the
        chosen pair leaves out are recorded in ``out.rejected`` as ``robust-rule``."""
        round_ = out.round
        joined = await self.join(round_, updates, out.rejected, params, out.accepted)
        partial = self.partial_view(round_, out.rejected) if joined[0] is params else None
        if partial is not None:
            self.log.error("%s", partial, round=round_)
            out.error = partial
            return None
        params, accepted, updates = joined
        kept = {a for a, u in updates.items() if u is not None}
        for dropped in kept - set(accepted) - {self.core.address}:
            out.rejected[dropped] = "robust-rule"
        return params, accepted, updates

    async def join(
        self,
        round_: int,
        updates: dict[str, object],
        rejected: dict[str, str],
        params: np.ndarray,
        accepted: list[str],
    ) -> Adopted:
        """A late peer votes for the pair already attested if it reproduces it, first pulling by
        relay (bounded by ``round_timeout``) the committed blobs of that pair it missed;
        otherwise it keeps its own pair."""
        if self.core.protection.sum_only:
            return params, accepted, updates
        try:
            if not self.ledger.round_info(round_).attest_count:  # the first: nothing to read
                return params, accepted, updates
            others = [i.address for i in self.directory.others()]
            pairs = attested_pairs(self.ledger, round_, others)
        except LedgerError as exc:
            self.log.warning("could not read the round's attestations: %s", exc, round=round_)
            return params, accepted, updates

        aggregate = partial(self.aggregate, round_)

        adopted = await adopt_attested(pairs, updates, params, aggregate, f=self.core.settings.f)
        lead = leading_pair(pairs, self.core.settings.f)
        missing = {
            a
            for a in rejected
            if rejected[a] == "missing-blob" and lead and a.lower() in lead.accepted
        }
        if adopted is None and missing and self.core.protection.relays_updates:
            with trio.move_on_after(self.core.settings.round_timeout):
                await self.intake.pull_missing(round_, missing)
            arrived = missing & self.intake.senders(round_)
            await self.verifier.recheck(round_, arrived, updates, rejected)
            adopted = await adopt_attested(
                pairs, updates, params, aggregate, f=self.core.settings.f
            )
        if adopted is None:
            return params, accepted, updates
        self.log.warning(
            "adopting the pair already attested: %d of %d verified updates",
            len(adopted[2]),
            len(updates),
            round=round_,
        )
        return adopted

    async def reproduce(self, out: RoundOutcome, lead: AttestedPair) -> Adopted | None:
        """The vote of a member back after ``out.round``'s commit window closed (an outage, a
        restart): it can no longer commit, and the live members held their blobs until that
        window closed (:mod:`node.peer.reveal`), so it saw no current-round update before. It
        pulls by relay the committed blobs of ``lead`` (more than ``f`` others attested it),
        checks each against its commitment on chain and re-aggregates exactly that set with its
        own rule: the pair if the hash matches (:mod:`node.consensus.attested`), else None with
        ``out.rejected`` and ``out.error`` saying why. Nothing of its own is committed, sent or
        charged to its privacy budget, and it accuses no one."""
        round_ = out.round
        commitments = self.ledger.commitments(round_)
        wanted = {a for a in commitments if a.lower() in lead.accepted}
        rejected = {a: "missing-blob" for a in wanted}
        updates: dict[str, object] = {}
        # no stage marks until the vote: the round's stages (STAGES) are the full pipeline's
        with trio.move_on_after(self.waits.deadline(attest_room(self.ledger, round_))):
            await self.intake.pull_missing(round_, wanted - self.intake.senders(round_))
        await self.verifier.recheck(round_, wanted & self.intake.senders(round_), updates, rejected)

        aggregate = partial(self.aggregate, round_)

        adopted = await adopt_attested([lead], updates, None, aggregate, f=self.core.settings.f)
        if adopted is None:
            out.rejected = rejected
            out.error = (
                f"the attested pair is not reproducible from {len(updates)} of its "
                f"{len(wanted)} blobs"
            )
        else:
            self.log.warning(
                "back after the commit window: voting for the pair already attested (%d updates)",
                len(adopted[1]),
                round=round_,
            )
        return adopted
