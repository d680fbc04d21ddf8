"""Chain calls of the per-round aggregation committee (``RoundLedger.setCommitteeSize``,
``committeeOf``, ``committeeSeat``; ``HospitalRegistry.slotOf``, ``slotCount``). Who sits is
:mod:`ledger.committee_draw`, how big ``node.consensus.committee``; docs/committee.md explains
both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from web3 import Web3
from web3.types import TxReceipt

if TYPE_CHECKING:
    from .client import LedgerClient

__all__ = [
    "ActiveSlot",
    "CommitteeInfo",
    "committee_info",
    "committee_size",
    "seat_on_chain",
    "set_committee_size",
    "slot_count",
    "slot_of",
]


@dataclass(frozen=True)
class CommitteeInfo:
    """A round's committee on chain: ``size`` 0 means every member attests; ``domain`` the
    Active slots it is drawn from; ``key`` the draw key (None until the round's beacon is
    ready, or without a committee)."""

    round: int
    size: int
    domain: int
    key: bytes | None


@dataclass(frozen=True)
class ActiveSlot:
    """A member's Active slot and the epoch its Active stay began (``since`` 0: not Active)."""

    slot: int
    since: int


def set_committee_size(admin: LedgerClient, size: int) -> TxReceipt:
    """Set how many members each round's beacon draws to attest (0: all); the deployer only,
    before the first round opens."""
    fn = admin.round_ledger.functions.setCommitteeSize(int(size))
    return admin._send("set_committee_size", fn)


def committee_size(client: LedgerClient) -> int:
    """The committee size rounds open with (0: every member attests)."""
    return int(client._call(client.round_ledger.functions.committeeSize()))


def committee_info(client: LedgerClient, round_: int) -> CommitteeInfo:
    """The committee size, domain and draw key of ``round_``."""
    size, domain, key = client._call(client.round_ledger.functions.committeeOf(int(round_)))
    raw = bytes(key)
    return CommitteeInfo(int(round_), int(size), int(domain), raw if any(raw) else None)


def seat_on_chain(client: LedgerClient, key: bytes, slot: int, n: int) -> int:
    """``RoundLedger.committeeSeat(key, slot, n)``: the contract's own draw."""
    return int(client._call(client.round_ledger.functions.committeeSeat(key, int(slot), int(n))))


def slot_of(client: LedgerClient, account: str) -> ActiveSlot:
    """``HospitalRegistry.slotOf(account)``."""
    fn = client.registry.functions.slotOf(Web3.to_checksum_address(account))
    slot, since = client._call(fn)
    return ActiveSlot(slot=int(slot), since=int(since))


def slot_count(client: LedgerClient) -> int:
    """Active slots ever opened (``HospitalRegistry.slotCount``)."""
    return int(client._call(client.registry.functions.slotCount()))
