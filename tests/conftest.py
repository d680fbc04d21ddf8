"""Shared pytest fixtures.

Ledger fixtures (prefixed ``ledger_``) run on one of two backends, named by ``ledger_backend``:

``embedded``
    the in-process eth-tester chain with the contracts deployed, built once per session and
    handed to each test as an independent fork (a copy of the chain's key-value store);
``anvil``
    one real anvil node per session (node_modules/.bin/anvil) with the contracts deployed
    once; each test runs from an ``evm_snapshot`` and its changes are undone with
    ``evm_revert`` in teardown (a snapshot is consumed by its revert, so a fresh one is taken).

Either way tests never see each other's transactions. A test module that sets
``LEDGER_BACKENDS = ("embedded", "anvil")`` runs each of its ledger tests on both (the
parameter is session-scoped, so pytest groups the tests by backend and starts anvil once);
other modules get ``embedded`` only. Helpers: ledger_support.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from ledger_support import (
    LedgerSetup,
    RichSetup,
    register_all,
    rich_anvil_accounts,
    rich_embedded_chain,
    setup_on,
)
from web3 import Web3

from ledger import Anvil, Deployment, LedgerError, connect, deploy, dev_account, fork_embedded

LEDGER_BACKEND_NAMES = ("embedded", "anvil")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backends = getattr(metafunc.module, "LEDGER_BACKENDS", None)
    if backends and "ledger_backend" in metafunc.fixturenames:
        unknown = set(backends) - set(LEDGER_BACKEND_NAMES)
        assert not unknown, f"unknown ledger backends {unknown}"
        metafunc.parametrize("ledger_backend", list(backends), indirect=True, scope="session")


@pytest.fixture(scope="session")
def ledger_backend(request: pytest.FixtureRequest) -> str:
    """``embedded`` or ``anvil`` (see the module docstring); ``embedded`` unless parametrized."""
    return str(getattr(request, "param", "embedded"))


# --------------------------------------------------------------------------- embedded


@pytest.fixture(scope="session")
def _ledger_deployed_base() -> tuple[Web3, Deployment]:
    w3 = connect()
    return w3, deploy(w3, dev_account(w3, 0))


@pytest.fixture(scope="session")
def _ledger_consortium_base(
    _ledger_deployed_base: tuple[Web3, Deployment],
) -> tuple[Web3, Deployment]:
    w3, deployment = _ledger_deployed_base
    fork = fork_embedded(w3)
    register_all(setup_on(fork, deployment))
    return fork, deployment


# --------------------------------------------------------------------------- anvil


class AnvilLedger:
    """One anvil node with two deployments: ``deployed`` (nobody registered) and
    ``consortium`` (four Active hospitals, no round yet), and the snapshot tests start from."""

    def __init__(self) -> None:
        self.node = Anvil()
        self.rpc = self.node.start()
        try:
            w3 = connect(self.rpc)
            self.deployed = deploy(w3, dev_account(w3, 0))
            self.consortium = deploy(w3, dev_account(w3, 0))
            register_all(setup_on(w3, self.consortium))
            self.snapshot = self._request(w3, "evm_snapshot")
        except BaseException:
            self.node.stop()
            raise

    @staticmethod
    def _request(w3: Web3, method: str, *params: object) -> object:
        response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        if "error" in response:
            raise LedgerError(f"anvil {method}: {response['error']}")
        return response["result"]

    @contextlib.contextmanager
    def isolated(self) -> Iterator[Web3]:
        """A connection to the node; everything done through it is reverted afterwards."""
        w3 = connect(self.rpc)
        try:
            yield w3
        finally:
            reverted = self._request(w3, "evm_revert", self.snapshot)
            if reverted is not True:
                raise LedgerError(f"anvil evm_revert({self.snapshot}) answered {reverted!r}")
            self.snapshot = self._request(w3, "evm_snapshot")


@pytest.fixture(scope="session")
def _ledger_anvil() -> Iterator[AnvilLedger]:
    chain = AnvilLedger()
    try:
        yield chain
    finally:
        chain.node.stop()


# --------------------------------------------------------------------------- the fixtures


@pytest.fixture
def ledger_deployed(ledger_backend: str, request: pytest.FixtureRequest) -> Iterator[LedgerSetup]:
    """Contracts deployed on a fresh chain of ``ledger_backend``; nobody registered."""
    if ledger_backend == "anvil":
        chain: AnvilLedger = request.getfixturevalue("_ledger_anvil")
        with chain.isolated() as w3:
            yield setup_on(w3, chain.deployed)
        return
    w3, deployment = request.getfixturevalue("_ledger_deployed_base")
    yield setup_on(fork_embedded(w3), deployment)


@pytest.fixture
def ledger_consortium(ledger_backend: str, request: pytest.FixtureRequest) -> Iterator[LedgerSetup]:
    """Contracts deployed on a fresh chain of ``ledger_backend`` with four Active hospitals,
    no round yet."""
    if ledger_backend == "anvil":
        chain: AnvilLedger = request.getfixturevalue("_ledger_anvil")
        with chain.isolated() as w3:
            yield setup_on(w3, chain.consortium)
        return
    w3, deployment = request.getfixturevalue("_ledger_consortium_base")
    yield setup_on(fork_embedded(w3), deployment)


@pytest.fixture
def ledger_rich(ledger_backend: str, request: pytest.FixtureRequest) -> Iterator[RichSetup]:
    """Like ``ledger_deployed`` plus accounts holding more than 2**128 wei each: on anvil
    funded with ``anvil_setBalance``, on the embedded chain by a fresh chain's genesis."""
    if ledger_backend == "anvil":
        chain: AnvilLedger = request.getfixturevalue("_ledger_anvil")
        with chain.isolated() as w3:
            yield RichSetup(setup_on(w3, chain.deployed), rich_anvil_accounts(w3))
        return
    w3, accounts = rich_embedded_chain()
    yield RichSetup(setup_on(w3, deploy(w3, dev_account(w3, 0))), accounts)
