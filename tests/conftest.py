"""Shared pytest fixtures.

Ledger fixtures (prefixed ``ledger_``): an embedded chain with the contracts deployed, built
once per session and handed to each test as an independent fork (a copy of the chain's
key-value store), so tests never see each other's transactions. Helpers: ledger_support.py.
"""

from __future__ import annotations

import pytest
from ledger_support import LedgerSetup, register_all, setup_on
from web3 import Web3

from ledger import Deployment, connect, deploy, dev_account, fork_embedded


@pytest.fixture(scope="session")
def _ledger_deployed_base() -> tuple[Web3, Deployment]:
    w3 = connect()
    return w3, deploy(w3, dev_account(w3, 0))


@pytest.fixture(scope="session")
def _ledger_consortium_base(_ledger_deployed_base: tuple[Web3, Deployment]) -> tuple[Web3, Deployment]:
    w3, deployment = _ledger_deployed_base
    fork = fork_embedded(w3)
    register_all(setup_on(fork, deployment))
    return fork, deployment


@pytest.fixture
def ledger_deployed(_ledger_deployed_base: tuple[Web3, Deployment]) -> LedgerSetup:
    """Contracts deployed on a fresh embedded chain; nobody registered."""
    w3, deployment = _ledger_deployed_base
    return setup_on(fork_embedded(w3), deployment)


@pytest.fixture
def ledger_consortium(_ledger_consortium_base: tuple[Web3, Deployment]) -> LedgerSetup:
    """Contracts deployed on a fresh embedded chain with four Active hospitals, no round yet."""
    w3, deployment = _ledger_consortium_base
    return setup_on(fork_embedded(w3), deployment)
