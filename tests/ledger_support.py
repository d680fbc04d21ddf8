"""Helpers shared by the ledger tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import solcx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD

from ledger import ContractRevert, Deployment, LedgerClient, dev_account, institution_id
from ledger.compile import CACHE_DIR, SOLC_SETTINGS, SOLC_SHIM, error_decoder, solc_version
from ledger.embedded import embedded_web3
from ledger.records import PrivacyBudget
from ledger.tx import send

HOSPITALS = ("Charite Berlin", "Karolinska Stockholm", "AP-HP Paris", "Rigshospitalet Copenhagen")
#: The cohort each test hospital declares at registration (most samples a commit may claim).
COHORT = 10_000
#: The privacy budget each hospital of ``register_all`` declares: a DP campaign up to epsilon 10.
BUDGET = PrivacyBudget(
    epsilon=10.0, delta=1e-5, accountant="rdp", noise_multiplier=1.1, clip_norm=1.0
)


@dataclass
class LedgerSetup:
    """A chain with the medmesh contracts: ``admin`` is the consortium admin's client,
    ``hospitals`` four member clients, ``outsider`` a funded account that never registers."""

    w3: Web3
    deployment: Deployment
    admin: LedgerClient
    hospitals: list[LedgerClient]
    outsider: LedgerClient


def setup_on(w3: Web3, deployment: Deployment) -> LedgerSetup:
    return LedgerSetup(
        w3=w3,
        deployment=deployment,
        admin=LedgerClient(w3, deployment, dev_account(w3, 0)),
        hospitals=[LedgerClient(w3, deployment, dev_account(w3, i)) for i in range(1, 5)],
        outsider=LedgerClient(w3, deployment, dev_account(w3, 5)),
    )


def committee_chain(n: int, k: int) -> tuple[Web3, Deployment]:
    """A fresh embedded chain whose ledger draws a committee of ``k`` per round, with ``n``
    admitted members (dev accounts 1..n, privacy budgets declared)."""
    from ledger import connect, deploy
    from ledger.committee import set_committee_size

    w3 = connect()
    deployment = deploy(w3, dev_account(w3, 0), genesis_seats=n + 1)
    admin = LedgerClient(w3, deployment, dev_account(w3, 0))
    set_committee_size(admin, k)
    for i in range(n):
        h = LedgerClient(w3, deployment, dev_account(w3, i + 1))
        seal, sign = keys(i)
        h.register(institution_id(f"hospital {i}"), peer_id(i), seal, sign, COHORT)
        admin.admit(h.address)
        h.declare_privacy_budget(BUDGET)
    return w3, deployment


def committee_setup(w3: Web3, deployment: Deployment, n: int) -> LedgerSetup:
    """A fork of a :func:`committee_chain`: its ``n`` members, dev account 9 the outsider."""
    from ledger import fork_embedded

    fork = fork_embedded(w3)
    return LedgerSetup(
        w3=fork,
        deployment=deployment,
        admin=LedgerClient(fork, deployment, dev_account(fork, 0)),
        hospitals=[LedgerClient(fork, deployment, dev_account(fork, i + 1)) for i in range(n)],
        outsider=LedgerClient(fork, deployment, dev_account(fork, 9)),
    )


def open_with_beacon(s: LedgerSetup, reveal: int | None = None) -> int:
    """The next round: every member commits a beacon secret, the first opens it, the first
    ``reveal`` (default: all) reveal, and every member commits an update."""
    from ledger.beacon import commit_secret, reveal_secret

    round_ = s.hospitals[0].current_round() + 1
    for i, h in enumerate(s.hospitals):
        commit_secret(h, round_, keccak(text=f"secret-{round_}-{i}"))
    s.hospitals[0].open_round()
    for i, h in enumerate(s.hospitals[: len(s.hospitals) if reveal is None else reveal]):
        reveal_secret(h, round_, keccak(text=f"secret-{round_}-{i}"))
    for i, h in enumerate(s.hospitals):
        h.commit_update(round_, h32(f"update-{round_}-{i}"), 100, 0.5, 1)
    return round_


def peer_id(index: int) -> str:
    """A stable libp2p-shaped peer ID for hospital ``index``."""
    return "12D3KooW" + hashlib.sha256(f"peer-{index}".encode()).hexdigest()[:44]


def keys(index: int) -> tuple[bytes, bytes]:
    """Stable (seal key, sign key) stand-ins for hospital ``index``."""
    return hashlib.sha256(f"seal-{index}".encode()).digest(), hashlib.sha256(
        f"sign-{index}".encode()
    ).digest()


def h32(label: str) -> bytes:
    """A 32-byte hash standing for an update or an aggregate."""
    return hashlib.sha256(label.encode()).digest()


def register_all(setup: LedgerSetup) -> None:
    """Register and admit the four hospitals, each with :data:`COHORT` and :data:`BUDGET` declared."""
    for i, hospital in enumerate(setup.hospitals):
        seal, sign = keys(i)
        hospital.register(institution_id(HOSPITALS[i]), peer_id(i), seal, sign, COHORT)
        setup.admin.admit(hospital.address)
        hospital.declare_privacy_budget(BUDGET)


def register_candidate(s: LedgerSetup, bond: int | None = None) -> str:
    """Register ``s.outsider`` as a Pending candidate (hospital index 9); returns its address."""
    s.outsider.register(institution_id("Candidate Clinic"), peer_id(9), *keys(9), COHORT, bond=bond)
    return s.outsider.address


def commit_all(
    setup: LedgerSetup, rnd: int, samples: tuple[int, ...] = (100, 200, 300, 400)
) -> None:
    """Every hospital commits to ``rnd``: ``samples[i]`` samples, epsilon 0.5 + i, mode 1."""
    for i, (h, n) in enumerate(zip(setup.hospitals, samples, strict=False)):
        h.commit_update(rnd, h32(f"update-{rnd}-{i}"), n, 0.5 + i, 1)


def revoke_by_quorum(s: LedgerSetup, target: LedgerClient) -> None:
    """Revoke ``target`` by the votes of every other Active member (more than 2/3 of 4 is 3)."""
    voters = [h for h in s.hospitals if h.address != target.address and h.is_active(h.address)]
    for h in voters:
        if h.identity(target.address).status in ("active", "suspended"):
            h.revoke(target.address)


def block_time(setup: LedgerSetup, receipt: dict) -> int:
    """The timestamp of the block that holds ``receipt``."""
    return int(setup.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def by_address(addresses: list[str]) -> list[str]:
    """``addresses`` in the contracts' order: ascending as numbers."""
    return sorted(addresses, key=lambda a: int(a, 16))


def raw_send(client: LedgerClient, fn: ContractFunction) -> Any:
    """Send ``fn`` as ``client`` without the client's argument handling (e.g. unsorted lists)."""
    return send(client.w3, client.account, fn, decoder=error_decoder(), action=fn.fn_name)


def events(contract: Any, name: str, receipt: Any) -> list[dict[str, Any]]:
    """Decoded args of every ``name`` event of ``contract`` in ``receipt``."""
    return [
        dict(e["args"])
        for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    ]


@contextlib.contextmanager
def reverts(error_name: str, **error_args: Any) -> Iterator[Any]:
    """``with reverts("X", a=1):`` checks the exact custom error and its arguments."""
    with pytest.raises(ContractRevert) as info:
        yield info
    err = info.value
    assert err.error_name == error_name, str(err)
    assert err.error_args == error_args, str(err)
    assert "\n" not in str(err)


# --------------------------------------------------------------------------- test-only contracts

TEST_CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"


@functools.cache
def compile_test_contract(name: str) -> dict[str, str]:
    """``{"abi": [...], "bytecode": "0x..."}`` of ``tests/contracts/<name>.sol``, compiled like the
    project's contracts (py-solc-x driving scripts/solc, same settings); cached in build/."""
    source = (TEST_CONTRACTS_DIR / f"{name}.sol").read_text(encoding="utf-8")
    version = solc_version()
    digest = hashlib.sha256(
        json.dumps(
            {"source": source, "solc": version, "settings": SOLC_SETTINGS}, sort_keys=True
        ).encode()
    ).hexdigest()
    cache_file = CACHE_DIR / "tests" / f"{name}-{digest[:16]}.json"
    if cache_file.exists():
        return json.loads(cache_file.read_text(encoding="utf-8"))
    output = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {f"{name}.sol": {"content": source}},
            "settings": SOLC_SETTINGS,
        },
        solc_binary=str(SOLC_SHIM),
    )
    data = output["contracts"][f"{name}.sol"][name]
    result = {"abi": data["abi"], "bytecode": "0x" + data["evm"]["bytecode"]["object"]}
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    # written aside and renamed: a concurrent pytest-xdist worker never reads a torn file
    partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(result), encoding="utf-8")
    os.replace(partial, cache_file)
    return result


def deploy_test_contract(w3: Web3, account: LocalAccount, name: str) -> Contract:
    art = compile_test_contract(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = send(
        w3, account, {"data": factory.constructor().data_in_transaction}, action=f"deploy {name}"
    )
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


# --------------------------------------------------------------------------- rich accounts

#: More than a 128-bit deposit: what each account of :class:`RichSetup` holds.
RICH_WEI = 2**130
#: How many rich accounts :class:`RichSetup` offers (enough for a full round and one more).
RICH_ACCOUNTS = 240


@dataclass
class RichSetup:
    """``setup`` (contracts deployed, nobody registered) plus ``accounts``: funded keys that are
    not the dev accounts, each holding :data:`RICH_WEI` wei."""

    setup: LedgerSetup
    accounts: list[LocalAccount]


def rich_embedded_chain() -> tuple[Web3, list[LocalAccount]]:
    """A fresh embedded chain whose genesis gives eth-tester's keys 1..RICH_ACCOUNTS+10 (the
    dev accounts first) :data:`RICH_WEI` wei each; returns it and the non-dev accounts."""
    from eth_tester import EthereumTester, PyEVMBackend

    total = RICH_ACCOUNTS + 10
    state = dict(
        PyEVMBackend.generate_genesis_state(overrides={"balance": RICH_WEI}, num_accounts=total)
    )
    w3 = embedded_web3(EthereumTester(PyEVMBackend(genesis_state=state)))
    accounts = [Account.from_key((i + 1).to_bytes(32, "big")) for i in range(10, total)]
    return w3, accounts


def rich_anvil_accounts(w3: Web3) -> list[LocalAccount]:
    """Fresh keys given :data:`RICH_WEI` wei each with ``anvil_setBalance``."""
    accounts = [Account.from_key(keccak(text=f"medmesh-rich-{i}")) for i in range(RICH_ACCOUNTS)]
    for account in accounts:
        response = w3.provider.make_request("anvil_setBalance", [account.address, hex(RICH_WEI)])  # type: ignore[arg-type]
        assert "error" not in response, response
    return accounts
