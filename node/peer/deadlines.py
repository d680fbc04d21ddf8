"""Round-stage deadlines that follow the machine and the link, not a constant tuned on loopback.

A peer waits for the members' update blobs, and then for the quorum's attestations, for

    clamp(slack * max(train_s + transfer_s, lag_s), floor, ceiling)

where
- ``train_s`` is this node's own last local training time (a loaded machine trains slower, and a
  peer like it needs as long before its blob even leaves);
- ``transfer_s`` is the time the blob takes on the link: ``payload_bytes`` times the slowest
  seconds-per-byte of this node's own transfers in the last round (the slowest stream, e.g. to a
  hospital on a thin link); before any transfer was measured, all ``transfers`` copies sent one
  after another at ``assumed_mbit``;
- ``lag_s`` is how long the last wait actually took for every expected blob to arrive; a wait that
  ran out before they all arrived counts as its whole deadline, so the next round waits ``slack``
  times longer (up to ``ceiling``) and a slow hospital gets its update in instead of being dropped
  round after round. A wait that ran out only on a member that committed nothing (absent, or cut
  off by a partition) teaches nothing and counts as 0. Both measured terms decay by half per
  round once the link recovers.

``floor`` is ``[rounds].round_timeout`` and ``ceiling`` ``[rounds].round_timeout_max``. Waiting past
the chain's attestation deadline helps no one (attestations are refused after it), so a wait is
also cut to half the ``room`` left before that deadline: the other half is for aggregating,
attesting and finalizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger import LedgerClient
    from node.peer.settings import PeerSettings

__all__ = ["DeadlineBounds", "WaitClock", "attest_room", "stage_deadline"]

MIN_WAIT_S = 1.0  # the shortest wait the chain's deadline can cut a stage to


@dataclass(frozen=True)
class DeadlineBounds:
    floor: float = 60.0  # never wait less (the configured round_timeout)
    ceiling: float = 600.0  # never wait more
    assumed_mbit: float = 10.0  # link rate assumed until a transfer is measured
    slack: float = 2.0  # margin over the estimate (a peer up to this much slower is waited for)

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.ceiling:
            raise ValueError(
                f"deadline bounds need 0 < floor <= ceiling, got {self.floor} and {self.ceiling}"
            )
        if self.assumed_mbit <= 0 or self.slack < 1:
            raise ValueError(
                f"assumed_mbit must be > 0 and slack >= 1, got {self.assumed_mbit} and {self.slack}"
            )

    @classmethod
    def of(cls, settings: PeerSettings) -> DeadlineBounds:
        """The bounds a peer's settings give: ``round_timeout`` up to ``round_timeout_max``."""
        top = max(settings.round_timeout, settings.round_timeout_max)
        return cls(settings.round_timeout, top, settings.assumed_link_mbit)


def stage_deadline(
    bounds: DeadlineBounds, *, train_s: float, transfer_s: float, lag_s: float
) -> float:
    """The formula above, in seconds."""
    need = bounds.slack * max(train_s + transfer_s, lag_s)
    return min(bounds.ceiling, max(bounds.floor, need))


class WaitClock:
    """What one peer measured about its machine and links, and the deadline that follows."""

    def __init__(self, bounds: DeadlineBounds) -> None:
        self.bounds = bounds
        self.train_s = 0.0
        self.sec_per_byte: float | None = None  # the slowest stream of the last round
        self.lag_s = 0.0
        self.payload_bytes = 0
        self.transfers = 0
        self._round_spb = 0.0
        self._before: float | None = None  # sec_per_byte when this round's sending started

    def trained(self, seconds: float) -> None:
        self.train_s = max(0.0, seconds)

    def sending(self, payload_bytes: int, transfers: int) -> None:
        """This round's blob size and how many peers it goes to; starts a round's rate sample."""
        self.payload_bytes, self.transfers = payload_bytes, transfers
        self._round_spb = 0.0
        self._before = self.sec_per_byte

    def transferred(self, nbytes: int, seconds: float) -> None:
        """One blob transfer finished: it took ``seconds`` for ``nbytes``."""
        if nbytes <= 0 or seconds <= 0:
            return
        self._round_spb = max(self._round_spb, seconds / nbytes)
        old = self._before
        self.sec_per_byte = self._round_spb if old is None else max(self._round_spb, old / 2)

    def waited(self, seconds: float, complete: bool, deadline: float) -> None:
        """The blob wait of a round ended after ``seconds``; ``complete``: every expected blob came."""
        observed = seconds if complete else max(seconds, deadline)
        self.lag_s = max(observed, self.lag_s / 2)

    def transfer_s(self) -> float:
        if self.sec_per_byte is not None:
            return self.payload_bytes * self.sec_per_byte
        return self.payload_bytes * max(self.transfers, 1) * 8 / (self.bounds.assumed_mbit * 1e6)

    def deadline(self, room: float | None = None) -> float:
        """The wait in seconds; ``room``: seconds left before the round's attestation deadline."""
        wait = stage_deadline(
            self.bounds, train_s=self.train_s, transfer_s=self.transfer_s(), lag_s=self.lag_s
        )
        return wait if room is None else min(wait, max(room / 2, MIN_WAIT_S))


def attest_room(ledger: LedgerClient, round_: int) -> float:
    """Seconds left before ``round_``'s attestation deadline, by the chain's clock (its latest
    block; an embedded chain's clock moves only with its blocks, so this errs long): the
    ``room`` a stage's wait is cut to."""
    return ledger.round_info(round_).attest_deadline - int(
        ledger.w3.eth.get_block("latest")["timestamp"]
    )
