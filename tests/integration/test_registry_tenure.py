"""HospitalRegistry on the embedded chain and on anvil, a member's tenure after admission:
sanctions by quorum (suspend, reinstate, revoke, with or without forfeiture), bond deposits,
key rotation, exit and bond refunds. Reverts are checked by exact custom error and arguments,
events by exact arguments."""

from __future__ import annotations

from ledger_support import (
    COHORT,
    RICH_WEI,
    LedgerSetup,
    RichSetup,
    block_time,
    deploy_test_contract,
    events,
    keys,
    peer_id,
    register_all,
    register_candidate,
    reverts,
    setup_on,
)

from ledger import (
    DEFAULT_BOND,
    LedgerClient,
    advance_time,
    deploy,
    dev_account,
    institution_id,
)
from ledger.compile import error_decoder
from ledger.tx import send

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO32 = b"\x00" * 32
PENDING, ACTIVE, SUSPENDED, REVOKED, EXITED = 1, 2, 3, 4, 5
SUSPEND = 0
WEEK = 7 * 24 * 3600


# =========================================================================== sanctions


def test_suspend_and_reinstate_by_quorum(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    receipt = a.suspend(d.address)
    # more than 2/3 of the 4 Active members, the target counted (as for a round): 3
    assert events(a.registry, "SanctionVoted", receipt) == [
        {"account": d.address, "voter": a.address, "action": SUSPEND, "votes": 1, "needed": 3}
    ]
    assert events(a.registry, "Suspended", receipt) == []
    assert a.sanction_votes(d.address, "suspend") == 1
    with reverts(
        "HospitalRegistryAlreadyVoted", account=d.address, voter=a.address, action=SUSPEND
    ):
        a.suspend(d.address)
    with reverts("HospitalRegistrySelfSanction", account=d.address):
        d.suspend(d.address)
    with reverts("HospitalRegistryNotActiveMember", account=s.outsider.address):
        s.outsider.suspend(d.address)
    with reverts("HospitalRegistryInvalidStatus", account=d.address, status=ACTIVE):
        a.reinstate(d.address)
    with reverts("HospitalRegistryUnknownAccount", account=s.outsider.address):
        a.suspend(s.outsider.address)
    receipt = b.suspend(d.address)  # a simple majority of the others is not enough
    assert events(a.registry, "Suspended", receipt) == [] and a.is_active(d.address)
    receipt = c.suspend(d.address)
    assert events(a.registry, "Suspended", receipt) == [{"account": d.address, "votes": 3}]
    assert d.identity(d.address).status == "suspended" and a.active_count() == 3  # type: ignore[union-attr]
    assert a.sanction_votes(d.address, "suspend") == 0  # a new epoch: old ballots are closed
    with reverts("RoundLedgerNotActiveMember", account=d.address):
        d.open_round()
    with reverts("HospitalRegistryNotActiveMember", account=d.address):
        d.suspend(a.address)
    with reverts("HospitalRegistryInvalidStatus", account=d.address, status=SUSPENDED):
        c.suspend(d.address)

    a.reinstate(d.address)
    b.reinstate(d.address)
    receipt = c.reinstate(d.address)  # 3 active: more than 2 -> 3 votes
    assert events(a.registry, "Reinstated", receipt) == [{"account": d.address, "votes": 3}]
    assert a.is_active(d.address) and a.active_count() == 4
    receipt = a.suspend(d.address)  # a fresh ballot: a's earlier suspend vote is gone
    assert events(a.registry, "SanctionVoted", receipt)[0]["votes"] == 1


def test_revoke_by_quorum_forfeits_the_bond(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    a.revoke(d.address)
    b.revoke(d.address)
    receipt = c.revoke(d.address)
    assert events(a.registry, "Revoked", receipt) == [
        {"account": d.address, "previousStatus": ACTIVE, "votes": 3}
    ]
    assert events(a.registry, "BondForfeited", receipt) == [
        {"account": d.address, "amount": DEFAULT_BOND}
    ]
    ident = d.identity(d.address)
    assert ident is not None and (ident.status, ident.bond, ident.left_at) == (
        "revoked",
        0,
        block_time(s, receipt),
    )
    assert a.active_count() == 3 and not d.is_active(d.address)
    assert a.registry.functions.forfeitedBonds().call() == DEFAULT_BOND
    with reverts("HospitalRegistryInvalidStatus", account=d.address, status=REVOKED):
        a.revoke(d.address)
    # the account cannot come back, and its names stay reserved
    with reverts("HospitalRegistryAlreadyRegistered", account=d.address):
        d.register(institution_id("Another name"), "12D3KooWanother", *keys(9), COHORT)
    with reverts("HospitalRegistryPeerTaken", peerId=peer_id(3), account=d.address):
        s.outsider.register(institution_id("Another name"), peer_id(3), *keys(9), COHORT)
    advance_time(s.w3, WEEK + 1)
    with reverts("HospitalRegistryNoBond", account=d.address):
        d.withdraw_bond()

    treasury = dev_account(s.w3, 7).address
    with reverts("ConsortiumAdminUnauthorizedAccount", account=a.address):
        a.sweep_forfeited(treasury)
    with reverts(
        "HospitalRegistryTransferFailed",
        to=s.deployment.addresses["ContributionCredit"],
        amount=DEFAULT_BOND,
    ):
        s.admin.sweep_forfeited(s.deployment.addresses["ContributionCredit"])  # no receive()
    before = s.w3.eth.get_balance(treasury)
    receipt = s.admin.sweep_forfeited(treasury)
    assert events(a.registry, "ForfeitsSwept", receipt) == [
        {"to": treasury, "amount": DEFAULT_BOND}
    ]
    assert s.w3.eth.get_balance(treasury) == before + DEFAULT_BOND
    with reverts("HospitalRegistryNoBond", account=s.deployment.addresses["HospitalRegistry"]):
        s.admin.sweep_forfeited(treasury)


def test_a_suspended_member_can_be_revoked(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    for h in (a, b, c):
        h.suspend(d.address)
    a.revoke(d.address)  # 3 active (the suspended target is not): more than 2 -> 3 votes
    b.revoke(d.address)
    receipt = c.revoke(d.address)
    assert events(a.registry, "Revoked", receipt) == [
        {"account": d.address, "previousStatus": SUSPENDED, "votes": 3}
    ]
    assert a.active_count() == 3


def test_revocation_without_forfeiture_refunds_after_the_cooldown(
    ledger_deployed: LedgerSetup,
) -> None:
    w3 = ledger_deployed.w3
    s = setup_on(w3, deploy(w3, dev_account(w3, 0), forfeit_on_revoke=False, exit_cooldown=60))
    register_all(s)
    a, b, d, c = s.hospitals
    a.revoke(c.address)
    b.revoke(c.address)
    receipt = d.revoke(c.address)  # 4 Active: more than 8/3 -> 3
    assert events(a.registry, "BondForfeited", receipt) == []
    left = block_time(s, receipt)
    with reverts("HospitalRegistryBondLocked", account=c.address, availableAt=left + 60):
        c.withdraw_bond()
    advance_time(w3, 61)
    receipt = c.withdraw_bond()
    assert events(a.registry, "BondWithdrawn", receipt) == [
        {"account": c.address, "amount": DEFAULT_BOND}
    ]


def test_a_deposit_beyond_128_bits_is_refused(ledger_rich: RichSetup) -> None:
    """The bond is a uint128: register and depositBond refuse a deposit that would overflow it.
    (anvil's transaction pool refuses to take any transaction of 2**128 - 1 wei or more, so the
    largest bond is reached in two deposits of about 2**127 each.)"""
    s = ledger_rich.setup
    h = LedgerClient(s.w3, s.deployment, ledger_rich.accounts[0])
    assert s.w3.eth.get_balance(h.address) == RICH_WEI > 2**129
    fields = (institution_id("Rich Clinic"), peer_id(12), *keys(12), COHORT)
    with reverts("HospitalRegistryInvalidDeposit", account=h.address, amount=2**128):
        h.register(*fields, bond=2**128)
    h.register(*fields, bond=2**127)
    with reverts("HospitalRegistryInvalidDeposit", account=h.address, amount=2**127):
        h.deposit_bond(2**127)  # the bond would reach 2**128
    receipt = h.deposit_bond(2**127 - 1)
    assert events(h.registry, "BondDeposited", receipt) == [
        {"account": h.address, "amount": 2**127 - 1, "bond": 2**128 - 1}
    ]
    with reverts("HospitalRegistryInvalidDeposit", account=h.address, amount=1):
        h.deposit_bond(1)
    assert h.identity(h.address).bond == 2**128 - 1  # type: ignore[union-attr]
    assert s.w3.eth.get_balance(s.deployment.addresses["HospitalRegistry"]) == 2**128 - 1


# =========================================================================== own identity


def test_key_rotation(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b = s.hospitals[0], s.hospitals[1]
    seal, sign = keys(20)
    receipt = a.rotate_keys("12D3KooWrotated", seal, sign)
    assert events(a.registry, "KeysRotated", receipt) == [
        {"account": a.address, "peerId": "12D3KooWrotated", "sealKey": seal, "signKey": sign}
    ]
    ident = a.identity(a.address)
    assert ident is not None and (ident.peer_id, ident.seal_key, ident.sign_key) == (
        "12D3KooWrotated",
        seal,
        sign,
    )
    assert a.identity_of_peer("12D3KooWrotated") == ident
    assert a.identity_of_peer(peer_id(0)) is None  # the old peer ID no longer names anyone
    assert a.registry.functions.accountOfPeer(peer_id(0)).call() == a.address  # but stays reserved
    with reverts("HospitalRegistryPeerTaken", peerId=peer_id(0), account=a.address):
        b.rotate_keys(peer_id(0), seal, sign)
    with reverts("HospitalRegistryInvalidKeys", sealKey=ZERO32, signKey=sign):
        a.rotate_keys("12D3KooWrotated", ZERO32, sign)
    with reverts("HospitalRegistryInvalidPeerId", peerId=""):
        a.rotate_keys("", seal, sign)
    a.rotate_keys("12D3KooWrotated", *keys(21))  # same peer ID, new keys
    assert a.identity(a.address).seal_key == keys(21)[0]  # type: ignore[union-attr]
    with reverts("HospitalRegistryUnknownAccount", account=s.outsider.address):
        s.outsider.rotate_keys("12D3KooWx", seal, sign)


def test_exit_and_bond_refund_after_the_cooldown(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h = s.hospitals[2]
    with reverts("HospitalRegistryInvalidStatus", account=h.address, status=ACTIVE):
        h.withdraw_bond()
    receipt = h.exit()
    assert events(h.registry, "Exited", receipt) == [
        {"account": h.address, "previousStatus": ACTIVE}
    ]
    left = block_time(s, receipt)
    assert h.active_count() == 3 and h.identity(h.address).left_at == left  # type: ignore[union-attr]
    with reverts("HospitalRegistryInvalidStatus", account=h.address, status=EXITED):
        h.exit()
    with reverts("HospitalRegistryInvalidStatus", account=h.address, status=EXITED):
        h.rotate_keys("12D3KooWgone", *keys(30))
    with reverts("HospitalRegistryInvalidStatus", account=h.address, status=EXITED):
        h.deposit_bond(1)
    with reverts("HospitalRegistryBondLocked", account=h.address, availableAt=left + WEEK):
        h.withdraw_bond()
    advance_time(s.w3, WEEK + 1)
    before = s.w3.eth.get_balance(h.address)
    receipt = h.withdraw_bond()
    assert events(h.registry, "BondWithdrawn", receipt) == [
        {"account": h.address, "amount": DEFAULT_BOND}
    ]
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert s.w3.eth.get_balance(h.address) == before + DEFAULT_BOND - fee
    with reverts("HospitalRegistryNoBond", account=h.address):
        h.withdraw_bond()
    with reverts("HospitalRegistryUnknownAccount", account=s.outsider.address):
        s.outsider.exit()


def test_a_refund_the_account_refuses_reverts(ledger_deployed: LedgerSetup) -> None:
    """withdrawBond to a contract that rejects ether reverts and keeps the bond."""
    s = ledger_deployed
    proxy = deploy_test_contract(s.w3, s.outsider.account, "RejectEther")
    registry = s.admin.registry

    def forward(fn: object, value: int = 0) -> object:
        data = proxy.functions.forward(registry.address, fn._encode_transaction_data())  # type: ignore[attr-defined]
        tx = {"to": proxy.address, "data": data._encode_transaction_data(), "value": value}
        return send(s.w3, s.outsider.account, tx, decoder=error_decoder(), action="forward")  # type: ignore[arg-type]

    forward(
        registry.functions.register(
            institution_id("Refusing Clinic"), peer_id(11), *keys(11), COHORT
        ),
        DEFAULT_BOND,
    )
    s.admin.admit(proxy.address)
    forward(registry.functions.exit())
    advance_time(s.w3, WEEK + 1)
    with reverts("HospitalRegistryTransferFailed", to=proxy.address, amount=DEFAULT_BOND):
        forward(registry.functions.withdrawBond())
    assert s.admin.identity(proxy.address).bond == DEFAULT_BOND  # type: ignore[union-attr]
    assert s.w3.eth.get_balance(registry.address) == DEFAULT_BOND


def test_a_pending_identity_can_exit(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    candidate = register_candidate(s)
    receipt = s.outsider.exit()
    assert events(s.admin.registry, "Exited", receipt) == [
        {"account": candidate, "previousStatus": PENDING}
    ]
    assert s.admin.active_count() == 4
    with reverts("HospitalRegistryInvalidStatus", account=candidate, status=EXITED):
        s.hospitals[0].endorse(candidate)
