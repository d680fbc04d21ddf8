"""Typed records read from the chain, and the unit conversions between Python and the contracts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from .errors import LedgerError

__all__ = [
    "CREDIT_SCHEMES",
    "ENUM_LABELS",
    "EPSILON_SCALE",
    "IDENTITY_STATUSES",
    "REJECTION_REASONS",
    "ROUND_STATUSES",
    "SANCTIONS",
    "Attestation",
    "Commitment",
    "Identity",
    "RoundInfo",
    "epsilon_to_micros",
    "institution_id",
    "micros_to_epsilon",
    "accepted_mask",
    "sort_accounts",
    "unmask",
    "vote_key",
]

#: ``HospitalRegistry.Status`` by value.
IDENTITY_STATUSES = ("none", "pending", "active", "suspended", "revoked", "exited")
#: ``HospitalRegistry.Sanction`` by value.
SANCTIONS = ("suspend", "reinstate", "revoke")
#: ``RoundLedger.RoundStatus`` by value.
ROUND_STATUSES = ("none", "open", "finalized", "failed")
#: ``RoundLedger.CreditScheme`` by value.
CREDIT_SCHEMES = ("samples", "equal")
#: Reason codes of ``RoundLedger.recordRejections`` (the contract only requires nonzero).
REJECTION_REASONS = {
    1: "hash-mismatch",
    2: "missing-blob",
    3: "bad-seal",
    4: "bad-format",
    5: "not-a-member",
    6: "robust-rule",
    7: "zero-update",  # free-rider screening, node/freeriding.py
    8: "stale-update",
    9: "duplicate-update",
    255: "other",
}
#: Solidity enum (internalType) -> labels, for readable revert messages.
ENUM_LABELS = {
    "HospitalRegistry.Status": IDENTITY_STATUSES,
    "HospitalRegistry.Sanction": SANCTIONS,
    "RoundLedger.RoundStatus": ROUND_STATUSES,
}
#: Epsilon is stored on chain as an integer number of millionths.
EPSILON_SCALE = 1_000_000
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class Identity:
    """A registered institution (``status``: pending, active, suspended, revoked or exited;
    ``bond`` in wei; ``left_at`` the timestamp of its exit or revocation, 0 before)."""

    address: str
    institution_id: bytes
    peer_id: str
    seal_key: bytes
    sign_key: bytes
    status: str
    joined_at: int
    bond: int = 0
    left_at: int = 0


@dataclass(frozen=True)
class Commitment:
    """A member's committed update in one round (``epsilon`` as a float)."""

    address: str
    update_hash: bytes
    samples: int
    epsilon: float
    mode: int
    index: int


@dataclass(frozen=True)
class Attestation:
    """A member's vote for an (aggregate hash, accepted set) pair in one round.
    ``with_leader``: the vote is for the leading pair (in a finalized round: it agrees with
    the finalized pair; False is a dissent)."""

    address: str
    vote_key: bytes
    aggregate_hash: bytes
    accepted: tuple[str, ...]
    with_leader: bool = True
    accepted_mask: int = 0  # bit i: the committer of index i
    struck: bool = False  # its member left the Active set mid-round: the vote does not count


@dataclass(frozen=True)
class RoundInfo:
    """A round as stored. ``status``: none (never opened), open, finalized or failed;
    ``aggregate_hash`` is None until finalized. ``member_count``: the registry's Active members
    when it opened (its quorum's denominator); ``settled``: its credits were minted."""

    round: int
    status: str
    aggregate_hash: bytes | None
    opener: str | None
    opened_at: int
    commit_deadline: int
    attest_deadline: int
    commit_count: int
    attest_count: int
    leader_votes: int
    member_count: int = 0
    membership_epoch: int = 0
    settled: bool = False


def institution_id(name: str) -> bytes:
    """The registry's institution ID: keccak256 of the UTF-8 name, stripped."""
    cleaned = name.strip()
    if not cleaned:
        raise LedgerError("institution name is empty")
    return keccak(text=cleaned)


def epsilon_to_micros(epsilon: float) -> int:
    if not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) or epsilon < 0:
        raise LedgerError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    micros = round(float(epsilon) * EPSILON_SCALE)
    if micros > _UINT64_MAX:
        raise LedgerError(f"epsilon {epsilon} is too large to record")
    return micros


def micros_to_epsilon(micros: int) -> float:
    return micros / EPSILON_SCALE


def sort_accounts(accounts: list[str] | tuple[str, ...]) -> list[str]:
    """Checksum addresses sorted ascending by numeric value (the contract's canonical order)."""
    try:
        checked = [to_checksum_address(a) for a in accounts]
    except (TypeError, ValueError) as exc:
        raise LedgerError(f"not an address list: {exc}") from exc
    return sorted(checked, key=lambda a: int(a, 16))


def vote_key(aggregate_hash: bytes, accepted_mask: int) -> bytes:
    """``keccak256(abi.encode(aggregateHash, acceptedMask))``, as the RoundLedger keys votes
    (bit i of the mask: the round's committer of index i; see :func:`accepted_mask`)."""
    return keccak(abi_encode(["bytes32", "uint256"], [aggregate_hash, int(accepted_mask)]))


def accepted_mask(accepted: list[str] | tuple[str, ...], index_of: dict[str, int]) -> int:
    """The bitmask of ``accepted`` over the round's commit indexes ``index_of`` (account ->
    index); an account without a commitment is a LedgerError naming it."""
    mask = 0
    for account in sort_accounts(accepted):
        index = index_of.get(account)
        if index is None:
            raise LedgerError(f"{account} made no commitment in this round and cannot be accepted")
        mask |= 1 << index
    return mask


def unmask(mask: int, committers: list[str] | tuple[str, ...]) -> list[str]:
    """The accounts of ``mask`` (bit i: ``committers[i]``), sorted ascending; a bit beyond the
    committers is a LedgerError."""
    if mask >> len(committers):
        raise LedgerError(f"accepted mask {mask:#x} names a commit index beyond the {len(committers)} committers")
    return sort_accounts([a for i, a in enumerate(committers) if mask >> i & 1])


def as_bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        size = len(value) if isinstance(value, (bytes, bytearray, str)) else "?"
        raise LedgerError(f"{what} must be 32 bytes, got {type(value).__name__} of length {size}")
    return bytes(value)
