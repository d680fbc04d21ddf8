"""Chain reads of the per-round aggregation committee (``RoundLedger.committeeOf``,
``committeeSeat``; ``HospitalRegistry.slotOf``, ``holderOf``). The draw itself (who sits, how
big) is arithmetic and lives in ``node.consensus.committee``; docs/committee.md explains both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from web3 import Web3

if TYPE_CHECKING:
    from .client import LedgerClient

__all__ = ["ActiveSlot", "CommitteeInfo", "committee_info", "holder_of", "seat_on_chain", "slot_of"]


@dataclass(frozen=True)
class CommitteeInfo:
    """A round's committee on chain: ``size`` 0 means every member attests; ``key`` is the
    draw key (None until the round's beacon is ready, or without a committee)."""

    round: int
    size: int
    key: bytes | None


@dataclass(frozen=True)
class ActiveSlot:
    """A member's Active slot and the membership epoch it got it at (``since`` 0: none)."""

    slot: int
    since: int


def committee_info(client: LedgerClient, round_: int) -> CommitteeInfo:
    """The committee size and draw key of ``round_``."""
    size, key = client._call(client.round_ledger.functions.committeeOf(int(round_)))
    raw = bytes(key)
    return CommitteeInfo(round=int(round_), size=int(size), key=raw if any(raw) else None)


def seat_on_chain(client: LedgerClient, key: bytes, slot: int, n: int) -> int:
    """``RoundLedger.committeeSeat(key, slot, n)``: the contract's own draw."""
    return int(client._call(client.round_ledger.functions.committeeSeat(key, int(slot), int(n))))


def slot_of(client: LedgerClient, account: str) -> ActiveSlot:
    """``HospitalRegistry.slotOf(account)``."""
    fn = client.registry.functions.slotOf(Web3.to_checksum_address(account))
    slot, since = client._call(fn)
    return ActiveSlot(slot=int(slot), since=int(since))


def holder_of(client: LedgerClient, slot: int) -> str | None:
    """The Active member holding ``slot`` now (None past the last slot)."""
    account = str(client._call(client.registry.functions.holderOf(int(slot))))
    return None if int(account, 16) == 0 else Web3.to_checksum_address(account)
