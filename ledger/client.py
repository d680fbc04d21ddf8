"""``LedgerClient``: one institution's view of, and actions on, the medmesh contracts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from .compile import compile_contracts, error_decoder
from .deploy import Deployment
from .errors import ErrorDecoder, LedgerError
from .records import (
    IDENTITY_STATUSES,
    ROUND_STATUSES,
    Attestation,
    Commitment,
    Identity,
    RoundInfo,
    as_bytes32,
    epsilon_to_micros,
    micros_to_epsilon,
    sort_accounts,
)
from .tx import call, send

__all__ = ["LedgerClient", "contracts_for"]

_ZERO32 = b"\x00" * 32
_ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def contracts_for(w3: Web3, deployment: Deployment) -> tuple[dict[str, Contract], ErrorDecoder]:
    """web3 contract objects for a deployment (checked to have code), and an error decoder."""
    artifacts = compile_contracts()
    contracts: dict[str, Contract] = {}
    for name, art in artifacts.items():
        address = deployment.addresses.get(name)
        if address is None:
            raise LedgerError(f"deployment lacks an address for {name}")
        contracts[name] = w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=art["abi"], decode_tuples=True
        )
    return contracts, error_decoder(artifacts)


def _identity(raw: Any) -> Identity:
    return Identity(
        address=Web3.to_checksum_address(raw.account),
        institution_id=bytes(raw.institutionId),
        peer_id=raw.peerId,
        seal_key=bytes(raw.sealKey),
        sign_key=bytes(raw.signKey),
        status=IDENTITY_STATUSES[raw.status],
        joined_at=int(raw.joinedAt),
    )


class LedgerClient:
    """Acts on the ledger as ``account``, a locally held key: every transaction is signed here
    and sent raw. Without an account the client is read-only. Transaction methods return the
    receipt and append the gas used to ``gas_used[method]``; a revert raises
    :class:`~ledger.errors.ContractRevert` with the decoded custom error, before anything is sent."""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount | None = None) -> None:
        chain_id = w3.eth.chain_id
        if chain_id != deployment.chain_id:
            raise LedgerError(
                f"deployment is for chain id {deployment.chain_id}, connected chain is {chain_id}"
            )
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        contracts, self._decoder = contracts_for(w3, deployment)
        if not w3.eth.get_code(contracts["RoundLedger"].address):
            raise LedgerError(
                f"no RoundLedger code at {contracts['RoundLedger'].address} on chain {chain_id}"
            )
        self.registry: Contract = contracts["HospitalRegistry"]
        self.round_ledger: Contract = contracts["RoundLedger"]
        self.credit: Contract = contracts["ContributionCredit"]
        self.gas_used: dict[str, list[int]] = defaultdict(list)
        self.last_receipt: TxReceipt | None = None

    @property
    def address(self) -> str:
        if self.account is None:
            raise LedgerError("this LedgerClient is read-only (no account)")
        return str(self.account.address)

    # ------------------------------------------------------------------ plumbing

    def _send(self, method: str, fn: ContractFunction) -> TxReceipt:
        if self.account is None:
            raise LedgerError(f"{method}: this LedgerClient is read-only (no account)")
        receipt = send(self.w3, self.account, fn, decoder=self._decoder, action=method)
        self.gas_used[method].append(int(receipt["gasUsed"]))
        self.last_receipt = receipt
        return receipt

    def _call(self, fn: ContractFunction) -> Any:
        return call(fn, decoder=self._decoder)

    # ------------------------------------------------------------------ registry

    def register(self, institution_id: bytes, peer_id: str, seal_key: bytes, sign_key: bytes) -> TxReceipt:
        """Register this account's institution (Pending until the admin admits it)."""
        fn = self.registry.functions.register(
            as_bytes32(institution_id, "institution_id"),
            peer_id,
            as_bytes32(seal_key, "seal_key"),
            as_bytes32(sign_key, "sign_key"),
        )
        return self._send("register", fn)

    def admit(self, account: str) -> TxReceipt:
        """Admit a Pending identity (admin only)."""
        return self._send("admit", self.registry.functions.admit(Web3.to_checksum_address(account)))

    def revoke(self, account: str) -> TxReceipt:
        """Revoke an identity for good (admin only)."""
        return self._send("revoke", self.registry.functions.revoke(Web3.to_checksum_address(account)))

    def identity(self, account: str) -> Identity | None:
        raw = self._call(self.registry.functions.identity(Web3.to_checksum_address(account)))
        return None if raw.status == 0 else _identity(raw)

    def identities(self) -> list[Identity]:
        """Every registered identity, in registration order (revoked ones included)."""
        members = self._call(self.registry.functions.members())
        return [_identity(self._call(self.registry.functions.identity(m))) for m in members]

    def identity_of_peer(self, peer_id: str) -> Identity | None:
        account = self._call(self.registry.functions.accountOfPeer(peer_id))
        return None if account == _ZERO_ADDRESS else self.identity(account)

    def is_active(self, account: str) -> bool:
        return bool(self._call(self.registry.functions.isActive(Web3.to_checksum_address(account))))

    def active_count(self) -> int:
        return int(self._call(self.registry.functions.activeCount()))

    # ------------------------------------------------------------------ rounds

    def open_round(self) -> int:
        """Open the next round and return its number (receipt in ``last_receipt``)."""
        receipt = self._send("open_round", self.round_ledger.functions.openRound())
        events = self.round_ledger.events.RoundOpened().process_receipt(receipt, errors=DISCARD)
        if len(events) != 1:
            raise LedgerError("open_round: the receipt carries no RoundOpened event")
        return int(events[0]["args"]["round"])

    def current_round(self) -> int:
        """The latest round number (0 before any round)."""
        return int(self._call(self.round_ledger.functions.currentRound()))

    def commit_update(
        self, round: int, update_hash: bytes, samples: int, epsilon: float, mode: int
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

    def commitment(self, round: int, account: str) -> Commitment | None:
        address = Web3.to_checksum_address(account)
        raw = self._call(self.round_ledger.functions.commitment(int(round), address))
        if bytes(raw.updateHash) == _ZERO32:
            return None
        return Commitment(
            address=address,
            update_hash=bytes(raw.updateHash),
            samples=int(raw.samples),
            epsilon=micros_to_epsilon(int(raw.epsilonMicros)),
            mode=int(raw.mode),
            index=int(raw.index),
        )

    def commitments(self, round: int) -> dict[str, Commitment]:
        """Commitments of ``round`` by account, in commit order."""
        found: dict[str, Commitment] = {}
        for account in self._call(self.round_ledger.functions.committers(int(round))):
            c = self.commitment(round, account)
            if c is not None:
                found[c.address] = c
        return found

    def attest(self, round: int, aggregate_hash: bytes, accepted: list[str]) -> TxReceipt:
        """Vote for (``aggregate_hash``, ``accepted``); ``accepted`` is sorted here."""
        fn = self.round_ledger.functions.attest(
            int(round), as_bytes32(aggregate_hash, "aggregate_hash"), sort_accounts(accepted)
        )
        return self._send("attest", fn)

    def attestation(self, round: int, account: str) -> Attestation | None:
        address = Web3.to_checksum_address(account)
        raw = self._call(self.round_ledger.functions.attestation(int(round), address))
        if bytes(raw.voteKey) == _ZERO32:
            return None
        return Attestation(
            address=address,
            vote_key=bytes(raw.voteKey),
            aggregate_hash=bytes(raw.aggregateHash),
            accepted=tuple(Web3.to_checksum_address(a) for a in raw.accepted),
        )

    def votes_for(self, round: int, vote_key: bytes) -> int:
        return int(
            self._call(self.round_ledger.functions.votesFor(int(round), as_bytes32(vote_key, "vote_key")))
        )

    def finalize(self, round: int) -> TxReceipt:
        """Finalize ``round`` once a vote pair has quorum; mints the credits."""
        return self._send("finalize", self.round_ledger.functions.finalize(int(round)))

    def fail_round(self, round: int) -> TxReceipt:
        """Fail ``round`` after its attestation deadline without quorum."""
        return self._send("fail_round", self.round_ledger.functions.failRound(int(round)))

    def round_info(self, round: int) -> RoundInfo:
        raw = self._call(self.round_ledger.functions.roundInfo(int(round)))
        status = ROUND_STATUSES[raw.status]
        aggregate = bytes(raw.aggregateHash)
        return RoundInfo(
            round=int(round),
            status=status,
            aggregate_hash=aggregate if status == "finalized" else None,
            opener=None if raw.opener == _ZERO_ADDRESS else Web3.to_checksum_address(raw.opener),
            opened_at=int(raw.openedAt),
            commit_deadline=int(raw.commitDeadline),
            attest_deadline=int(raw.attestDeadline),
            commit_count=int(raw.commitCount),
            attest_count=int(raw.attestCount),
            leader_votes=int(raw.leaderVotes),
        )

    def quorum_reached(self, round: int) -> bool:
        return bool(self._call(self.round_ledger.functions.quorumReached(int(round))))

    # ------------------------------------------------------------------ credits

    def credit_balance(self, address: str) -> int:
        """Credits held by ``address``, in the smallest unit (18 decimals)."""
        return int(self._call(self.credit.functions.balanceOf(Web3.to_checksum_address(address))))

    def credit_supply(self) -> int:
        return int(self._call(self.credit.functions.totalSupply()))
