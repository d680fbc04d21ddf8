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
    "SlotBook",
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


class SlotBook:
    """``slotOf`` of many accounts, read once per membership epoch. The registry moves every
    slot (``_takeSlot``, ``_releaseSlot``) only when the Active set changes, and every change
    of the Active set advances its epoch (``membership().epoch``). So :meth:`sync` reads the
    epoch (one call) and forgets the slots read under another; a committee draw then costs one
    ``slotOf`` per member per epoch instead of per round."""

    def __init__(self, client: LedgerClient) -> None:
        self._client = client
        self._epoch: int | None = None
        self._slots: dict[str, ActiveSlot] = {}
        # where the clients of one chain share reads (ledger.shared), they share the books too:
        # a slot is a function of the chain's registry and its epoch, not of the reader
        shared = client.shared
        self._books: dict[int, dict[str, ActiveSlot]] | None = (
            None
            if shared is None
            else shared.slots.setdefault(str(client.registry.address).lower(), {})
        )

    def sync(self) -> None:
        """Read the registry's membership epoch; drop the slots read in an earlier one."""
        epoch = int(self._client._call(self._client.registry.functions.membership())[0])
        if epoch != self._epoch:
            self._epoch = epoch
            self._slots = {} if self._books is None else self._books.setdefault(epoch, {})

    def of(self, account: str) -> ActiveSlot:
        """``slotOf(account)`` as of the last :meth:`sync` (or read now, then kept)."""
        key = account.lower()
        if key not in self._slots:
            self._slots[key] = slot_of(self._client, account)
        return self._slots[key]
