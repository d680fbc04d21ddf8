"""The opener: this node opens the next round in its turn, unless another member does first.

Turns come from :func:`node.service.schedule.opener_rank` (the preferred opener waits nothing,
the k-th fallback ``k * [rounds].open_fallback``). Before its turn, a node gives the previous
round's late attestations ``[rounds].attest_grace`` to arrive; in a mode that draws from the
beacon it waits for the members' beacon commitments. It fails a stale open round first, and
announces the opened round on the round topic (a hint: the others poll the chain anyway).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

from gossip import GossipError
from ledger import ContractRevert
from ledger.committee import committee_info
from node.consensus import protocol
from node.service.schedule import opener_rank

if TYPE_CHECKING:
    from node.service.nodecore import NodeCore

__all__ = ["RoundOpener", "next_hint"]


async def next_hint(hint: trio.Event, poll: float, limit: float | None = None) -> None:
    """Wait for ``hint`` (taken from :meth:`HospitalPeer.chain_hint` before the chain was
    read), at most one poll interval (or ``limit``): hints are best effort, the chain is polled."""
    # limit: time left to a deadline read before a chain call, so it may have passed by now
    with trio.move_on_after(max(0.0, min(poll, limit if limit is not None else math.inf))):
        await hint.wait()


class RoundOpener:
    """Opens rounds for the node in its turn."""

    def __init__(self, node: NodeCore) -> None:
        self.node = node

    async def open(self, round_: int) -> None:
        """Open ``round_`` in turn: wait ``rank * open_fallback`` unless someone else opens it."""
        members = [m.address for m in self.node.peer.active_members()]
        rank = opener_rank(round_, members, self.node.identity.address)
        previous = round_ - 1
        if previous:  # late attestations count only until the next round opens: give them a moment
            grace = trio.current_time() + self.node.cfg.rounds.attest_grace
            voters = committee_info(self.node.client, previous).size or len(
                members
            )  # a committee's k
            while trio.current_time() < grace:
                hint = self.node.peer.chain_hint()
                if self.node.client.current_round() >= round_:
                    break
                info = self.node.client.round_info(previous)
                if info.status != "finalized" or info.attest_count >= min(voters, len(members)):
                    break
                await next_hint(
                    hint, self.node.cfg.rounds.poll_interval
                )  # an attestation's hint, or the next poll
        deadline = trio.current_time() + rank * self.node.cfg.rounds.open_fallback
        while trio.current_time() < deadline:
            hint = self.node.peer.chain_hint()
            if self.node.client.current_round() >= round_:
                return
            limit = deadline - trio.current_time()
            await next_hint(hint, self.node.cfg.rounds.poll_interval, limit)  # RoundOpened's hint
        if self.node.peer.draws_beacon:  # the round's draw needs the members' beacon commitments
            rounds = self.node.cfg.rounds
            await self.node.peer.beacon.committed(
                round_, len(members), everyone=rounds.open_fallback, quorum=rounds.round_timeout
            )
            if self.node.client.current_round() >= round_:
                return
        try:
            if previous and self.node.client.round_info(previous).status == "open":
                self.node.client.fail_round(previous)
                self.node.events.emit("failed_stale_round", previous)
            opened = self.node.client.open_round()
        except ContractRevert as exc:  # another member opened (or failed) it first: fine
            self.node.events.emit("open_skipped", round_, reason=str(exc)[:160])
            return
        self.node.events.emit("opened", opened, rank=rank)
        try:
            await self.node.host.publish(
                protocol.ROUND_TOPIC,
                protocol.encode(protocol.RoundOpened(opened, self.node.identity.address)),
            )
        except GossipError as exc:  # a hint; the others poll the chain anyway
            self.node.events.emit("publish_failed", opened, error=str(exc)[:160])
