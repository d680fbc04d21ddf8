""":class:`~ledger.client.LedgerClient`'s calls that run a round on the RoundLedger, and
its credits: open, the member's privacy budget, commitments, finalize, settle or fail, the
round's and the ledger's settings, and the ContributionCredit token.

Each function takes the client as ``self`` and is bound on the class as the method of the same
name (``client.open_round()``), so the public surface stays one object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from .errors import LedgerError
from .records import (
    CREDIT_SCHEMES,
    ROUND_STATUSES,
    ZERO32,
    ZERO_ADDRESS,
    Commitment,
    PrivacyBudget,
    RoundInfo,
    as_bytes32,
    epsilon_to_micros,
    micros_to_epsilon,
)

if TYPE_CHECKING:
    from .client import LedgerClient

__all__ = [
    "commit_update",
    "commit_window_closed",
    "commitment",
    "commitments",
    "credit_balance",
    "credit_supply",
    "current_round",
    "declare_privacy_budget",
    "ensure_privacy_budget",
    "epsilon_spent",
    "fail_round",
    "finalize",
    "ledger_config",
    "open_round",
    "privacy_budget",
    "quorum_reached",
    "round_info",
    "set_transfers_enabled",
    "settle",
]


def _commitment(address: str, raw: Any) -> Commitment | None:
    if bytes(raw.updateHash) == ZERO32:
        return None
    return Commitment(
        address=address,
        update_hash=bytes(raw.updateHash),
        samples=int(raw.samples),
        epsilon=micros_to_epsilon(int(raw.epsilonMicros)),
        mode=int(raw.mode),
        index=int(raw.index),
    )


def open_round(self: LedgerClient) -> int:
    """Open the next round and return its number (receipt in ``last_receipt``)."""
    self.sync_clock()  # else an idle embedded chain dates the windows from its last block
    receipt = self._send("open_round", self.round_ledger.functions.openRound())
    events = self.round_ledger.events.RoundOpened().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise LedgerError("open_round: the receipt carries no RoundOpened event")
    return int(events[0]["args"]["round"])


def current_round(self: LedgerClient) -> int:
    """The latest round number (0 before any round)."""
    return int(self._call(self.round_ledger.functions.currentRound()))


def declare_privacy_budget(self: LedgerClient, budget: PrivacyBudget) -> TxReceipt:
    """Record this member's campaign privacy budget on chain: once, before its first commit."""
    return self._send(
        "declare_privacy_budget",
        self.round_ledger.functions.declarePrivacyBudget(budget.encode()),
    )


def privacy_budget(self: LedgerClient, account: str) -> PrivacyBudget | None:
    """The budget ``account`` declared (None if none yet)."""
    raw = self._call(self.round_ledger.functions.privacyBudget(Web3.to_checksum_address(account)))
    return PrivacyBudget.decode(tuple(raw))


def ensure_privacy_budget(self: LedgerClient, budget: PrivacyBudget) -> None:
    """Declare ``budget`` unless this member already declared one; a different budget on
    chain raises (it cannot change, and commits are checked against the recorded one)."""
    recorded = self.privacy_budget(self.address)
    if recorded is None:
        self.declare_privacy_budget(budget)
        return
    if PrivacyBudget.decode(budget.encode()) != recorded:
        raise LedgerError(
            f"{self.address} declared privacy budget {recorded.to_json()} on chain, which cannot change; "
            f"this peer runs {budget.to_json()}"
        )


def epsilon_spent(self: LedgerClient, account: str) -> float:
    """The cumulative epsilon ``account`` reported in its latest commitment (0.0 before any)."""
    return micros_to_epsilon(
        int(self._call(self.round_ledger.functions.epsilonSpent(Web3.to_checksum_address(account))))
    )


def commit_update(
    self: LedgerClient, round: int, update_hash: bytes, samples: int, epsilon: float, mode: int
) -> TxReceipt:
    """Commit this member's update hash, sample count, DP epsilon and protection mode."""
    if not 0 <= int(mode) <= 255:
        raise LedgerError(f"mode must fit in a byte, got {mode}")
    if not 0 <= int(samples) < 2**64:
        raise LedgerError(f"samples must fit in 64 bits, got {samples}")
    fn = self.round_ledger.functions.commitUpdate(
        int(round),
        as_bytes32(update_hash, "update_hash"),
        int(samples),
        epsilon_to_micros(epsilon),
        int(mode),
    )
    return self._send("commit_update", fn)


def commitment(self: LedgerClient, round: int, account: str) -> Commitment | None:
    address = Web3.to_checksum_address(account)
    return _commitment(
        address, self._call(self.round_ledger.functions.commitment(int(round), address))
    )


def commitments(self: LedgerClient, round: int) -> dict[str, Commitment]:
    """Commitments of ``round`` by account, in commit order (one call; built once per head
    block where reads are shared: every member of a round waits on it)."""

    def build() -> dict[str, Commitment]:
        accounts, raws = self._call(self.round_ledger.functions.commitmentsOf(int(round)))
        found = (
            _commitment(Web3.to_checksum_address(a), raw)
            for a, raw in zip(accounts, raws, strict=False)
        )
        return {c.address: c for c in found if c is not None}

    found: dict[str, Commitment] = self._per_head(("commitments", int(round)), build)
    return found


def commit_window_closed(self: LedgerClient, round: int) -> bool:
    """Whether no commitment to ``round`` can land any more: the chain's latest block is
    past the round's commit deadline, and every later block's timestamp is at least its own
    (the embedded chain's clock is first brought up to wall-clock time)."""
    self.sync_clock()
    latest = int(self.w3.eth.get_block("latest")["timestamp"])
    return latest > self.round_info(round).commit_deadline


def ledger_config(self: LedgerClient) -> dict[str, Any]:
    """The round ledger's settings."""
    raw = self._call(self.round_ledger.functions.config())
    return {
        "commit_window": int(raw.commitWindow),
        "attest_window": int(raw.attestWindow),
        "credit_per_round": int(raw.creditPerRound),
        "quorum": (int(raw.quorumNumerator), int(raw.quorumDenominator)),
        "credit_scheme": CREDIT_SCHEMES[raw.creditScheme],
        "slash_per_rejection": int(raw.slashPerRejection),
    }


def finalize(self: LedgerClient, round: int, *, settle: bool = True) -> TxReceipt:
    """Finalize ``round`` once a vote pair has quorum over the round's members and, with
    ``settle``, mint its credits in a second transaction (its receipt in ``last_receipt``).
    Returns the finalize receipt."""
    receipt = self._send("finalize", self.round_ledger.functions.finalize(int(round)))
    if settle:
        self.settle(round)
    return receipt


def settle(self: LedgerClient, round: int) -> TxReceipt:
    """Mint the credits (and apply the slashes) of finalized ``round``, once."""
    return self._send("settle", self.round_ledger.functions.settle(int(round)))


def fail_round(self: LedgerClient, round: int) -> TxReceipt:
    """Fail ``round`` after its attestation deadline without quorum."""
    return self._send("fail_round", self.round_ledger.functions.failRound(int(round)))


def round_info(self: LedgerClient, round: int) -> RoundInfo:
    raw = self._call(self.round_ledger.functions.roundInfo(int(round)))
    status = ROUND_STATUSES[raw.status]
    aggregate = bytes(raw.aggregateHash)
    return RoundInfo(
        round=int(round),
        status=status,
        aggregate_hash=aggregate if status == "finalized" else None,
        opener=None if raw.opener == ZERO_ADDRESS else Web3.to_checksum_address(raw.opener),
        opened_at=int(raw.openedAt),
        commit_deadline=int(raw.commitDeadline),
        attest_deadline=int(raw.attestDeadline),
        commit_count=int(raw.commitCount),
        attest_count=int(raw.attestCount),
        leader_votes=int(raw.leaderVotes),
        member_count=int(raw.memberCount),
        membership_epoch=int(raw.membershipEpoch),
        settled=bool(raw.settled),
        leader=None if raw.leader == ZERO_ADDRESS else Web3.to_checksum_address(raw.leader),
    )


def quorum_reached(self: LedgerClient, round: int) -> bool:
    return bool(self._call(self.round_ledger.functions.quorumReached(int(round))))


def credit_balance(self: LedgerClient, address: str) -> int:
    """Credits held by ``address``, in the smallest unit (18 decimals)."""
    return int(self._call(self.credit.functions.balanceOf(Web3.to_checksum_address(address))))


def credit_supply(self: LedgerClient) -> int:
    return int(self._call(self.credit.functions.totalSupply()))


def set_transfers_enabled(self: LedgerClient, enabled: bool) -> TxReceipt:
    """Switch credit transfers on or off (admin only)."""
    return self._send(
        "set_transfers_enabled", self.credit.functions.setTransfersEnabled(bool(enabled))
    )
