"""A round's votes as its events record them, read incrementally.

``RoundLedger.attestation`` returns a vote with its accepted set, which the contract rebuilds
from the vote's mask and sorts on every call (O(n) reads and an O(n^2) sort in the EVM), and
without its aggregate hash, which only the vote's ``AggregateAttested`` event carries. A peer
that reads every member's vote (``node.consensus.attested``) therefore paid O(n^3) EVM steps
per round, plus a scan of the chain from the deployment on per vote for the hash.

:class:`VoteIndex` keeps the ``AggregateAttested`` and ``VoteStruck`` events of one RoundLedger,
and on each read scans only the blocks mined since its last scan. The events hold what the
votes hold: a member attests at most once per round (``RoundLedgerAlreadyAttested``), with the
vote key keccak256(aggregateHash, acceptedMask) the event names, and a vote is struck exactly
when a ``VoteStruck`` event names its member in its round (``strikeVote``). When the block the
last scan ended on is no longer on the chain (the chain was rewound under the client), the
index forgets everything and scans again from the deployment on.
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound

from .chain import event_topic, get_logs
from .errors import LedgerError

__all__ = ["Vote", "VoteIndex"]


@dataclass(frozen=True)
class Vote:
    """A member's vote in one round, as its events record it."""

    vote_key: bytes
    aggregate_hash: bytes
    accepted_mask: int  # bit i: the committer of index i
    struck: bool = False


class VoteIndex:
    """``AggregateAttested`` and ``VoteStruck`` events of one RoundLedger, by round and member."""

    def __init__(self, w3: Web3, round_ledger: Contract, start_block: int) -> None:
        self._w3 = w3
        self._ledger = round_ledger
        self._start = start_block
        self._attested = event_topic(round_ledger, "AggregateAttested")
        self._struck = event_topic(round_ledger, "VoteStruck")
        self._votes: dict[int, dict[str, list[Vote]]] = {}  # round -> member (lower) -> events
        self._struck_members: set[tuple[int, str]] = set()
        self._next = start_block  # the first block not scanned yet
        self._last_hash: bytes | None = None  # the hash of block ``_next - 1`` when scanned

    def votes(self, round_: int) -> dict[str, Vote]:
        """Every vote cast in ``round_`` up to the head, by member (lower-case address)."""
        self._scan()
        out = {}
        for member, found in self._votes.get(int(round_), {}).items():
            if len(found) != 1:
                raise LedgerError(
                    f"round {round_}: expected one AggregateAttested event of {member}, "
                    f"found {len(found)}"
                )
            vote = found[0]
            struck = (int(round_), member) in self._struck_members
            out[member] = Vote(vote.vote_key, vote.aggregate_hash, vote.accepted_mask, struck)
        return out

    def aggregate_hash(self, round_: int, account: str, vote_key: bytes) -> bytes:
        """The hash ``account`` attested in ``round_`` with ``vote_key`` (from the chain's
        ``attestation``); raises unless its one event names that key."""
        vote = self.votes(round_).get(account.lower())
        if vote is None or vote.vote_key != vote_key:
            raise LedgerError(
                f"round {round_}: no AggregateAttested event of {account} with its vote key"
            )
        return vote.aggregate_hash

    def _scan(self) -> None:
        if self._next > self._start and self._hash_of(self._next - 1) != self._last_hash:
            self._votes.clear()  # rewound under us: read everything again
            self._struck_members.clear()
            self._next = self._start
        head = self._w3.eth.get_block("latest")
        number = int(head["number"])
        if number < self._next:
            return
        events = self._ledger.events
        for log in get_logs(self._w3, [self._ledger.address], self._next):
            if log["blockNumber"] > number:
                continue  # mined after ``head``: the next scan reads its block
            topic = bytes(log["topics"][0]) if log["topics"] else b""
            if topic == self._attested:
                args = events.AggregateAttested().process_log(log)["args"]
                vote = Vote(
                    bytes(args["voteKey"]), bytes(args["aggregateHash"]), int(args["acceptedMask"])
                )
                member = str(args["account"]).lower()
                self._votes.setdefault(int(args["round"]), {}).setdefault(member, []).append(vote)
            elif topic == self._struck:
                args = events.VoteStruck().process_log(log)["args"]
                self._struck_members.add((int(args["round"]), str(args["account"]).lower()))
        self._next, self._last_hash = number + 1, bytes(head["hash"])

    def _hash_of(self, number: int) -> bytes | None:
        try:
            return bytes(self._w3.eth.get_block(number)["hash"])
        except BlockNotFound:  # beyond the head: the chain was rewound
            return None
