"""ContributionCredit on the embedded chain and on anvil: ERC-20 metadata, minting and
slashing by the round ledger only, transfers as a consortium setting. Reverts by exact custom error and
arguments, events by exact arguments."""

from __future__ import annotations

from ledger_support import LedgerSetup, events, h32, raw_send, reverts

from ledger import LedgerClient, compile_contracts
from ledger.tx import send

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO = "0x0000000000000000000000000000000000000000"


def _commit_all(
    setup: LedgerSetup, rnd: int, samples: tuple[int, ...] = (100, 200, 300, 400)
) -> None:
    for i, (h, n) in enumerate(zip(setup.hospitals, samples, strict=False)):
        h.commit_update(rnd, h32(f"update-{rnd}-{i}"), n, 0.5 + i, 1)


def test_credit_metadata(ledger_deployed: LedgerSetup) -> None:
    f = ledger_deployed.admin.credit.functions
    assert (f.name().call(), f.symbol().call(), f.decimals().call(), f.totalSupply().call()) == (
        "medmesh Contribution Credit",
        "MMC",
        18,
        0,
    )
    assert f.minter().call() == ledger_deployed.deployment.addresses["RoundLedger"]
    assert f.transfersEnabled().call() is False


def test_only_the_minter_mints(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    f = s.admin.credit.functions
    with reverts("ContributionCreditUnauthorizedMinter", account=s.admin.address):
        raw_send(s.admin, f.mint(s.admin.address, 1))
    with reverts(
        "ContributionCreditMinterAlreadySet", minter=s.deployment.addresses["RoundLedger"]
    ):
        raw_send(s.admin, f.setMinter(s.admin.address))
    with reverts("ConsortiumAdminUnauthorizedAccount", account=s.outsider.address):
        raw_send(s.outsider, f.setMinter(s.outsider.address))


def test_set_minter_once_on_a_fresh_token(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    art = compile_contracts()["ContributionCredit"]
    factory = s.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = send(
        s.w3, s.admin.account, {"data": factory.constructor(s.admin.address).data_in_transaction}
    )
    token = s.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    with reverts("ContributionCreditInvalidMinter", minter=ZERO):
        raw_send(s.admin, token.functions.setMinter(ZERO))
    receipt = raw_send(s.admin, token.functions.setMinter(s.hospitals[0].address))
    assert events(token, "MinterSet", receipt) == [{"minter": s.hospitals[0].address}]
    receipt = raw_send(s.hospitals[0], token.functions.mint(s.hospitals[1].address, 5))
    assert events(token, "Transfer", receipt) == [
        {"from": ZERO, "to": s.hospitals[1].address, "value": 5}
    ]
    with reverts("ContributionCreditInvalidReceiver", receiver=ZERO):
        raw_send(s.hospitals[0], token.functions.mint(ZERO, 5))


def _earn(s: LedgerSetup) -> tuple[LedgerClient, LedgerClient]:
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd, samples=(1, 1))
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), [s.hospitals[0].address, s.hospitals[1].address])
    s.hospitals[0].finalize(rnd)
    return s.hospitals[0], s.hospitals[1]


def test_transfers_are_a_consortium_setting(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    holder, other = _earn(s)
    f = holder.credit.functions
    with reverts(
        "ContributionCreditTransfersDisabled", **{"from": holder.address, "to": other.address}
    ):
        raw_send(holder, f.transfer(other.address, 1))
    receipt = raw_send(holder, f.approve(other.address, 10))  # approvals are allowed
    assert events(holder.credit, "Approval", receipt) == [
        {"owner": holder.address, "spender": other.address, "value": 10}
    ]
    assert f.allowance(holder.address, other.address).call() == 10
    with reverts(
        "ContributionCreditTransfersDisabled", **{"from": holder.address, "to": other.address}
    ):
        raw_send(other, f.transferFrom(holder.address, other.address, 1))
    with reverts("ConsortiumAdminUnauthorizedAccount", account=holder.address):
        holder.set_transfers_enabled(True)
    with reverts("ContributionCreditTransfersAlreadySet", enabled=False):
        s.admin.set_transfers_enabled(False)

    receipt = s.admin.set_transfers_enabled(True)
    assert events(holder.credit, "TransfersToggled", receipt) == [
        {"admin": s.admin.address, "enabled": True}
    ]
    assert f.transfersEnabled().call() is True
    with reverts("ContributionCreditTransfersAlreadySet", enabled=True):
        s.admin.set_transfers_enabled(True)
    balance = holder.credit_balance(holder.address)
    receipt = raw_send(holder, f.transfer(other.address, 3))
    assert events(holder.credit, "Transfer", receipt) == [
        {"from": holder.address, "to": other.address, "value": 3}
    ]
    assert holder.credit_balance(holder.address) == balance - 3
    with reverts(
        "ContributionCreditInsufficientBalance",
        sender=holder.address,
        balance=balance - 3,
        needed=balance,
    ):
        raw_send(holder, f.transfer(other.address, balance))
    with reverts("ContributionCreditInvalidReceiver", receiver=ZERO):
        raw_send(holder, f.transfer(ZERO, 1))
    with reverts(
        "ContributionCreditInsufficientAllowance", spender=other.address, allowance=10, needed=11
    ):
        raw_send(other, f.transferFrom(holder.address, other.address, 11))
    receipt = raw_send(other, f.transferFrom(holder.address, s.outsider.address, 4))
    assert events(holder.credit, "Transfer", receipt) == [
        {"from": holder.address, "to": s.outsider.address, "value": 4}
    ]
    assert f.allowance(holder.address, other.address).call() == 6
    assert holder.credit_balance(s.outsider.address) == 4
    with reverts("ContributionCreditInvalidSpender", spender=ZERO):
        raw_send(holder, f.approve(ZERO, 1))
    raw_send(holder, f.approve(other.address, 2**256 - 1))  # an unlimited allowance is not spent
    raw_send(other, f.transferFrom(holder.address, other.address, 1))
    assert f.allowance(holder.address, other.address).call() == 2**256 - 1

    receipt = s.admin.set_transfers_enabled(False)  # and off again
    assert events(holder.credit, "TransfersToggled", receipt) == [
        {"admin": s.admin.address, "enabled": False}
    ]
    with reverts(
        "ContributionCreditTransfersDisabled", **{"from": holder.address, "to": other.address}
    ):
        raw_send(holder, f.transfer(other.address, 1))


def test_only_the_minter_slashes(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    with reverts("ContributionCreditUnauthorizedMinter", account=s.admin.address):
        raw_send(s.admin, s.admin.credit.functions.slash(s.hospitals[0].address, 1))
