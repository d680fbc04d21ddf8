""":class:`~ledger.client.LedgerClient`'s calls to the HospitalRegistry: register, bond,
endorse and admit, sanction votes, key rotation, exit; and the reads of identities, the
registry's settings and its Active set.

Each function takes the client as ``self`` and is bound on the class as the method of the same
name (``client.register(...)``), so the public surface stays one object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from web3 import Web3
from web3.types import TxReceipt

from .errors import LedgerError
from .records import (
    IDENTITY_STATUSES,
    SANCTIONS,
    ZERO_ADDRESS,
    Identity,
    as_bytes32,
)

if TYPE_CHECKING:
    from .client import LedgerClient

__all__ = [
    "active_count",
    "admit",
    "cohort_of",
    "deposit_bond",
    "endorse",
    "endorsements",
    "endorsements_needed",
    "exit",
    "genesis_open",
    "identities",
    "identity",
    "identity_of_peer",
    "is_active",
    "register",
    "registry_config",
    "reinstate",
    "revoke",
    "rotate_keys",
    "sanction_votes",
    "suspend",
    "sweep_forfeited",
    "vote_sanction",
    "withdraw_bond",
]


def _identity(raw: Any) -> Identity:
    return Identity(
        address=Web3.to_checksum_address(raw.account),
        institution_id=bytes(raw.institutionId),
        peer_id=raw.peerId,
        seal_key=bytes(raw.sealKey),
        sign_key=bytes(raw.signKey),
        status=IDENTITY_STATUSES[raw.status],
        joined_at=int(raw.joinedAt),
        bond=int(raw.bond),
        left_at=int(raw.leftAt),
        cohort=int(raw.cohort),
    )


def register(
    self: LedgerClient,
    institution_id: bytes,
    peer_id: str,
    seal_key: bytes,
    sign_key: bytes,
    cohort: int,
    bond: int | None = None,
) -> TxReceipt:
    """Register this account's institution (Pending until admitted) with its ``cohort`` (the
    patients behind its updates: no commitment may claim more samples; the admission
    endorses it), depositing ``bond`` wei (default: the registry's required bond)."""
    if isinstance(cohort, bool) or not isinstance(cohort, int) or not 0 < cohort < 2**64:
        raise LedgerError(f"cohort must be a whole number of patients in 1..2^64-1, got {cohort!r}")
    fn = self.registry.functions.register(
        as_bytes32(institution_id, "institution_id"),
        peer_id,
        as_bytes32(seal_key, "seal_key"),
        as_bytes32(sign_key, "sign_key"),
        int(cohort),
    )
    value = self.registry_config()["bond"] if bond is None else int(bond)
    return self._send("register", fn, value)


def deposit_bond(self: LedgerClient, amount: int) -> TxReceipt:
    """Add ``amount`` wei to this account's bond (Pending or Active)."""
    return self._send("deposit_bond", self.registry.functions.depositBond(), int(amount))


def endorse(self: LedgerClient, candidate: str) -> TxReceipt:
    """Endorse a Pending identity (Active members, once per candidate)."""
    return self._send(
        "endorse", self.registry.functions.endorse(Web3.to_checksum_address(candidate))
    )


def admit(self: LedgerClient, account: str) -> TxReceipt:
    """Admit a Pending identity that holds the bond: the admin during genesis, anyone once
    the candidate has a quorum of endorsements."""
    return self._send("admit", self.registry.functions.admit(Web3.to_checksum_address(account)))


def vote_sanction(self: LedgerClient, account: str, action: str) -> TxReceipt:
    """Vote ``action`` (``suspend``, ``reinstate`` or ``revoke``) about ``account``; the
    vote that reaches the quorum applies it. The first vote is the proposal."""
    if action not in SANCTIONS:
        raise LedgerError(f"sanction must be one of {', '.join(SANCTIONS)}, got {action!r}")
    fn = self.registry.functions.voteSanction(
        Web3.to_checksum_address(account), SANCTIONS.index(action)
    )
    return self._send(f"vote_{action}", fn)


def suspend(self: LedgerClient, account: str) -> TxReceipt:
    """Vote to suspend an Active member."""
    return self.vote_sanction(account, "suspend")


def reinstate(self: LedgerClient, account: str) -> TxReceipt:
    """Vote to reinstate a Suspended member."""
    return self.vote_sanction(account, "reinstate")


def revoke(self: LedgerClient, account: str) -> TxReceipt:
    """Vote to revoke a member for good."""
    return self.vote_sanction(account, "revoke")


def rotate_keys(self: LedgerClient, peer_id: str, seal_key: bytes, sign_key: bytes) -> TxReceipt:
    """Replace this account's peer ID and public keys."""
    fn = self.registry.functions.rotateKeys(
        peer_id, as_bytes32(seal_key, "seal_key"), as_bytes32(sign_key, "sign_key")
    )
    return self._send("rotate_keys", fn)


def exit(self: LedgerClient) -> TxReceipt:
    """Leave the consortium; the bond can be withdrawn after the cooldown."""
    return self._send("exit", self.registry.functions.exit())


def withdraw_bond(self: LedgerClient) -> TxReceipt:
    """Take the bond back, after the cooldown that follows an exit (or a revocation without
    forfeiture)."""
    return self._send("withdraw_bond", self.registry.functions.withdrawBond())


def sweep_forfeited(self: LedgerClient, to: str) -> TxReceipt:
    """Send the forfeited bonds to ``to`` (admin only)."""
    return self._send(
        "sweep_forfeited", self.registry.functions.sweepForfeited(Web3.to_checksum_address(to))
    )


def registry_config(self: LedgerClient) -> dict[str, Any]:
    """The registry's settings (genesis seats, member quorum, bond, cooldown, forfeiture)."""
    raw = self._call(self.registry.functions.config())
    return {
        "genesis_seats": int(raw.genesisSeats),
        "member_quorum": (int(raw.quorumNumerator), int(raw.quorumDenominator)),
        "bond": int(raw.bond),
        "exit_cooldown": int(raw.exitCooldown),
        "forfeit_on_revoke": bool(raw.forfeitOnRevoke),
    }


def genesis_open(self: LedgerClient) -> bool:
    """Whether the admin still admits alone."""
    return bool(self._call(self.registry.functions.genesisOpen()))


def endorsements_needed(self: LedgerClient) -> int:
    """Endorsements an admission needs now."""
    return int(self._call(self.registry.functions.endorsementsNeeded()))


def endorsements(self: LedgerClient, candidate: str) -> int:
    return int(
        self._call(self.registry.functions.endorsements(Web3.to_checksum_address(candidate)))
    )


def sanction_votes(self: LedgerClient, account: str, action: str) -> int:
    """Votes for ``action`` about ``account`` in its current status."""
    fn = self.registry.functions.sanctionVotes(
        Web3.to_checksum_address(account), SANCTIONS.index(action)
    )
    return int(self._call(fn))


def identity(self: LedgerClient, account: str) -> Identity | None:
    raw = self._call(self.registry.functions.identity(Web3.to_checksum_address(account)))
    return None if raw.status == 0 else _identity(raw)


def identities(self: LedgerClient) -> list[Identity]:
    """Every registered identity, in registration order (revoked ones included); decoded once
    per registry state where reads are shared (every member reads it every round)."""

    def build() -> list[Identity]:
        return [_identity(raw) for raw in self._call(self.registry.functions.identities())]

    found: list[Identity] = self._per_registry(("identities",), build)
    return found


def identity_of_peer(self: LedgerClient, peer_id: str) -> Identity | None:
    """The identity that holds ``peer_id`` now (None if none does, e.g. after a rotation)."""
    account = self._call(self.registry.functions.accountOfPeer(peer_id))
    if account == ZERO_ADDRESS:
        return None
    ident = self.identity(account)
    return ident if ident is not None and ident.peer_id == peer_id else None


def cohort_of(self: LedgerClient, account: str) -> int:
    """The cohort ``account`` declared at registration (0 without an identity)."""
    return int(self._call(self.registry.functions.cohortOf(Web3.to_checksum_address(account))))


def is_active(self: LedgerClient, account: str) -> bool:
    return bool(self._call(self.registry.functions.isActive(Web3.to_checksum_address(account))))


def active_count(self: LedgerClient) -> int:
    return int(self._call(self.registry.functions.activeCount()))
