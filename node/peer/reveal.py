"""Commit before reveal: a peer holds its update blob until no member can commit any more.

A member that copies another site's update (with noise, to pass the free-rider screen) can
only copy what it has seen before it commits: once its own commitment is on chain it cannot
change it, and after the round's commit deadline the contract refuses any commitment
(``RoundLedgerCommitClosed``). So an honest peer sends its blob only when every active member
of the round has committed, or when the commit window has closed. Then no member ever holds a
current-round update of another before its own commitment is fixed; the most it can copy is
an earlier round's update, which the stale screen and the contribution schemes value at
about nothing (docs/incentive-gaming.md). This is the commit-reveal pattern of sealed-bid
auctions and of RANDAO, applied by each sender to protect itself.

Threat limit: a member that never commits delays the reveal until the commit deadline, and no
longer (a liveness cost bounded by the commit window, not a safety one). A chain whose block
time trails the wall clock cannot keep the hold open past :data:`CLOCK_SLACK_S` after the
deadline: Ethereum clients refuse blocks dated more than 15 s ahead of their own clock.

The hold ends at every member's commit, not at the chain's quorum of commits: at the quorum,
the last member to commit could copy the first blobs released. A member that returns from an
outage after the window closed therefore votes without an update
(:meth:`node.peer.pipeline.HospitalPeer.vote_attested`) and trains from the next round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ledger import LedgerClient

__all__ = ["CLOCK_SLACK_S", "HINT_WAIT_S", "hold_until_committed"]

#: How far past the commit deadline the wall clock must be for a peer to release its blob on a
#: chain that produced no block since (anvil's automine: blocks come only with transactions).
CLOCK_SLACK_S = 15.0
#: A commit whose gossip hint is lost is seen on the next chain read, at most this much later.
HINT_WAIT_S = 1.0


async def hold_until_committed(
    ledger: LedgerClient,
    round_: int,
    members: Iterable[str],
    chain_changed: Callable[[], trio.Event],
) -> str:
    """Wait until each of ``members`` (registry addresses) has a commitment to ``round_`` on
    chain, or until the round's commit window has closed; ``chain_changed()`` returns the
    event the next chain hint sets (each member's ``UpdateCommitted`` announcement). Returns
    ``"all-committed"`` or ``"window-closed"``."""
    waiting = {m.lower() for m in members}
    deadline = ledger.round_info(round_).commit_deadline
    while True:
        event = chain_changed()  # taken before the read: a hint that lands during it is not lost
        if waiting <= {a.lower() for a in ledger.commitments(round_)}:
            return "all-committed"
        now = time.time()
        if now > deadline and (
            ledger.commit_window_closed(round_) or now > deadline + CLOCK_SLACK_S
        ):
            return "window-closed"
        with trio.move_on_after(
            HINT_WAIT_S
        ):  # past the deadline: the chain's clock is re-read each time
            await event.wait()
