"""This member's own part of a round: train -> protect -> commit -> hold -> send.

:class:`Contribution` runs the first half of the round pipeline (:mod:`node.peer.pipeline`). It
trains on this hospital's data (the privacy ledger is on disk before anything leaves), seals
the update for the round's recipients, commits its hash on chain and announces the commitment,
holds the blob until every member committed or the commit window closed
(:mod:`node.peer.reveal`), and sends it in the background (:mod:`node.peer.outbox`). Each stage
passes through the peer's mods (:mod:`node.peer.mods`) and is marked on the stage clock under
the names :mod:`node.monitoring.stagetimes` reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ledger import LedgerError
from node.consensus import protocol
from node.crypto.sealing import blob_hash
from node.errors import MedmeshError
from node.learning.privacy import BudgetExhausted

if TYPE_CHECKING:
    from node.consensus.update import ModelUpdate
    from node.learning.privacy import PrivacyLedger
    from node.peer.core import PeerCore
    from node.peer.mods import ModChain
    from node.peer.outbox import Outbox
    from node.peer.outcome import RoundOutcome
    from node.peer.trainer import LocalTrainer

__all__ = ["ROUND_ERRORS", "Contribution"]

#: what a round stage may raise for a remote peer's fault or the chain's refusal (node.errors);
#: anything else is a programming error and propagates
ROUND_ERRORS = (MedmeshError, LedgerError)


class Contribution:
    """Trains, protects, commits, holds and sends this member's update; ``announce`` publishes
    a control message on the round topic."""

    def __init__(
        self,
        core: PeerCore,
        mods: ModChain,
        trainer: LocalTrainer,
        privacy: PrivacyLedger,
        outbox: Outbox,
        announce: Callable[[protocol.ControlMessage], Awaitable[None]],
    ) -> None:
        self.core, self.log, self.address = core, core.log, core.address
        self.mods, self.trainer, self.privacy = mods, trainer, privacy
        self.outbox, self.announce = outbox, announce

    async def run(self, out: RoundOutcome) -> ModelUpdate | None:
        """This member's update for ``out.round``, committed and on its way (None: it trained
        nothing, or the commit was refused, and ``out.error`` says why); fills ``out``'s
        epsilon, samples and hold."""
        round_, clock, outbox = out.round, self.core.clock, self.outbox
        try:
            with clock.stage("train"):
                update = await self.mods.train(round_, self.trainer.train)
        except BudgetExhausted as exc:
            self.log.error("%s", exc, round=round_)
            out.error = str(exc)
            return None
        out.epsilon, out.samples = update.epsilon, update.samples
        self.privacy.save()  # the spent budget is on disk before the update leaves
        try:
            with clock.stage("protect"):
                blob = await self.mods.protect(update, outbox.protect)
            outbox.declare_budget()
            with clock.stage("commit"):
                outbox.commit(update, blob)
        except ROUND_ERRORS as exc:  # e.g. the commit window closed (LedgerError), or too few
            self.log.error("leaving this round out: %s", exc, round=round_)  # secagg peers
            out.error = str(exc)
            return None
        await self.announce(
            protocol.UpdateCommitted(round_, self.address, blob_hash(blob).hex(), len(blob))
        )
        with clock.stage("hold"):
            out.revealed, out.held_s = await self.mods.hold(round_, outbox.hold)
        with clock.stage("send"):
            await outbox.send(round_, blob)
        return update
