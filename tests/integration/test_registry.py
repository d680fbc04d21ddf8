"""HospitalRegistry on the embedded chain and on anvil: registration, genesis and endorsed
admission with a stake bond, the constructor's checks and the admin's transfer (a member's
tenure, sanctions to exit: test_registry_tenure.py). Reverts are checked by exact custom error
and arguments, events by exact arguments."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from ledger_support import (
    COHORT,
    HOSPITALS,
    LedgerSetup,
    block_time,
    events,
    keys,
    peer_id,
    raw_send,
    register_candidate,
    reverts,
)

from ledger import (
    DEFAULT_BOND,
    LedgerError,
    compile_contracts,
    deploy,
    dev_account,
    institution_id,
)
from ledger.compile import error_decoder
from ledger.tx import send

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO = "0x0000000000000000000000000000000000000000"
ZERO32 = b"\x00" * 32
ACTIVE = 2
WEEK = 7 * 24 * 3600


# =========================================================================== registration


def test_register_creates_pending_identity_with_its_bond(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    seal, sign = keys(0)
    receipt = h.register(institution_id(HOSPITALS[0]), peer_id(0), seal, sign, COHORT)

    assert events(h.registry, "Registered", receipt) == [
        {
            "account": h.address,
            "institutionId": keccak(text=HOSPITALS[0]),
            "peerId": peer_id(0),
            "sealKey": seal,
            "signKey": sign,
            "bond": DEFAULT_BOND,
            "cohort": COHORT,
        }
    ]
    ident = h.identity(h.address)
    assert ident is not None
    assert (ident.address, ident.institution_id, ident.peer_id, ident.seal_key, ident.sign_key) == (
        h.address,
        keccak(text=HOSPITALS[0]),
        peer_id(0),
        seal,
        sign,
    )
    assert (ident.status, ident.joined_at, ident.bond, ident.left_at) == (
        "pending",
        0,
        DEFAULT_BOND,
        0,
    )
    assert ident.cohort == COHORT == h.cohort_of(h.address) and h.cohort_of(s.outsider.address) == 0
    # the batched view returns exactly what members() then identity() per member do
    reg = h.registry.functions
    assert reg.identities().call() == [reg.identity(m).call() for m in reg.members().call()]
    assert h.identities() == [ident]
    assert s.w3.eth.get_balance(s.deployment.addresses["HospitalRegistry"]) == DEFAULT_BOND
    assert h.registry.functions.members().call() == [h.address]
    assert h.registry.functions.accountOfPeer(peer_id(0)).call() == h.address
    assert h.registry.functions.accountOfInstitution(keccak(text=HOSPITALS[0])).call() == h.address
    assert not h.is_active(h.address) and h.active_count() == 0
    assert h.identity_of_peer(peer_id(0)) == ident
    assert h.identity_of_peer("12D3KooWnobody") is None
    assert h.identity(s.outsider.address) is None


def test_register_rejects_duplicates_and_bad_fields(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    a, b = s.hospitals[0], s.hospitals[1]
    seal, sign = keys(0)
    a.register(institution_id(HOSPITALS[0]), peer_id(0), seal, sign, COHORT)

    with reverts("HospitalRegistryAlreadyRegistered", account=a.address):
        a.register(institution_id(HOSPITALS[1]), peer_id(1), seal, sign, COHORT)
    with reverts(
        "HospitalRegistryInstitutionTaken",
        institutionId=keccak(text=HOSPITALS[0]),
        account=a.address,
    ):
        b.register(institution_id(HOSPITALS[0]), peer_id(1), seal, sign, COHORT)
    with reverts("HospitalRegistryPeerTaken", peerId=peer_id(0), account=a.address):
        b.register(institution_id(HOSPITALS[1]), peer_id(0), seal, sign, COHORT)
    with reverts("HospitalRegistryInvalidInstitution", institutionId=ZERO32):
        b.register(ZERO32, peer_id(1), seal, sign, COHORT)
    with reverts("HospitalRegistryInvalidPeerId", peerId=""):
        b.register(institution_id(HOSPITALS[1]), "", seal, sign, COHORT)
    with reverts("HospitalRegistryInvalidPeerId", peerId="x" * 129):
        b.register(institution_id(HOSPITALS[1]), "x" * 129, seal, sign, COHORT)
    with reverts("HospitalRegistryInvalidKeys", sealKey=ZERO32, signKey=sign):
        b.register(institution_id(HOSPITALS[1]), peer_id(1), ZERO32, sign, COHORT)
    with reverts("HospitalRegistryInvalidKeys", sealKey=seal, signKey=ZERO32):
        b.register(institution_id(HOSPITALS[1]), peer_id(1), seal, ZERO32, COHORT)
    with reverts(
        "HospitalRegistryInvalidCohort", cohort=0
    ):  # the client refuses it before sending, too
        raw_send(
            b, b.registry.functions.register(institution_id(HOSPITALS[1]), peer_id(1), *keys(1), 0)
        )
    with pytest.raises(LedgerError, match="cohort must be a whole number"):
        b.register(institution_id(HOSPITALS[1]), peer_id(1), *keys(1), 0)
    b.register(
        institution_id(HOSPITALS[1]), "x" * 128, *keys(1), COHORT
    )  # the longest peer ID allowed
    with pytest.raises(LedgerError, match="cohort must be a whole number"):
        s.outsider.register(institution_id("Cohortless"), peer_id(5), *keys(5), 2**64)


def test_a_second_identity_cannot_reuse_a_members_keys(ledger_deployed: LedgerSetup) -> None:
    """Issue 14: a second identity registered with the same sealing and signing keys as an
    existing one was admitted. Each key is now reserved registry-wide, for good."""
    s = ledger_deployed
    a, b = s.hospitals[0], s.hospitals[1]
    seal, sign = keys(0)
    a.register(institution_id(HOSPITALS[0]), peer_id(0), seal, sign, COHORT)
    s.admin.admit(a.address)
    other_seal, other_sign = keys(1)
    with reverts("HospitalRegistryKeyTaken", key=seal, account=a.address):
        b.register(institution_id(HOSPITALS[1]), peer_id(1), seal, sign, COHORT)  # the whole pair
    with reverts("HospitalRegistryKeyTaken", key=seal, account=a.address):
        b.register(institution_id(HOSPITALS[1]), peer_id(1), seal, other_sign, COHORT)
    with reverts("HospitalRegistryKeyTaken", key=sign, account=a.address):
        b.register(institution_id(HOSPITALS[1]), peer_id(1), other_seal, sign, COHORT)
    with reverts("HospitalRegistryKeyTaken", key=seal, account=a.address):
        b.register(
            institution_id(HOSPITALS[1]), peer_id(1), other_seal, seal, COHORT
        )  # a key is a key
    b.register(institution_id(HOSPITALS[1]), peer_id(1), other_seal, other_sign, COHORT)
    reg = a.registry.functions
    assert (reg.accountOfKey(seal).call(), reg.accountOfKey(other_sign).call()) == (
        a.address,
        b.address,
    )
    # a rotation may not take another member's key, and the keys it rotates away stay reserved
    with reverts("HospitalRegistryKeyTaken", key=other_seal, account=b.address):
        a.rotate_keys(peer_id(0), other_seal, sign)
    a.rotate_keys(peer_id(0), *keys(20))
    with reverts("HospitalRegistryKeyTaken", key=seal, account=a.address):
        b.rotate_keys(peer_id(1), seal, other_sign)
    a.rotate_keys(peer_id(0), seal, sign)  # its own former keys are still its own


# =========================================================================== admission


def test_genesis_admission_is_the_admins_until_the_seats_are_filled(
    ledger_deployed: LedgerSetup,
) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    assert s.admin.genesis_open() and s.admin.registry_config() == {
        "genesis_seats": 4,
        "member_quorum": (2, 3),
        "bond": DEFAULT_BOND,
        "exit_cooldown": WEEK,
        "forfeit_on_revoke": True,
    }
    h.register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0), COHORT)

    with reverts("ConsortiumAdminUnauthorizedAccount", account=h.address):
        h.admit(h.address)
    with reverts("HospitalRegistryUnknownAccount", account=s.outsider.address):
        s.admin.admit(s.outsider.address)
    receipt = s.admin.admit(h.address)
    assert events(h.registry, "Admitted", receipt) == [
        {"account": h.address, "admittedBy": s.admin.address, "endorsements": 0, "genesis": True}
    ]
    ident = h.identity(h.address)
    assert (
        ident is not None and ident.status == "active" and ident.joined_at == block_time(s, receipt)
    )
    assert h.is_active(h.address) and h.active_count() == 1
    with reverts("HospitalRegistryInvalidStatus", account=h.address, status=ACTIVE):
        s.admin.admit(h.address)

    for i in (1, 2, 3):
        s.hospitals[i].register(institution_id(HOSPITALS[i]), peer_id(i), *keys(i), COHORT)
        s.admin.admit(s.hospitals[i].address)
    assert not s.admin.genesis_open()
    assert s.admin.registry.functions.admittedCount().call() == 4
    register_candidate(s)
    with reverts(
        "HospitalRegistryNotEnoughEndorsements",
        candidate=s.outsider.address,
        endorsements=0,
        needed=3,
    ):
        s.admin.admit(s.outsider.address)  # genesis is over: the admin has no say alone


def test_admission_needs_the_bond(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    h.register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0), COHORT, bond=DEFAULT_BOND - 1)
    with reverts(
        "HospitalRegistryBondTooLow",
        account=h.address,
        bond=DEFAULT_BOND - 1,
        required=DEFAULT_BOND,
    ):
        s.admin.admit(h.address)
    receipt = h.deposit_bond(1)
    assert events(h.registry, "BondDeposited", receipt) == [
        {"account": h.address, "amount": 1, "bond": DEFAULT_BOND}
    ]
    with reverts("HospitalRegistryInvalidDeposit", account=h.address, amount=0):
        raw_send(h, h.registry.functions.depositBond())
    with reverts("HospitalRegistryUnknownAccount", account=s.outsider.address):
        s.outsider.deposit_bond(5)
    s.admin.admit(h.address)
    assert h.identity(h.address).bond == DEFAULT_BOND  # type: ignore[union-attr]


def test_endorsed_admission_after_genesis(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    candidate = register_candidate(s)
    assert s.admin.endorsements_needed() == 3  # more than half of 4

    receipt = a.endorse(candidate)
    assert events(a.registry, "Endorsed", receipt) == [
        {"candidate": candidate, "endorser": a.address, "endorsements": 1}
    ]
    with reverts("HospitalRegistryAlreadyEndorsed", candidate=candidate, endorser=a.address):
        a.endorse(candidate)
    with reverts("HospitalRegistryNotActiveMember", account=s.admin.address):
        s.admin.endorse(candidate)  # the admin holds no seat
    with reverts("HospitalRegistryNotActiveMember", account=candidate):
        s.outsider.endorse(candidate)
    with reverts("HospitalRegistryInvalidStatus", account=b.address, status=ACTIVE):
        a.endorse(b.address)
    with reverts("HospitalRegistryUnknownAccount", account=s.admin.address):
        a.endorse(s.admin.address)
    b.endorse(candidate)
    with reverts(
        "HospitalRegistryNotEnoughEndorsements", candidate=candidate, endorsements=2, needed=3
    ):
        s.outsider.admit(candidate)
    c.endorse(candidate)
    assert a.endorsements(candidate) == 3
    assert a.registry.functions.hasEndorsed(candidate, c.address).call()
    assert not a.registry.functions.hasEndorsed(candidate, d.address).call()
    receipt = s.outsider.admit(candidate)  # anyone may admit once the quorum endorsed
    assert events(a.registry, "Admitted", receipt) == [
        {"account": candidate, "admittedBy": candidate, "endorsements": 3, "genesis": False}
    ]
    assert a.active_count() == 5 and a.endorsements_needed() == 4  # 5 * 2/3 -> 3, plus one


# =========================================================================== deployment and admin


def test_registry_constructor_checks(ledger_deployed: LedgerSetup) -> None:
    w3 = ledger_deployed.w3
    with reverts("HospitalRegistryInvalidQuorum", numerator=2, denominator=2):
        deploy(w3, dev_account(w3, 0), member_quorum=(2, 2))
    with reverts("HospitalRegistryInvalidQuorum", numerator=0, denominator=2):
        deploy(w3, dev_account(w3, 0), member_quorum=(0, 2))
    # a simple majority must not admit or sanction: the fraction is at least 2/3
    with reverts("HospitalRegistryInvalidQuorum", numerator=1, denominator=2):
        deploy(w3, dev_account(w3, 0), member_quorum=(1, 2))
    with reverts("HospitalRegistryInvalidQuorum", numerator=5, denominator=8):
        deploy(w3, dev_account(w3, 0), member_quorum=(5, 8))
    deploy(w3, dev_account(w3, 0), member_quorum=(3, 4))
    with reverts("HospitalRegistryInvalidGenesis", genesisSeats=0):
        deploy(w3, dev_account(w3, 0), genesis_seats=0)
    art = compile_contracts()["HospitalRegistry"]
    data = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(
        ZERO, (1, 1, 2, 0, 0, False)
    )
    with reverts("ConsortiumAdminInvalidAdmin", admin=ZERO):
        send(
            w3,
            ledger_deployed.admin.account,
            {"data": data.data_in_transaction},
            decoder=error_decoder(),
        )


def test_admin_transfer(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    new_admin = s.hospitals[3]
    fn = s.admin.registry.functions
    with reverts("ConsortiumAdminInvalidAdmin", admin=ZERO):
        raw_send(s.admin, fn.transferAdmin(ZERO))
    with reverts("ConsortiumAdminUnauthorizedAccount", account=new_admin.address):
        raw_send(new_admin, fn.transferAdmin(new_admin.address))
    receipt = raw_send(s.admin, fn.transferAdmin(new_admin.address))
    assert events(s.admin.registry, "AdminTransferred", receipt) == [
        {"previousAdmin": s.admin.address, "newAdmin": new_admin.address}
    ]
    assert fn.admin().call() == new_admin.address
    s.hospitals[0].register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0), COHORT)
    with reverts("ConsortiumAdminUnauthorizedAccount", account=s.admin.address):
        s.admin.admit(s.hospitals[0].address)
    new_admin.admit(s.hospitals[0].address)
