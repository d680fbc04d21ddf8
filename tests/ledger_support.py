"""Helpers shared by the ledger tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD

from ledger import ContractRevert, Deployment, LedgerClient, dev_account, institution_id
from ledger.compile import error_decoder
from ledger.tx import send

HOSPITALS = ("Charite Berlin", "Karolinska Stockholm", "AP-HP Paris", "Rigshospitalet Copenhagen")


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
    for i, hospital in enumerate(setup.hospitals):
        seal, sign = keys(i)
        hospital.register(institution_id(HOSPITALS[i]), peer_id(i), seal, sign)
        setup.admin.admit(hospital.address)


def raw_send(client: LedgerClient, fn: ContractFunction) -> Any:
    """Send ``fn`` as ``client`` without the client's argument handling (e.g. unsorted lists)."""
    return send(client.w3, client.account, fn, decoder=error_decoder(), action=fn.fn_name)


def events(contract: Any, name: str, receipt: Any) -> list[dict[str, Any]]:
    """Decoded args of every ``name`` event of ``contract`` in ``receipt``."""
    return [
        dict(e["args"]) for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
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
