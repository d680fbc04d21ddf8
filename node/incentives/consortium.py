"""The simulated hospitals' consortium on a real chain: the medmesh contracts deployed, one
registered account per hospital, rounds committed, attested and finalized on the RoundLedger,
and one IncentiveDistributor (with a token of its own) per compared scheme, listed in the
deployment as ``IncentiveDistributor[<scheme>]`` so that ``medmesh audit`` re-checks its awards.

The RoundLedger is deployed with a zero ``creditPerRound``: every credit comes from a
distributor, so each scheme's token holds exactly what that scheme paid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from eth_account import Account
from eth_utils import keccak
from web3 import Web3

from ledger import (
    AwardReceipt,
    DistributorClient,
    LedgerClient,
    advance_time,
    deploy,
    deploy_distributor,
    dev_account,
    fund,
    institution_id,
)
from ledger.awards import with_distributor
from ledger.records import PrivacyBudget

__all__ = ["SimulatedConsortium"]

_WINDOW = 3600
_FUNDING = 10**18  # 1 ether per hospital: its bond and its gas
_NO_DP = PrivacyBudget(
    epsilon=0.0, delta=0.0, accountant="none", noise_multiplier=0.0, clip_norm=0.0
)


class SimulatedConsortium:
    """``names`` are the hospitals (registered in that order); ``schemes`` the distributors."""

    def __init__(
        self,
        w3: Web3,
        names: list[str],
        schemes: list[str],
        budget_per_round: int,
        *,
        cohorts: dict[str, int],
        seed: int = 0,
        step: Callable[[], None] = lambda: None,
    ) -> None:
        self.w3 = w3
        admin_key = dev_account(w3, 0)
        self.deployment = deploy(
            w3,
            admin_key,
            credit_per_round=0,
            genesis_seats=len(names),
            commit_window=_WINDOW,
            attest_window=_WINDOW,
        )
        self.admin = LedgerClient(w3, self.deployment, admin_key)
        self.members: dict[str, LedgerClient] = {}
        for name in names:
            account = Account.from_key(keccak(text=f"medmesh-incentives/{seed}/{name}"))
            fund(w3, account.address, _FUNDING)
            client = LedgerClient(w3, self.deployment, account)
            digest = hashlib.sha256(name.encode()).digest()
            client.register(
                institution_id(f"{name} (seed {seed})"),
                "12D3KooW" + digest.hex()[:44],
                hashlib.sha256(b"seal" + digest).digest(),
                hashlib.sha256(b"sign" + digest).digest(),
                cohorts[name],
            )
            self.admin.admit(account.address)
            client.declare_privacy_budget(_NO_DP)  # the simulated updates are not DP-trained
            self.members[name] = client
            step()
        self.distributors: dict[str, DistributorClient] = {}
        self._member_clients: dict[tuple[str, str], DistributorClient] = {}
        for scheme in schemes:
            addresses = deploy_distributor(
                w3,
                admin_key,
                self.deployment,
                budget_per_round=budget_per_round,
                max_penalty_per_round=budget_per_round,
            )
            self.deployment = with_distributor(
                self.deployment, addresses["IncentiveDistributor"], scheme
            )
            self.distributors[scheme] = DistributorClient(w3, addresses, admin_key)
            step()

    def address(self, name: str) -> str:
        return self.members[name].address

    def run_round(
        self,
        commits: dict[str, tuple[bytes, int]],
        accepted: list[str],
        aggregate_hash: bytes,
        rejected: dict[str, str] | None = None,
    ) -> int:
        """Open a round; each committer commits its (update hash, samples), attests
        (``aggregate_hash``, ``accepted``) and the round is finalized. ``rejected`` (name ->
        a reason of :data:`ledger.records.REJECTION_REASONS`) is put on record by every accepted
        committer first. A round whose committers cannot reach the attestation quorum fails
        once its deadline passes. Returns the round number; see :meth:`finalized`."""
        opener = self.members[next(iter(commits))]
        rnd = opener.open_round()
        for name, (update_hash, samples) in commits.items():
            self.members[name].commit_update(rnd, update_hash, samples, 0.0, 0)
        if rejected:
            for name in accepted:
                self.members[name].record_rejections(
                    rnd, {self.address(n): r for n, r in rejected.items()}
                )
        num, den = self.admin.ledger_config()["quorum"]
        if len(commits) * den > self.admin.active_count() * num and accepted:
            voters = [self.address(a) for a in accepted]
            for name in commits:
                self.members[name].attest(rnd, aggregate_hash, voters)
            opener.finalize(rnd)
        else:
            advance_time(self.w3, 2 * _WINDOW + 1)
            opener.fail_round(rnd)
        return rnd

    def finalized(self, rnd: int) -> bool:
        return self.admin.round_info(rnd).status == "finalized"

    def award(
        self,
        scheme: str,
        rnd: int,
        grants: dict[str, int],
        penalties: dict[str, int],
        endorsers: list[str] | None = None,
    ) -> AwardReceipt:
        """Pay ``grants`` and burn ``penalties`` (hospital name -> credits) through ``scheme``'s
        distributor: sent by the admin, or, given ``endorsers`` (hospital names, in order), endorsed
        by the first of them until more than the quorum fraction of the members did, then sent
        by the first endorser."""
        by_address = (
            {self.address(n): v for n, v in grants.items()},
            {self.address(n): v for n, v in penalties.items()},
        )
        if endorsers is None:
            return self.distributors[scheme].award(rnd, scheme, *by_address)
        num, den = self.admin.ledger_config()["quorum"]
        needed = self.admin.active_count() * num // den + 1
        for name in endorsers[:needed]:
            self._member_distributor(name, scheme).endorse(rnd, scheme, *by_address)
        return self._member_distributor(endorsers[0], scheme).award_by_quorum(
            rnd, scheme, *by_address
        )

    def _member_distributor(self, name: str, scheme: str) -> DistributorClient:
        key = (name, scheme)
        if key not in self._member_clients:
            addresses = {
                "IncentiveDistributor": self.distributors[scheme].distributor.address,
                "ContributionCredit": self.distributors[scheme].credit.address,
            }
            self._member_clients[key] = DistributorClient(
                self.w3, addresses, self.members[name].account
            )
        return self._member_clients[key]

    def balances(self, scheme: str) -> dict[str, int]:
        return {
            name: self.distributors[scheme].balance(client.address)
            for name, client in self.members.items()
        }

    def addresses(self) -> dict[str, str]:
        out = dict(self.deployment.addresses)  # the distributors are listed there
        for scheme, d in self.distributors.items():
            out[f"ContributionCredit[{scheme}]"] = d.credit.address
        return out
