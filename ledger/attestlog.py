"""The aggregate hash of each attestation, read from the ``AggregateAttested`` events.

``RoundLedger.attestation`` stores a vote as its key, keccak256(aggregateHash, acceptedMask);
the hash itself is only in the vote's event. Reading that event used to scan the chain from
the deployment on for every attestation read, and a round's reads grow with its members: in
``medmesh simulate`` every member reads every attestation. :class:`AttestationIndex` scans
each block once per client instead. It keeps every ``AggregateAttested`` event it has seen,
and on a miss it scans only the blocks mined since its last scan. An entry answers only for
the vote key it was emitted with, so a reverted chain or a new vote cannot get a stale hash.
When the new blocks do not have the event either (the chain was rewound under the client), the
index scans the chain again from the deployment on, as every read used to.
"""

from __future__ import annotations

from web3 import Web3
from web3.contract import Contract

from .chain import event_topic, get_logs
from .errors import LedgerError

__all__ = ["AttestationIndex"]

_Event = tuple[bytes, bytes]  # (vote key, aggregate hash)


class AttestationIndex:
    """``AggregateAttested`` events of one RoundLedger by (round, account), read incrementally."""

    def __init__(self, w3: Web3, round_ledger: Contract, start_block: int) -> None:
        self._w3 = w3
        self._ledger = round_ledger
        self._start = start_block
        self._topic = event_topic(round_ledger, "AggregateAttested")
        self._events: dict[tuple[int, str], list[_Event]] = {}
        self._next = start_block  # the first block not scanned yet

    def aggregate_hash(self, round_: int, account: str, vote_key: bytes) -> bytes:
        """The hash ``account`` attested in ``round_`` with ``vote_key`` (from the chain's
        ``attestation``); raises unless exactly one such event is on chain."""
        key = (int(round_), account.lower())
        for rescan in (False, True):
            found = self._events.get(key, [])
            if len(found) == 1 and found[0][0] == vote_key:
                return found[0][1]
            self._scan(from_start=rescan)
        found = self._events.get(key, [])
        raise LedgerError(
            f"round {round_}: expected one AggregateAttested event of {account} with its vote "
            f"key, found {len(found)} event(s)"
            + ("" if len(found) != 1 else " with another vote key")
        )

    def _scan(self, *, from_start: bool) -> None:
        if from_start:
            self._events.clear()
            self._next = self._start
        head = self._w3.eth.block_number
        decode = self._ledger.events.AggregateAttested().process_log
        for log in get_logs(self._w3, [self._ledger.address], self._next, [self._topic]):
            if log["blockNumber"] > head:
                continue  # mined after ``head``: the next scan reads its block
            args = decode(log)["args"]
            key = (int(args["round"]), str(args["account"]).lower())
            event = (bytes(args["voteKey"]), bytes(args["aggregateHash"]))
            self._events.setdefault(key, []).append(event)
        self._next = max(self._next, head + 1)
