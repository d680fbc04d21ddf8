"""``LedgerClient``: one institution's view of, and actions on, the medmesh contracts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from .attestlog import Vote, VoteIndex
from .chain import sync_clock
from .compile import CONTRACT_NAMES, compile_contracts, error_decoder
from .deploy import Deployment
from .errors import ErrorDecoder, LedgerError
from .records import (
    CREDIT_SCHEMES,
    IDENTITY_STATUSES,
    REJECTION_REASONS,
    ROUND_STATUSES,
    SANCTIONS,
    Attestation,
    Commitment,
    Identity,
    PrivacyBudget,
    RoundInfo,
    accepted_mask,
    alert_body_hash,
    alert_kind,
    as_bytes32,
    epsilon_to_micros,
    micros_to_epsilon,
)
from .tx import call, send

__all__ = ["LedgerClient", "contracts_for"]

_ZERO32 = b"\x00" * 32
_ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


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


def _commitment(address: str, raw: Any) -> Commitment | None:
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


class LedgerClient:
    """Acts on the ledger as ``account``, a locally held key: every transaction is signed here
    and sent raw. Without an account the client is read-only. Transaction methods return the
    receipt and append the gas used to ``gas_used[method]``; a revert raises
    :class:`~ledger.errors.ContractRevert` with the decoded custom error, before anything is sent."""

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
        self._votes = VoteIndex(w3, self.round_ledger, deployment.start_block)

    @property
    def address(self) -> str:
        if self.account is None:
            raise LedgerError("this LedgerClient is read-only (no account)")
        return str(self.account.address)

    # ------------------------------------------------------------------ plumbing

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

    def _call(self, fn: ContractFunction) -> Any:
        with self._observed("call"):
            return call(fn, decoder=self._decoder)

    def _observed(self, op: str) -> ExitStack:
        stack = ExitStack()
        for observer in self.observers:
            stack.enter_context(observer(op))
        return stack

    # ------------------------------------------------------------------ registry

    def register(
        self,
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
            raise LedgerError(
                f"cohort must be a whole number of patients in 1..2^64-1, got {cohort!r}"
            )
        fn = self.registry.functions.register(
            as_bytes32(institution_id, "institution_id"),
            peer_id,
            as_bytes32(seal_key, "seal_key"),
            as_bytes32(sign_key, "sign_key"),
            int(cohort),
        )
        value = self.registry_config()["bond"] if bond is None else int(bond)
        return self._send("register", fn, value)

    def deposit_bond(self, amount: int) -> TxReceipt:
        """Add ``amount`` wei to this account's bond (Pending or Active)."""
        return self._send("deposit_bond", self.registry.functions.depositBond(), int(amount))

    def endorse(self, candidate: str) -> TxReceipt:
        """Endorse a Pending identity (Active members, once per candidate)."""
        return self._send(
            "endorse", self.registry.functions.endorse(Web3.to_checksum_address(candidate))
        )

    def admit(self, account: str) -> TxReceipt:
        """Admit a Pending identity that holds the bond: the admin during genesis, anyone once
        the candidate has a quorum of endorsements."""
        return self._send("admit", self.registry.functions.admit(Web3.to_checksum_address(account)))

    def vote_sanction(self, account: str, action: str) -> TxReceipt:
        """Vote ``action`` (``suspend``, ``reinstate`` or ``revoke``) about ``account``; the
        vote that reaches the quorum applies it. The first vote is the proposal."""
        if action not in SANCTIONS:
            raise LedgerError(f"sanction must be one of {', '.join(SANCTIONS)}, got {action!r}")
        fn = self.registry.functions.voteSanction(
            Web3.to_checksum_address(account), SANCTIONS.index(action)
        )
        return self._send(f"vote_{action}", fn)

    def suspend(self, account: str) -> TxReceipt:
        """Vote to suspend an Active member."""
        return self.vote_sanction(account, "suspend")

    def reinstate(self, account: str) -> TxReceipt:
        """Vote to reinstate a Suspended member."""
        return self.vote_sanction(account, "reinstate")

    def revoke(self, account: str) -> TxReceipt:
        """Vote to revoke a member for good."""
        return self.vote_sanction(account, "revoke")

    def rotate_keys(self, peer_id: str, seal_key: bytes, sign_key: bytes) -> TxReceipt:
        """Replace this account's peer ID and public keys."""
        fn = self.registry.functions.rotateKeys(
            peer_id, as_bytes32(seal_key, "seal_key"), as_bytes32(sign_key, "sign_key")
        )
        return self._send("rotate_keys", fn)

    def exit(self) -> TxReceipt:
        """Leave the consortium; the bond can be withdrawn after the cooldown."""
        return self._send("exit", self.registry.functions.exit())

    def withdraw_bond(self) -> TxReceipt:
        """Take the bond back, after the cooldown that follows an exit (or a revocation without
        forfeiture)."""
        return self._send("withdraw_bond", self.registry.functions.withdrawBond())

    def sweep_forfeited(self, to: str) -> TxReceipt:
        """Send the forfeited bonds to ``to`` (admin only)."""
        return self._send(
            "sweep_forfeited", self.registry.functions.sweepForfeited(Web3.to_checksum_address(to))
        )

    def registry_config(self) -> dict[str, Any]:
        """The registry's settings (genesis seats, member quorum, bond, cooldown, forfeiture)."""
        raw = self._call(self.registry.functions.config())
        return {
            "genesis_seats": int(raw.genesisSeats),
            "member_quorum": (int(raw.quorumNumerator), int(raw.quorumDenominator)),
            "bond": int(raw.bond),
            "exit_cooldown": int(raw.exitCooldown),
            "forfeit_on_revoke": bool(raw.forfeitOnRevoke),
        }

    def genesis_open(self) -> bool:
        """Whether the admin still admits alone."""
        return bool(self._call(self.registry.functions.genesisOpen()))

    def endorsements_needed(self) -> int:
        """Endorsements an admission needs now."""
        return int(self._call(self.registry.functions.endorsementsNeeded()))

    def endorsements(self, candidate: str) -> int:
        return int(
            self._call(self.registry.functions.endorsements(Web3.to_checksum_address(candidate)))
        )

    def sanction_votes(self, account: str, action: str) -> int:
        """Votes for ``action`` about ``account`` in its current status."""
        fn = self.registry.functions.sanctionVotes(
            Web3.to_checksum_address(account), SANCTIONS.index(action)
        )
        return int(self._call(fn))

    def identity(self, account: str) -> Identity | None:
        raw = self._call(self.registry.functions.identity(Web3.to_checksum_address(account)))
        return None if raw.status == 0 else _identity(raw)

    def identities(self) -> list[Identity]:
        """Every registered identity, in registration order (revoked ones included)."""
        return [_identity(raw) for raw in self._call(self.registry.functions.identities())]

    def identity_of_peer(self, peer_id: str) -> Identity | None:
        """The identity that holds ``peer_id`` now (None if none does, e.g. after a rotation)."""
        account = self._call(self.registry.functions.accountOfPeer(peer_id))
        if account == _ZERO_ADDRESS:
            return None
        ident = self.identity(account)
        return ident if ident is not None and ident.peer_id == peer_id else None

    def cohort_of(self, account: str) -> int:
        """The cohort ``account`` declared at registration (0 without an identity)."""
        return int(self._call(self.registry.functions.cohortOf(Web3.to_checksum_address(account))))

    def is_active(self, account: str) -> bool:
        return bool(self._call(self.registry.functions.isActive(Web3.to_checksum_address(account))))

    def active_count(self) -> int:
        return int(self._call(self.registry.functions.activeCount()))

    # ------------------------------------------------------------------ rounds

    def open_round(self) -> int:
        """Open the next round and return its number (receipt in ``last_receipt``)."""
        self.sync_clock()  # else an idle embedded chain dates the windows from its last block
        receipt = self._send("open_round", self.round_ledger.functions.openRound())
        events = self.round_ledger.events.RoundOpened().process_receipt(receipt, errors=DISCARD)
        if len(events) != 1:
            raise LedgerError("open_round: the receipt carries no RoundOpened event")
        return int(events[0]["args"]["round"])

    def current_round(self) -> int:
        """The latest round number (0 before any round)."""
        return int(self._call(self.round_ledger.functions.currentRound()))

    def declare_privacy_budget(self, budget: PrivacyBudget) -> TxReceipt:
        """Record this member's campaign privacy budget on chain: once, before its first commit."""
        return self._send(
            "declare_privacy_budget",
            self.round_ledger.functions.declarePrivacyBudget(budget.encode()),
        )

    def privacy_budget(self, account: str) -> PrivacyBudget | None:
        """The budget ``account`` declared (None if none yet)."""
        raw = self._call(
            self.round_ledger.functions.privacyBudget(Web3.to_checksum_address(account))
        )
        return PrivacyBudget.decode(tuple(raw))

    def ensure_privacy_budget(self, budget: PrivacyBudget) -> None:
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

    def epsilon_spent(self, account: str) -> float:
        """The cumulative epsilon ``account`` reported in its latest commitment (0.0 before any)."""
        return micros_to_epsilon(
            int(
                self._call(
                    self.round_ledger.functions.epsilonSpent(Web3.to_checksum_address(account))
                )
            )
        )

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
        return _commitment(
            address, self._call(self.round_ledger.functions.commitment(int(round), address))
        )

    def commitments(self, round: int) -> dict[str, Commitment]:
        """Commitments of ``round`` by account, in commit order (one call)."""
        accounts, raws = self._call(self.round_ledger.functions.commitmentsOf(int(round)))
        found = (
            _commitment(Web3.to_checksum_address(a), raw)
            for a, raw in zip(accounts, raws, strict=False)
        )
        return {c.address: c for c in found if c is not None}

    def commit_window_closed(self, round: int) -> bool:
        """Whether no commitment to ``round`` can land any more: the chain's latest block is
        past the round's commit deadline, and every later block's timestamp is at least its own
        (the embedded chain's clock is first brought up to wall-clock time)."""
        self.sync_clock()
        latest = int(self.w3.eth.get_block("latest")["timestamp"])
        return latest > self.round_info(round).commit_deadline

    def chain_head(self) -> tuple[int, bytes]:
        """The head this client attests it saw: the number and hash of the latest block's
        parent, the newest block whose hash the contract can check (``blockhash`` knows only
        blocks before the one executing, and a node simulates a call in the latest block)."""
        block = self.w3.eth.get_block("latest")
        number = int(block["number"])
        if number == 0:
            raise LedgerError("the chain has no block before its genesis to attest as seen")
        return number - 1, bytes(block["parentHash"])

    def attest(
        self,
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
        self, round: int, aggregate_hash: bytes, mask: int, seen: tuple[int, bytes] | None = None
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

    def strike_vote(self, round: int, account: str) -> TxReceipt:
        """Strike the vote of ``account``, which left the Active set after ``round`` opened."""
        fn = self.round_ledger.functions.strikeVote(int(round), Web3.to_checksum_address(account))
        return self._send("strike_vote", fn)

    def pending_departures(self, round: int) -> int:
        """Departures since ``round`` opened not struck yet (``finalize`` counts each as a lost vote)."""
        return int(self._call(self.round_ledger.functions.pendingDepartures(int(round))))

    def strike_departures(self, round: int) -> list[str]:
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

    def votes(self, round: int) -> dict[str, Vote]:
        """Every vote cast in ``round`` so far, by member (lower-case), from its events
        (:class:`~ledger.attestlog.VoteIndex`: only the blocks since the last read are scanned)."""
        return self._votes.votes(round)

    def committers(self, round: int) -> list[str]:
        """The accounts that committed in ``round``, in commit order (a mask's bit order)."""
        return [
            Web3.to_checksum_address(a)
            for a in self._call(self.round_ledger.functions.committers(int(round)))
        ]

    def attestation(self, round: int, account: str) -> Attestation | None:
        """``account``'s vote in ``round``; its aggregate hash is read from its event."""
        address = Web3.to_checksum_address(account)
        raw = self._call(self.round_ledger.functions.attestation(int(round), address))
        if bytes(raw.voteKey) == _ZERO32:
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

    def record_rejections(self, round: int, reasons: dict[str, int | str]) -> TxReceipt:
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

    def record_alert(self, round: int, kind: str, body: dict) -> tuple[TxReceipt, bytes]:
        """Record, signed by this member, that its monitoring raised an alert of ``kind`` about
        ``round``; the chain keeps only the hash of ``body`` (returned with the receipt)."""
        body_hash = alert_body_hash(body)
        fn = self.round_ledger.functions.recordAlert(int(round), alert_kind(kind), body_hash)
        return self._send("record_alert", fn), body_hash

    def rejection_count(self, round: int, account: str) -> int:
        fn = self.round_ledger.functions.rejectionCount(
            int(round), Web3.to_checksum_address(account)
        )
        return int(self._call(fn))

    def dissent_count(self, round: int) -> int:
        """Attestations of ``round`` that differ from the leading (finalized) pair."""
        return int(self._call(self.round_ledger.functions.dissentCount(int(round))))

    def ledger_config(self) -> dict[str, Any]:
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

    def votes_for(self, round: int, vote_key: bytes) -> int:
        return int(
            self._call(
                self.round_ledger.functions.votesFor(int(round), as_bytes32(vote_key, "vote_key"))
            )
        )

    def finalize(self, round: int, *, settle: bool = True) -> TxReceipt:
        """Finalize ``round`` once a vote pair has quorum over the round's members and, with
        ``settle``, mint its credits in a second transaction (its receipt in ``last_receipt``).
        Returns the finalize receipt."""
        receipt = self._send("finalize", self.round_ledger.functions.finalize(int(round)))
        if settle:
            self.settle(round)
        return receipt

    def settle(self, round: int) -> TxReceipt:
        """Mint the credits (and apply the slashes) of finalized ``round``, once."""
        return self._send("settle", self.round_ledger.functions.settle(int(round)))

    def sync_clock(self) -> None:
        """See :func:`ledger.chain.sync_clock` (embedded chain only; a no-op elsewhere)."""
        sync_clock(self.w3)

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
            member_count=int(raw.memberCount),
            membership_epoch=int(raw.membershipEpoch),
            settled=bool(raw.settled),
            leader=None if raw.leader == _ZERO_ADDRESS else Web3.to_checksum_address(raw.leader),
        )

    def quorum_reached(self, round: int) -> bool:
        return bool(self._call(self.round_ledger.functions.quorumReached(int(round))))

    # ------------------------------------------------------------------ credits

    def credit_balance(self, address: str) -> int:
        """Credits held by ``address``, in the smallest unit (18 decimals)."""
        return int(self._call(self.credit.functions.balanceOf(Web3.to_checksum_address(address))))

    def credit_supply(self) -> int:
        return int(self._call(self.credit.functions.totalSupply()))

    def set_transfers_enabled(self, enabled: bool) -> TxReceipt:
        """Switch credit transfers on or off (admin only)."""
        return self._send(
            "set_transfers_enabled", self.credit.functions.setTransfersEnabled(bool(enabled))
        )
