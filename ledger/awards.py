"""Credits awarded by an off-chain incentive scheme: deploy an ``IncentiveDistributor`` with a
token of its own, and send a round's award through it.

The distributor mints only for rounds the :class:`~ledger.client.LedgerClient`'s RoundLedger
finalized, once per (round, scheme), to Active members of the round's accepted set, within a
per-round budget; it burns penalties only from members the round left out. See
``contracts/IncentiveDistributor.sol``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from .compile import compile_contracts, error_decoder
from .deploy import Deployment, _deploy_one
from .errors import LedgerError
from .records import sort_accounts
from .tx import call, send

__all__ = [
    "DISTRIBUTOR",
    "AwardReceipt",
    "DistributorClient",
    "artifact_name",
    "award_hash",
    "deploy_distributor",
    "distributors",
    "scheme_id",
    "scheme_name",
    "with_distributor",
]

#: A deployment lists its distributors as ``IncentiveDistributor`` or ``IncentiveDistributor[label]``
#: (one per scheme in the simulator), so that ``medmesh audit`` finds and re-checks them.
DISTRIBUTOR = "IncentiveDistributor"


def artifact_name(key: str) -> str:
    """The contract behind a deployment's address key: ``IncentiveDistributor[x]`` -> ``IncentiveDistributor``."""
    return key.split("[", 1)[0]


def distributors(deployment: Deployment) -> dict[str, str]:
    """The deployment's IncentiveDistributors: address key -> address."""
    return {k: a for k, a in deployment.addresses.items() if artifact_name(k) == DISTRIBUTOR}


def with_distributor(deployment: Deployment, address: str, label: str | None = None) -> Deployment:
    """``deployment`` with the distributor at ``address`` listed (as ``IncentiveDistributor[label]``)."""
    if label is not None and (not label or "[" in label or "]" in label):
        raise LedgerError(f"a distributor label must be non-empty, without brackets: {label!r}")
    key = DISTRIBUTOR if label is None else f"{DISTRIBUTOR}[{label}]"
    if key in deployment.addresses:
        raise LedgerError(f"the deployment already lists {key}")
    return replace(
        deployment, addresses={**deployment.addresses, key: Web3.to_checksum_address(address)}
    )


def scheme_id(name: str) -> bytes:
    """A scheme's on-chain name: its ASCII bytes, right-padded to 32 (e.g. ``"shapley-gtg"``)."""
    raw = name.encode("ascii", errors="strict") if name.isascii() else b""
    if not raw or len(raw) > 32 or not name.isprintable():
        raise LedgerError(f"a scheme name must be 1-32 printable ASCII characters, got {name!r}")
    return raw.ljust(32, b"\x00")


def scheme_name(scheme: bytes | str) -> str:
    """The inverse of :func:`scheme_id` (``bytes32`` or its ``0x`` hex); non-ASCII bytes as hex."""
    raw = bytes.fromhex(scheme[2:]) if isinstance(scheme, str) else bytes(scheme)
    name = raw.rstrip(b"\x00")
    return (
        name.decode("ascii")
        if name.isascii() and name.decode("ascii").isprintable()
        else "0x" + raw.hex()
    )


@dataclass(frozen=True)
class AwardReceipt:
    """What one award did on chain: credits minted and burned per account, and the gas."""

    round: int
    scheme: str
    minted: dict[str, int]
    burned: dict[str, int]
    gas_used: int


def deploy_distributor(
    w3: Web3,
    admin: LocalAccount,
    deployment: Deployment,
    *,
    budget_per_round: int,
    max_penalty_per_round: int = 0,
) -> dict[str, str]:
    """Deploy a ContributionCredit token and an IncentiveDistributor (its minter) over
    ``deployment``'s registry and round ledger, from the consortium ``admin``. All awards of one
    round mint at most ``budget_per_round`` and burn at most ``max_penalty_per_round`` from any
    one member (0, the default: no penalties). Returns
    ``{"ContributionCredit": ..., "IncentiveDistributor": ...}``."""
    if int(budget_per_round) <= 0:
        raise LedgerError(f"budget_per_round must be > 0, got {budget_per_round}")
    if not 0 <= int(max_penalty_per_round) <= int(budget_per_round):
        raise LedgerError(
            f"max_penalty_per_round must be in 0..budget_per_round ({budget_per_round}), "
            f"got {max_penalty_per_round}"
        )
    artifacts = compile_contracts()
    decoder = error_decoder(artifacts)
    credit = _deploy_one(w3, admin, "ContributionCredit", artifacts, decoder, admin.address)
    distributor = _deploy_one(
        w3,
        admin,
        "IncentiveDistributor",
        artifacts,
        decoder,
        admin.address,
        deployment.addresses["HospitalRegistry"],
        deployment.addresses["RoundLedger"],
        credit,
        int(budget_per_round),
        int(max_penalty_per_round),
    )
    token = w3.eth.contract(address=credit, abi=artifacts["ContributionCredit"]["abi"])
    send(w3, admin, token.functions.setMinter(distributor), decoder=decoder, action="setMinter")
    return {"ContributionCredit": credit, "IncentiveDistributor": distributor}


class DistributorClient:
    """Acts on one IncentiveDistributor and reads its token; ``account`` signs (None: read-only)."""

    def __init__(
        self, w3: Web3, addresses: Mapping[str, str], account: LocalAccount | None = None
    ) -> None:
        artifacts = compile_contracts()
        self.w3 = w3
        self.account = account
        self._decoder = error_decoder(artifacts)
        try:
            self.distributor: Contract = w3.eth.contract(
                address=Web3.to_checksum_address(addresses["IncentiveDistributor"]),
                abi=artifacts["IncentiveDistributor"]["abi"],
                decode_tuples=True,
            )
            self.credit: Contract = w3.eth.contract(
                address=Web3.to_checksum_address(addresses["ContributionCredit"]),
                abi=artifacts["ContributionCredit"]["abi"],
                decode_tuples=True,
            )
        except KeyError as exc:
            raise LedgerError(f"distributor addresses lack {exc.args[0]}") from None
        self.gas_used: dict[str, list[int]] = defaultdict(list)
        self.last_receipt: TxReceipt | None = None

    def award(
        self,
        round: int,
        scheme: str,
        grants: Mapping[str, int],
        penalties: Mapping[str, int] | None = None,
    ) -> AwardReceipt:
        """Mint ``grants`` (account -> credits) and burn ``penalties`` for ``round`` by
        ``scheme``; zero amounts are left out. Admin only."""
        return self._award("award", round, scheme, grants, penalties)

    def endorse(
        self,
        round: int,
        scheme: str,
        grants: Mapping[str, int],
        penalties: Mapping[str, int] | None = None,
    ) -> TxReceipt:
        """Endorse, as an Active member, the award of ``round`` by ``scheme`` with these grants
        and penalties (its :func:`award_hash`)."""
        digest = award_hash(round, scheme, grants, penalties or {})
        fn = self.distributor.functions.endorseAward(int(round), scheme_id(scheme), digest)
        return self._send("endorse", fn)

    def award_by_quorum(
        self,
        round: int,
        scheme: str,
        grants: Mapping[str, int],
        penalties: Mapping[str, int] | None = None,
    ) -> AwardReceipt:
        """Make the award a member quorum endorsed (anyone may send it)."""
        return self._award("awardByQuorum", round, scheme, grants, penalties)

    def endorsements(self, round: int, scheme: str, digest: bytes) -> int:
        return int(
            call(
                self.distributor.functions.endorsements(int(round), scheme_id(scheme), digest),
                decoder=self._decoder,
            )
        )

    def _send(self, action: str, fn: Any) -> TxReceipt:
        if self.account is None:
            raise LedgerError(f"{action}: this DistributorClient is read-only (no account)")
        receipt = send(self.w3, self.account, fn, decoder=self._decoder, action=action)
        self.gas_used[action].append(int(receipt["gasUsed"]))
        self.last_receipt = receipt
        return receipt

    def _award(
        self,
        function: str,
        round: int,
        scheme: str,
        grants: Mapping[str, int],
        penalties: Mapping[str, int] | None,
    ) -> AwardReceipt:
        entries = [_entries(grants, "grant"), _entries(penalties or {}, "penalty")]
        fn = getattr(self.distributor.functions, function)(int(round), scheme_id(scheme), *entries)
        receipt = self._send("award", fn)
        return AwardReceipt(
            round=int(round),
            scheme=scheme,
            minted=_by_account(self.distributor, "CreditAwarded", receipt, "amount"),
            burned=_by_account(self.distributor, "ContributorPenalized", receipt, "burned"),
            gas_used=int(receipt["gasUsed"]),
        )

    def awarded(self, round: int, scheme: str) -> bool:
        return bool(
            call(
                self.distributor.functions.awarded(int(round), scheme_id(scheme)),
                decoder=self._decoder,
            )
        )

    def awarded_in_round(self, round: int) -> int:
        return int(
            call(self.distributor.functions.awardedInRound(int(round)), decoder=self._decoder)
        )

    def budget_per_round(self) -> int:
        return int(call(self.distributor.functions.budgetPerRound(), decoder=self._decoder))

    def max_penalty_per_round(self) -> int:
        """Most credits all awards of one round may burn from one member."""
        return int(call(self.distributor.functions.maxPenaltyPerRound(), decoder=self._decoder))

    def penalized_in_round(self, round: int, account: str) -> int:
        """Penalties asked from ``account`` for ``round`` so far, all schemes together."""
        fn = self.distributor.functions.penalizedInRound(
            int(round), Web3.to_checksum_address(account)
        )
        return int(call(fn, decoder=self._decoder))

    def balance(self, account: str) -> int:
        """Credits ``account`` holds in this distributor's token (smallest unit)."""
        fn = self.credit.functions.balanceOf(Web3.to_checksum_address(account))
        return int(call(fn, decoder=self._decoder))

    def supply(self) -> int:
        return int(call(self.credit.functions.totalSupply(), decoder=self._decoder))


def award_hash(
    round: int, scheme: str, grants: Mapping[str, int], penalties: Mapping[str, int]
) -> bytes:
    """What members endorse: ``keccak256(abi.encode(round, scheme, grants, penalties))``, the
    entries ``(account, amount)`` ascending by account without zero amounts, as sent."""
    entries = [_entries(grants, "grant"), _entries(penalties, "penalty")]
    return keccak(
        abi_encode(
            ["uint256", "bytes32", "(address,uint256)[]", "(address,uint256)[]"],
            [int(round), scheme_id(scheme), *entries],
        )
    )


def _entries(amounts: Mapping[str, int], what: str) -> list[tuple[str, int]]:
    for account, amount in amounts.items():
        if int(amount) < 0:
            raise LedgerError(f"{what} for {account} is negative: {amount}")
    kept: dict[str, int] = {
        Web3.to_checksum_address(a): int(v) for a, v in amounts.items() if int(v) > 0
    }
    return [(a, kept[a]) for a in sort_accounts(list(kept))]


def _by_account(contract: Contract, event: str, receipt: TxReceipt, field: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for log in getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD):
        args: Any = log["args"]
        found[Web3.to_checksum_address(args["account"])] = int(args[field])
    return found
