"""This peer's own update, from protection to delivery: protect -> commit -> hold -> send.

:class:`Outbox` owns what happens to the update this peer trained: the consortium's protection
mode turns it into the blob, the campaign's privacy budget goes on chain before the first
commitment, the blob's hash is committed, the blob is held until every member committed or
the commit window closed (commit before reveal, :mod:`node.peer.reveal`), and then it is sent
to each recipient in the background, each transfer bounded by the round's deadline
(:mod:`node.peer.deadlines`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from ledger.records import PrivacyBudget
from node.crypto.sealing import blob_hash
from node.peer import reveal

if TYPE_CHECKING:
    from ledger import Identity
    from node.consensus.update import ModelUpdate
    from node.learning.privacy import PrivacyLedger
    from node.peer.core import PeerCore

__all__ = ["Outbox"]


class Outbox:
    """This peer's update on its way out. ``deliver(recipient, blob, kind)`` sends one blob
    through the peer's mods; ``nursery()`` is the peer's background nursery (None when it is
    not serving); ``chain_hint()`` the event the next chain hint sets."""

    def __init__(
        self,
        core: PeerCore,
        privacy: PrivacyLedger,
        *,
        deliver: Callable[[Identity, bytes, str], Awaitable[None]],
        nursery: Callable[[], trio.Nursery | None],
        chain_hint: Callable[[], trio.Event],
    ) -> None:
        self.core, self.ledger, self.directory = core, core.ledger, core.directory
        self.waits, self.log = core.waits, core.log
        self.privacy = privacy
        self.deliver = deliver
        self.nursery = nursery
        self.chain_hint = chain_hint
        self._budget_declared = False
        self._commits_final: set[int] = set()  # rounds whose hold ended: no commitment can be added
        self._sending = 0  # update transfers in flight in the background
        self._sends_drained: trio.Event | None = None  # set when _sending falls to 0

    async def protect(self, update: ModelUpdate) -> bytes:
        """The blob this peer commits and sends: the consortium's protection mode decides."""
        return await self.core.protection.protect(update)

    def privacy_budget(self) -> PrivacyBudget:
        """This hospital's campaign budget as the chain records it (ε = 0: DP off)."""
        c = self.privacy.config
        if not c.enabled:
            return PrivacyBudget(0.0, 0.0, "none", 0.0, c.max_grad_norm)
        sigma = c.noise_multiplier
        if sigma is None:  # a PrivacyLedger calibrates it: a programming error, as float(None)
            raise TypeError("the privacy ledger's DP config has no noise multiplier")
        return PrivacyBudget(
            self.privacy.cap(), c.delta, c.accountant, float(sigma), c.max_grad_norm
        )

    def declare_budget(self) -> None:
        """Put the campaign's privacy budget on chain before the first commit (once: the
        contract checks every committed epsilon against it; a different budget recorded
        earlier is an error, since the chain keeps the first)."""
        if not self._budget_declared:
            self.ledger.ensure_privacy_budget(self.privacy_budget())
            self._budget_declared = True

    def commit(self, update: ModelUpdate, blob: bytes) -> None:
        self.ledger.commit_update(
            update.round, blob_hash(blob), update.samples, update.epsilon, self.core.protection.code
        )
        self.log.info(
            "committed update %s (%d bytes)",
            blob_hash(blob).hex()[:12],
            len(blob),
            round=update.round,
        )

    async def hold(self, round_: int) -> tuple[str, float]:
        """Commit before reveal (:mod:`node.peer.reveal`): wait until every active member committed
        or the commit window closed; returns why, and the seconds waited."""
        started = time.perf_counter()
        why = await reveal.hold_until_committed(
            self.ledger,
            round_,
            [m.address for m in self.directory.active_members()],
            self.chain_hint,
        )
        held = time.perf_counter() - started
        self._commits_final.add(round_)
        self.log.info("revealing the update after %.2f s (%s)", held, why, round=round_)
        return why, held

    def commits_final(self, round_: int) -> bool:
        """Whether this peer's hold for ``round_`` ended: no commitment can be added to it."""
        return round_ in self._commits_final

    def end_round(self, round_: int) -> None:
        self._commits_final.discard(round_)

    async def send(self, round_: int, blob: bytes) -> None:
        """Send the blob to every recipient concurrently, each transfer bounded by the round's
        deadline (:mod:`node.peer.deadlines` from now), in the background: a slow or frozen receiver holds
        up neither the other transfers nor this peer's verify stage (issue 17.6). A transfer cut
        off by the deadline is what the relay (:mod:`node.peer.relay`) is for."""
        recipients = self.core.protection.update_recipients(round_)
        self.waits.sending(len(blob), len(recipients))
        deadline = trio.current_time() + self.waits.deadline()

        async def send_one(ident: Identity) -> None:
            try:
                await deliver(ident)
            finally:
                self._sending -= 1
                if self._sending == 0 and self._sends_drained is not None:
                    self._sends_drained.set()

        async def deliver(ident: Identity) -> None:
            with trio.move_on_at(deadline) as scope:
                try:
                    started = trio.current_time()
                    await self.deliver(ident, blob, "update")
                    self.waits.transferred(len(blob), trio.current_time() - started)
                except Exception as exc:  # one unreachable peer must not stop the others
                    self.log.warning(
                        "could not deliver update to %s: %s", ident.address, exc, round=round_
                    )
            if scope.cancelled_caught:
                self.log.warning(
                    "gave up delivering update to %s at the round's deadline",
                    ident.address,
                    round=round_,
                )

        background = self.nursery()
        if background is None:  # not serving (unit tests): send in place, still bounded
            async with trio.open_nursery() as nursery:
                for ident in recipients:
                    nursery.start_soon(deliver, ident)
            return
        for ident in recipients:
            try:
                background.start_soon(send_one, ident)
                self._sending += 1
            except RuntimeError:  # the peer is shutting down (its nursery is closed)
                self.log.warning("not sending the update: the peer is stopping", round=round_)
                return

    async def drain_sends(self) -> None:
        """Return once no update transfer is in flight: a node that stops after its last round
        first lets its update reach the peers still waiting for it (each transfer is bounded by
        its round's deadline). Without it, a peer that had not yet received the update sat in
        ``verify`` until its deadline and kept its previous model."""
        while self._sending > 0:
            self._sends_drained = trio.Event()
            await self._sends_drained.wait()
        self._sends_drained = None
