""":class:`~ledger.client.LedgerClient`'s calls about a round's votes: the chain head a
member attests it saw, attestations (by account list or commit-index mask), struck votes of
departed members, the votes cast, rejections and monitoring alerts, dissent.

Each function takes the client as ``self`` and is bound on the class as the method of the same
name (``client.attest(...)``), so the public surface stays one object."""

from __future__ import annotations

from typing import TYPE_CHECKING

from web3 import Web3
from web3.types import TxReceipt

from .attestlog import Vote
from .errors import LedgerError
from .records import (
    REJECTION_REASONS,
    ZERO32,
    Attestation,
    accepted_mask,
    alert_body_hash,
    alert_kind,
    as_bytes32,
)

if TYPE_CHECKING:
    from .client import LedgerClient

__all__ = [
    "attest",
    "attest_mask",
    "attestation",
    "chain_head",
    "committers",
    "dissent_count",
    "pending_departures",
    "record_alert",
    "record_rejections",
    "rejection_count",
    "strike_departures",
    "strike_vote",
    "votes",
    "votes_for",
]


def chain_head(self: LedgerClient) -> tuple[int, bytes]:
    """The head this client attests it saw: the number and hash of the latest block's
    parent, the newest block whose hash the contract can check (``blockhash`` knows only
    blocks before the one executing, and a node simulates a call in the latest block)."""
    block = self.w3.eth.get_block("latest")
    number = int(block["number"])
    if number == 0:
        raise LedgerError("the chain has no block before its genesis to attest as seen")
    return number - 1, bytes(block["parentHash"])


def attest(
    self: LedgerClient,
    round: int,
    aggregate_hash: bytes,
    accepted: list[str],
    seen: tuple[int, bytes] | None = None,
) -> TxReceipt:
    """Vote for (``aggregate_hash``, ``accepted``): the accounts are turned into the round's
    commit-index bitmask here (an account without a commitment is a LedgerError). ``seen``
    is the chain head (number, hash) the member read before voting (default: read now)."""
    index_of = {a: c.index for a, c in self.commitments(round).items()}
    return self.attest_mask(round, aggregate_hash, accepted_mask(accepted, index_of), seen)


def attest_mask(
    self: LedgerClient,
    round: int,
    aggregate_hash: bytes,
    mask: int,
    seen: tuple[int, bytes] | None = None,
) -> TxReceipt:
    """Vote for (``aggregate_hash``, ``mask``), bit i the committer of index i, having seen
    chain head ``seen`` (default: :meth:`chain_head`). The signed transaction is kept in
    ``attestation_records[round]``: the member's evidence of the history it saw
    (:mod:`ledger.anchors`)."""
    if not 0 <= int(mask) < 2**256:
        raise LedgerError(f"accepted mask must fit in 256 bits, got {mask}")
    number, head = seen if seen is not None else self.chain_head()
    fn = self.round_ledger.functions.attest(
        int(round),
        as_bytes32(aggregate_hash, "aggregate_hash"),
        int(mask),
        int(number),
        as_bytes32(head, "seen head"),
    )

    def keep(raw: bytes) -> None:
        self.attestation_records[int(round)] = raw

    return self._send("attest", fn, keep_raw=keep)


def strike_vote(self: LedgerClient, round: int, account: str) -> TxReceipt:
    """Strike the vote of ``account``, which left the Active set after ``round`` opened."""
    fn = self.round_ledger.functions.strikeVote(int(round), Web3.to_checksum_address(account))
    return self._send("strike_vote", fn)


def pending_departures(self: LedgerClient, round: int) -> int:
    """Departures since ``round`` opened not struck yet (``finalize`` counts each as a lost vote)."""
    return int(self._call(self.round_ledger.functions.pendingDepartures(int(round))))


def strike_departures(self: LedgerClient, round: int) -> list[str]:
    """Strike every departure of the open ``round`` not struck yet (read from the registry's
    tenures); returns the accounts struck. Races with other strikers are harmless."""
    info = self.round_info(round)
    if info.status != "open" or not self.pending_departures(round):
        return []
    struck = []
    for ident in self.identities():
        _, until = self._call(self.registry.functions.tenure(ident.address))
        if until > info.membership_epoch:
            try:
                self.strike_vote(round, ident.address)
                struck.append(ident.address)
            except LedgerError:
                pass  # struck already (by us earlier or by another member)
    return struck


def votes(self: LedgerClient, round: int) -> dict[str, Vote]:
    """Every vote cast in ``round`` so far, by member (lower-case), from its events
    (:class:`~ledger.attestlog.VoteIndex`: only the blocks since the last read are scanned)."""
    return self._votes.votes(round)


def committers(self: LedgerClient, round: int) -> list[str]:
    """The accounts that committed in ``round``, in commit order (a mask's bit order)."""
    return [
        Web3.to_checksum_address(a)
        for a in self._call(self.round_ledger.functions.committers(int(round)))
    ]


def attestation(self: LedgerClient, round: int, account: str) -> Attestation | None:
    """``account``'s vote in ``round``; its aggregate hash is read from its event."""
    address = Web3.to_checksum_address(account)
    raw = self._call(self.round_ledger.functions.attestation(int(round), address))
    if bytes(raw.voteKey) == ZERO32:
        return None
    return Attestation(
        address=address,
        vote_key=bytes(raw.voteKey),
        aggregate_hash=self._votes.aggregate_hash(round, address, bytes(raw.voteKey)),
        accepted=tuple(Web3.to_checksum_address(a) for a in raw.accepted),
        with_leader=bool(raw.withLeader),
        accepted_mask=int(raw.acceptedMask),
        struck=bool(raw.struck),
    )


def record_rejections(self: LedgerClient, round: int, reasons: dict[str, int | str]) -> TxReceipt:
    """Record that this member rejected the committed updates of the given accounts, each
    with a reason code (or its name in :data:`~ledger.records.REJECTION_REASONS`)."""
    codes = {name: code for code, name in REJECTION_REASONS.items()}
    accounts, values = [], []
    for account, reason in reasons.items():
        code = codes.get(reason) if isinstance(reason, str) else int(reason)
        if code is None or not 0 <= code <= 255:
            raise LedgerError(f"unknown rejection reason {reason!r}")
        accounts.append(Web3.to_checksum_address(account))
        values.append(code)
    fn = self.round_ledger.functions.recordRejections(int(round), accounts, values)
    return self._send("record_rejections", fn)


def record_alert(self: LedgerClient, round: int, kind: str, body: dict) -> tuple[TxReceipt, bytes]:
    """Record, signed by this member, that its monitoring raised an alert of ``kind`` about
    ``round``; the chain keeps only the hash of ``body`` (returned with the receipt)."""
    body_hash = alert_body_hash(body)
    fn = self.round_ledger.functions.recordAlert(int(round), alert_kind(kind), body_hash)
    return self._send("record_alert", fn), body_hash


def rejection_count(self: LedgerClient, round: int, account: str) -> int:
    fn = self.round_ledger.functions.rejectionCount(int(round), Web3.to_checksum_address(account))
    return int(self._call(fn))


def dissent_count(self: LedgerClient, round: int) -> int:
    """Attestations of ``round`` that differ from the leading (finalized) pair."""
    return int(self._call(self.round_ledger.functions.dissentCount(int(round))))


def votes_for(self: LedgerClient, round: int, vote_key: bytes) -> int:
    return int(
        self._call(
            self.round_ledger.functions.votesFor(int(round), as_bytes32(vote_key, "vote_key"))
        )
    )
