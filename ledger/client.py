"""``LedgerClient``: one institution's view of, and actions on, the medmesh contracts.

This module holds the client's connection and plumbing; the calls themselves live by job in
:mod:`ledger.registry_calls`, :mod:`ledger.round_calls` and :mod:`ledger.vote_calls`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from . import registry_calls, round_calls, vote_calls
from .attestlog import VoteIndex
from .chain import sync_clock
from .compile import CONTRACT_NAMES, compile_contracts, error_decoder
from .deploy import Deployment
from .errors import ErrorDecoder, LedgerError
from .shared import head_hash, shared_reads
from .tx import call, send

__all__ = ["LedgerClient", "contracts_for"]


def contracts_for(w3: Web3, deployment: Deployment) -> tuple[dict[str, Contract], ErrorDecoder]:
    """web3 contract objects for a deployment (checked to have code), and an error decoder."""
    artifacts = compile_contracts()
    contracts: dict[str, Contract] = {}
    for name in CONTRACT_NAMES:
        art = artifacts[name]
        address = deployment.addresses.get(name)
        if address is None:
            raise LedgerError(f"deployment lacks an address for {name}")
        contracts[name] = w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=art["abi"], decode_tuples=True
        )
    return contracts, error_decoder(artifacts)


class LedgerClient:
    """Acts on the ledger as ``account``, a locally held key: every transaction is signed here
    and sent raw. Without an account the client is read-only. Transaction methods return the
    receipt and append the gas used to ``gas_used[method]``; a revert raises
    :class:`~ledger.errors.ContractRevert` with the decoded custom error, before anything is sent.

    The class holds the connection, the contracts and the plumbing every call goes through
    (``_send``, ``_call``, the observers); its methods are functions of the rooms below, by
    contract and job, bound here under their own names."""

    def __init__(
        self, w3: Web3, deployment: Deployment, account: LocalAccount | None = None
    ) -> None:
        chain_id = w3.eth.chain_id
        if chain_id != deployment.chain_id:
            raise LedgerError(
                f"deployment is for chain id {deployment.chain_id}, connected chain is {chain_id}"
            )
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        #: ``observer(op)`` context managers entered around every transaction (``op`` is its
        #: method name, e.g. ``"commit_update"``) and every read (``op`` is ``"call"``): how
        #: a peer times its chain calls and a monitor counts them, without wrapping methods
        self.observers: list[Callable[[str], AbstractContextManager[Any]]] = []
        contracts, self._decoder = contracts_for(w3, deployment)
        if not w3.eth.get_code(contracts["RoundLedger"].address):
            raise LedgerError(
                f"no RoundLedger code at {contracts['RoundLedger'].address} on chain {chain_id}"
            )
        self.registry: Contract = contracts["HospitalRegistry"]
        self.round_ledger: Contract = contracts["RoundLedger"]
        self.credit: Contract = contracts["ContributionCredit"]
        self.beacon: Contract = contracts["RoundBeacon"]  # per-round randomness: ledger.beacon
        self.gas_used: dict[str, list[int]] = defaultdict(list)
        self.last_receipt: TxReceipt | None = None
        #: Signed attest transactions by round (see :meth:`attest`).
        self.attestation_records: dict[int, bytes] = {}
        #: the reads this client shares with the others on its chain (ledger.shared), or None
        self.shared = shared_reads(w3)
        self._votes = self._vote_index(deployment.start_block)

    @property
    def address(self) -> str:
        if self.account is None:
            raise LedgerError("this LedgerClient is read-only (no account)")
        return str(self.account.address)

    # --- plumbing

    def _send(
        self,
        method: str,
        fn: ContractFunction,
        value: int = 0,
        keep_raw: Callable[[bytes], None] | None = None,
    ) -> TxReceipt:
        if self.account is None:
            raise LedgerError(f"{method}: this LedgerClient is read-only (no account)")
        tx: Any = fn
        if value:
            tx = {"to": fn.address, "data": fn._encode_transaction_data(), "value": int(value)}
        with self._observed(method):
            receipt = send(
                self.w3, self.account, tx, decoder=self._decoder, action=method, keep_raw=keep_raw
            )
        self.gas_used[method].append(int(receipt["gasUsed"]))
        self.last_receipt = receipt
        return receipt

    def _vote_index(self, start_block: int) -> VoteIndex:
        """The round ledger's vote events: one index per chain where reads are shared."""
        if self.shared is None:
            return VoteIndex(self.w3, self.round_ledger, start_block)
        key = (str(self.round_ledger.address), int(start_block))
        if key not in self.shared.vote_indexes:
            self.shared.vote_indexes[key] = VoteIndex(self.w3, self.round_ledger, start_block)
        index: VoteIndex = self.shared.vote_indexes[key]
        return index

    def _call(self, fn: ContractFunction) -> Any:
        with self._observed("call"):
            if self.shared is not None:  # one answer per head block for every client
                return self.shared.call(fn, lambda: call(fn, decoder=self._decoder))
            return call(fn, decoder=self._decoder)

    def _per_head(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """``build()`` (made from this block's views alone), shared per head block where reads
        are shared (:meth:`ledger.shared.SharedReads.per_head`)."""
        if self.shared is None:
            return build()
        return self.shared.per_head(key, build)

    def _per_registry(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """``build()`` (made from the registry's views alone), shared per registry storage
        root where the chain keeps its reads so (:meth:`ledger.shared.SharedReads.per_storage`)."""
        if self.shared is None:
            return build()
        return self.shared.per_storage(str(self.registry.address), key, build)

    def head_hash(self) -> bytes:
        """The latest block's hash (:func:`ledger.shared.head_hash`)."""
        return head_hash(self.w3)

    def _observed(self, op: str) -> ExitStack:
        stack = ExitStack()
        for observer in self.observers:
            stack.enter_context(observer(op))
        return stack

    def sync_clock(self) -> None:
        """See :func:`ledger.chain.sync_clock` (embedded chain only; a no-op elsewhere)."""
        sync_clock(self.w3)

    # --- the HospitalRegistry: identities, bonds, admission, sanctions (ledger.registry_calls)

    register = registry_calls.register
    deposit_bond = registry_calls.deposit_bond
    endorse = registry_calls.endorse
    admit = registry_calls.admit
    vote_sanction = registry_calls.vote_sanction
    suspend = registry_calls.suspend
    reinstate = registry_calls.reinstate
    revoke = registry_calls.revoke
    rotate_keys = registry_calls.rotate_keys
    exit = registry_calls.exit
    withdraw_bond = registry_calls.withdraw_bond
    sweep_forfeited = registry_calls.sweep_forfeited
    registry_config = registry_calls.registry_config
    genesis_open = registry_calls.genesis_open
    endorsements_needed = registry_calls.endorsements_needed
    endorsements = registry_calls.endorsements
    sanction_votes = registry_calls.sanction_votes
    identity = registry_calls.identity
    identities = registry_calls.identities
    identity_of_peer = registry_calls.identity_of_peer
    cohort_of = registry_calls.cohort_of
    is_active = registry_calls.is_active
    active_count = registry_calls.active_count

    # --- a round's life on the RoundLedger, and the credit token (ledger.round_calls)

    open_round = round_calls.open_round
    current_round = round_calls.current_round
    declare_privacy_budget = round_calls.declare_privacy_budget
    privacy_budget = round_calls.privacy_budget
    ensure_privacy_budget = round_calls.ensure_privacy_budget
    epsilon_spent = round_calls.epsilon_spent
    commit_update = round_calls.commit_update
    commitment = round_calls.commitment
    commitments = round_calls.commitments
    commit_window_closed = round_calls.commit_window_closed
    ledger_config = round_calls.ledger_config
    finalize = round_calls.finalize
    settle = round_calls.settle
    fail_round = round_calls.fail_round
    round_info = round_calls.round_info
    quorum_reached = round_calls.quorum_reached
    credit_balance = round_calls.credit_balance
    credit_supply = round_calls.credit_supply
    set_transfers_enabled = round_calls.set_transfers_enabled

    # --- a round's votes, rejections and alerts (ledger.vote_calls)

    chain_head = vote_calls.chain_head
    attest = vote_calls.attest
    attest_mask = vote_calls.attest_mask
    strike_vote = vote_calls.strike_vote
    pending_departures = vote_calls.pending_departures
    strike_departures = vote_calls.strike_departures
    votes = vote_calls.votes
    committers = vote_calls.committers
    attestation = vote_calls.attestation
    record_rejections = vote_calls.record_rejections
    record_alert = vote_calls.record_alert
    rejection_count = vote_calls.rejection_count
    dissent_count = vote_calls.dissent_count
    votes_for = vote_calls.votes_for
