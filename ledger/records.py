"""Typed records read from the chain, and the unit conversions between Python and the contracts."""

from __future__ import annotations

import json
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
    "ZERO32",
    "ZERO_ADDRESS",
    "Attestation",
    "Commitment",
    "Identity",
    "PrivacyBudget",
    "RoundInfo",
    "epsilon_to_micros",
    "institution_id",
    "micros_to_epsilon",
    "accepted_mask",
    "alert_body_hash",
    "alert_kind",
    "alert_kind_name",
    "sort_accounts",
    "unmask",
    "vote_key",
]

#: What an unset ``bytes32`` and an unset ``address`` read as from the contracts.
ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
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
    7: "zero-update",  # free-rider screening, node/consensus/freeriding.py
    8: "stale-update",
    9: "duplicate-update",
    10: "samples-above-cohort",  # more samples than the committer's endorsed cohort (node/peer/verify.py)
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
    cohort: int = 0


#: Fixed-point scales of ``RoundLedger.PrivacyBudget``: epsilon, noise multiplier and clip norm
#: in millionths, delta in 10^-18 units.
DELTA_SCALE = 10**18


@dataclass(frozen=True)
class PrivacyBudget:
    """A member's campaign privacy budget as ``RoundLedger.declarePrivacyBudget`` records it:
    ``epsilon`` (0: a campaign without DP), ``delta``, the ``accountant``'s name (``"rdp"``,
    ``"prv"``; ``"none"`` without DP), the DP-SGD ``noise_multiplier`` and the per-sample
    ``clip_norm``. :meth:`encode` gives the contract's fixed-point tuple: epsilon, noise and
    clip times 10^6 (rounded up for epsilon, so the cap a peer enforces is never cut below),
    delta times 10^18."""

    epsilon: float
    delta: float
    accountant: str
    noise_multiplier: float
    clip_norm: float

    @property
    def dp(self) -> bool:
        return self.epsilon > 0

    def encode(self) -> tuple[int, int, int, int, bytes]:
        name = (
            self.accountant.encode("ascii", errors="replace") if self.accountant.isascii() else b""
        )
        if not name or len(name) > 24 or not self.accountant.isprintable():
            raise LedgerError(
                f"accountant must be 1-24 printable ASCII characters, got {self.accountant!r}"
            )
        fields = {
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "clip_norm": self.clip_norm,
        }
        for what, value in fields.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise LedgerError(f"{what} must be a finite number >= 0, got {value!r}")
        epsilon = epsilon_to_micros(self.epsilon)
        if self.epsilon > 0:
            epsilon = max(epsilon, math.ceil(float(self.epsilon) * EPSILON_SCALE))
        encoded = (
            epsilon,
            round(self.delta * DELTA_SCALE),
            round(self.noise_multiplier * EPSILON_SCALE),
            round(self.clip_norm * EPSILON_SCALE),
        )
        if max(encoded) > _UINT64_MAX:
            raise LedgerError(f"privacy budget {self} is too large to record")
        return (*encoded, name.ljust(24, b"\x00"))

    @classmethod
    def decode(cls, raw: tuple[int, int, int, int, bytes] | None) -> PrivacyBudget | None:
        """From the contract's tuple; None for an undeclared budget (zero accountant)."""
        if raw is None or not any(bytes(raw[4])):
            return None
        name = bytes(raw[4]).rstrip(b"\x00").decode("ascii", errors="replace")
        return cls(
            micros_to_epsilon(int(raw[0])),
            int(raw[1]) / DELTA_SCALE,
            name,
            int(raw[2]) / EPSILON_SCALE,
            int(raw[3]) / EPSILON_SCALE,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "accountant": self.accountant,
            "noise_multiplier": self.noise_multiplier,
            "clip_norm": self.clip_norm,
        }


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
    leader: str | None = None  # the first member to vote for the leading pair (None: no vote)


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
        raise LedgerError(
            f"accepted mask {mask:#x} names a commit index beyond the {len(committers)} committers"
        )
    return sort_accounts([a for i, a in enumerate(committers) if mask >> i & 1])


def alert_kind(kind: str) -> bytes:
    """An alert kind as the RoundLedger's ``bytes32``: ASCII, right-padded with zeros."""
    raw = kind.encode("ascii", "replace") if isinstance(kind, str) else b""
    if not raw or len(raw) > 32 or not kind.isprintable():
        raise LedgerError(f"alert kind must be 1-32 printable ASCII characters, got {kind!r}")
    return raw.ljust(32, b"\x00")


def alert_kind_name(raw: bytes | str) -> str:
    """The kind string of an ``AlertRecorded`` event's ``kind`` (bytes or 0x-hex)."""
    data = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
    return data.rstrip(b"\x00").decode("ascii", "replace")


def alert_body_hash(body: dict) -> bytes:
    """keccak-256 of an alert's canonical JSON (sorted keys, no spaces, UTF-8): what the
    RoundLedger's ``AlertRecorded`` binds; anyone holding the body recomputes it."""
    return keccak(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def as_bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        size = len(value) if isinstance(value, (bytes, bytearray, str)) else "?"
        raise LedgerError(f"{what} must be 32 bytes, got {type(value).__name__} of length {size}")
    return bytes(value)
