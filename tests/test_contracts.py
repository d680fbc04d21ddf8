"""Contract behaviour on the embedded chain, laid out like the contracts: HospitalRegistry,
RoundLedger, ContributionCredit. Reverts are checked by exact custom error and arguments,
events by exact arguments."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from ledger_support import HOSPITALS, LedgerSetup, events, h32, keys, peer_id, raw_send, reverts
from web3.exceptions import ContractCustomError

from ledger import LedgerClient, advance_time, compile_contracts, deploy, dev_account, institution_id
from ledger.compile import EVM_VERSION
from ledger.tx import send

ZERO = "0x0000000000000000000000000000000000000000"
ZERO32 = b"\x00" * 32
PENDING, ACTIVE, REVOKED = 1, 2, 4
NONE_R, OPEN, FINALIZED, FAILED = 0, 1, 2, 3
CREDIT = 100 * 10**18
WINDOW = 3600


def _ts(setup: LedgerSetup, receipt: dict) -> int:
    return int(setup.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def _sorted(addresses: list[str]) -> list[str]:
    return sorted(addresses, key=lambda a: int(a, 16))


def _commit_all(setup: LedgerSetup, rnd: int, samples: tuple[int, ...] = (100, 200, 300, 400)) -> None:
    for i, (h, n) in enumerate(zip(setup.hospitals, samples, strict=False)):
        h.commit_update(rnd, h32(f"update-{rnd}-{i}"), n, 0.5 + i, 1)


# =========================================================================== compiler


def test_compiled_artifacts_come_from_the_sources() -> None:
    artifacts = compile_contracts()
    assert set(artifacts) == {"HospitalRegistry", "RoundLedger", "ContributionCredit"}
    for art in artifacts.values():
        # the CBOR metadata trailer names the compiler: "solc" 0x000825 = 0.8.37
        assert art["deployedBytecode"].endswith("64736f6c63430008250033")
        assert art["bytecode"].endswith(art["deployedBytecode"][2:]) or len(art["bytecode"]) > len(
            art["deployedBytecode"]
        )
    assert EVM_VERSION == "prague"
    assert compile_contracts() == artifacts  # cached, identical


# =========================================================================== HospitalRegistry


def test_register_creates_pending_identity(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    seal, sign = keys(0)
    receipt = h.register(institution_id(HOSPITALS[0]), peer_id(0), seal, sign)

    assert events(h.registry, "Registered", receipt) == [
        {
            "account": h.address,
            "institutionId": keccak(text=HOSPITALS[0]),
            "peerId": peer_id(0),
            "sealKey": seal,
            "signKey": sign,
        }
    ]
    ident = h.identity(h.address)
    assert ident is not None
    assert (
        ident.address,
        ident.institution_id,
        ident.peer_id,
        ident.seal_key,
        ident.sign_key,
        ident.status,
    ) == (
        h.address,
        keccak(text=HOSPITALS[0]),
        peer_id(0),
        seal,
        sign,
        "pending",
    )
    assert ident.joined_at == 0
    assert h.registry.functions.members().call() == [h.address]
    assert h.registry.functions.accountOfPeer(peer_id(0)).call() == h.address
    assert h.registry.functions.accountOfInstitution(keccak(text=HOSPITALS[0])).call() == h.address
    assert not h.is_active(h.address) and h.active_count() == 0
    assert h.identity_of_peer(peer_id(0)) == ident
    assert h.identity_of_peer("12D3KooWnobody") is None


def test_register_rejects_duplicates_and_bad_fields(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    a, b = s.hospitals[0], s.hospitals[1]
    seal, sign = keys(0)
    a.register(institution_id(HOSPITALS[0]), peer_id(0), seal, sign)

    with reverts("HospitalRegistryAlreadyRegistered", account=a.address):
        a.register(institution_id(HOSPITALS[1]), peer_id(1), seal, sign)
    with reverts(
        "HospitalRegistryInstitutionTaken", institutionId=keccak(text=HOSPITALS[0]), account=a.address
    ):
        b.register(institution_id(HOSPITALS[0]), peer_id(1), seal, sign)
    with reverts("HospitalRegistryPeerTaken", peerId=peer_id(0), account=a.address):
        b.register(institution_id(HOSPITALS[1]), peer_id(0), seal, sign)
    with reverts("HospitalRegistryInvalidInstitution", institutionId=ZERO32):
        b.register(ZERO32, peer_id(1), seal, sign)
    with reverts("HospitalRegistryInvalidPeerId", peerId=""):
        b.register(institution_id(HOSPITALS[1]), "", seal, sign)
    with reverts("HospitalRegistryInvalidPeerId", peerId="x" * 129):
        b.register(institution_id(HOSPITALS[1]), "x" * 129, seal, sign)
    with reverts("HospitalRegistryInvalidKeys", sealKey=ZERO32, signKey=sign):
        b.register(institution_id(HOSPITALS[1]), peer_id(1), ZERO32, sign)
    with reverts("HospitalRegistryInvalidKeys", sealKey=seal, signKey=ZERO32):
        b.register(institution_id(HOSPITALS[1]), peer_id(1), seal, ZERO32)
    b.register(institution_id(HOSPITALS[1]), "x" * 128, seal, sign)  # the longest peer ID allowed


def test_admit_activates_and_is_admin_only(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    h.register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0))

    with reverts("ConsortiumAdminUnauthorizedAccount", account=h.address):
        h.admit(h.address)
    with reverts("HospitalRegistryUnknownAccount", account=s.outsider.address):
        s.admin.admit(s.outsider.address)
    receipt = s.admin.admit(h.address)
    assert events(h.registry, "Admitted", receipt) == [{"account": h.address, "admin": s.admin.address}]
    ident = h.identity(h.address)
    assert ident is not None and ident.status == "active" and ident.joined_at == _ts(s, receipt)
    assert h.is_active(h.address) and h.active_count() == 1
    with reverts("HospitalRegistryInvalidStatus", account=h.address, status=ACTIVE):
        s.admin.admit(h.address)


def test_revoke_for_good(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h, other = s.hospitals[0], s.hospitals[1]
    assert s.admin.active_count() == 4

    with reverts("ConsortiumAdminUnauthorizedAccount", account=other.address):
        other.revoke(h.address)
    with reverts("HospitalRegistryUnknownAccount", account=s.outsider.address):
        s.admin.revoke(s.outsider.address)
    receipt = s.admin.revoke(h.address)
    assert events(h.registry, "Revoked", receipt) == [
        {"account": h.address, "admin": s.admin.address, "previousStatus": ACTIVE}
    ]
    assert not h.is_active(h.address) and s.admin.active_count() == 3
    assert h.identity(h.address).status == "revoked"  # type: ignore[union-attr]
    with reverts("HospitalRegistryInvalidStatus", account=h.address, status=REVOKED):
        s.admin.revoke(h.address)
    # the account cannot come back, and its names stay reserved
    with reverts("HospitalRegistryAlreadyRegistered", account=h.address):
        h.register(institution_id("Another name"), "12D3KooWanother", *keys(9))
    with reverts("HospitalRegistryPeerTaken", peerId=peer_id(0), account=h.address):
        s.outsider.register(institution_id("Another name"), peer_id(0), *keys(9))
    assert [i.address for i in s.admin.identities()] == [c.address for c in s.hospitals]


def test_revoking_a_pending_identity_keeps_the_active_count(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    h.register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0))
    receipt = s.admin.revoke(h.address)
    assert events(h.registry, "Revoked", receipt)[0]["previousStatus"] == PENDING
    assert s.admin.active_count() == 0
    with reverts("HospitalRegistryInvalidStatus", account=h.address, status=REVOKED):
        s.admin.admit(h.address)


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
    s.hospitals[0].register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0))
    with reverts("ConsortiumAdminUnauthorizedAccount", account=s.admin.address):
        s.admin.admit(s.hospitals[0].address)
    new_admin.admit(s.hospitals[0].address)


# =========================================================================== RoundLedger


def test_open_round(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h = s.hospitals[0]
    assert h.current_round() == 0
    assert h.round_info(1).status == "none"
    rnd = h.open_round()
    assert rnd == 1 and h.current_round() == 1
    opened = _ts(s, h.last_receipt)  # type: ignore[arg-type]
    assert events(h.round_ledger, "RoundOpened", h.last_receipt) == [
        {
            "round": 1,
            "opener": h.address,
            "commitDeadline": opened + WINDOW,
            "attestDeadline": opened + 2 * WINDOW,
        }
    ]
    info = h.round_info(1)
    assert (info.status, info.opener, info.opened_at, info.commit_deadline, info.attest_deadline) == (
        "open",
        h.address,
        opened,
        opened + WINDOW,
        opened + 2 * WINDOW,
    )
    assert info.aggregate_hash is None and info.commit_count == 0 and info.attest_count == 0
    with reverts("RoundLedgerRoundStillOpen", round=1):
        s.hospitals[1].open_round()


def test_only_active_members_act(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    outsider = s.outsider
    with reverts("RoundLedgerNotActiveMember", account=outsider.address):
        outsider.open_round()
    rnd = s.hospitals[0].open_round()
    s.hospitals[0].commit_update(rnd, h32("u0"), 10, 1.0, 0)
    outsider.register(institution_id("Pending Clinic"), "12D3KooWpending", *keys(7))  # Pending, not Active
    with reverts("RoundLedgerNotActiveMember", account=outsider.address):
        outsider.commit_update(rnd, h32("u"), 10, 1.0, 0)
    with reverts("RoundLedgerNotActiveMember", account=outsider.address):
        outsider.attest(rnd, h32("agg"), [s.hospitals[0].address])
    with reverts("RoundLedgerNotActiveMember", account=outsider.address):
        outsider.finalize(rnd)
    with reverts("RoundLedgerNotActiveMember", account=outsider.address):
        outsider.fail_round(rnd)
    s.admin.revoke(s.hospitals[1].address)
    with reverts("RoundLedgerNotActiveMember", account=s.hospitals[1].address):
        s.hospitals[1].commit_update(rnd, h32("u1"), 10, 1.0, 0)


def test_commit_update(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b = s.hospitals[0], s.hospitals[1]
    rnd = a.open_round()
    receipt = b.commit_update(rnd, h32("b"), 250, 1.25, 2)
    assert events(b.round_ledger, "UpdateCommitted", receipt) == [
        {
            "round": rnd,
            "account": b.address,
            "updateHash": h32("b"),
            "samples": 250,
            "epsilonMicros": 1_250_000,
            "mode": 2,
            "index": 0,
        }
    ]
    a.commit_update(rnd, h32("a"), 100, 0.1, 1)
    assert b.round_ledger.functions.committers(rnd).call() == [b.address, a.address]
    commits = a.commitments(rnd)
    assert list(commits) == [b.address, a.address]
    assert commits[b.address].update_hash == h32("b") and commits[b.address].samples == 250
    assert commits[b.address].epsilon == pytest.approx(1.25) and commits[b.address].mode == 2
    assert commits[a.address].index == 1 and commits[a.address].epsilon == pytest.approx(0.1)
    assert a.commitment(rnd, s.hospitals[2].address) is None
    assert a.round_info(rnd).commit_count == 2


def test_commit_rejections(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a = s.hospitals[0]
    with reverts("RoundLedgerRoundNotOpen", round=1, status=NONE_R):
        a.commit_update(1, h32("a"), 1, 1.0, 0)
    rnd = a.open_round()
    a.commit_update(rnd, h32("a"), 100, 1.0, 0)
    with reverts("RoundLedgerAlreadyCommitted", round=rnd, account=a.address):
        a.commit_update(rnd, h32("a2"), 100, 1.0, 0)
    b = s.hospitals[1]
    with reverts("RoundLedgerInvalidCommitment", round=rnd, updateHash=ZERO32, samples=5):
        b.commit_update(rnd, ZERO32, 5, 1.0, 0)
    with reverts("RoundLedgerInvalidCommitment", round=rnd, updateHash=h32("b"), samples=0):
        b.commit_update(rnd, h32("b"), 0, 1.0, 0)
    with reverts("RoundLedgerRoundNotOpen", round=rnd + 1, status=NONE_R):
        b.commit_update(rnd + 1, h32("b"), 5, 1.0, 0)
    deadline = a.round_info(rnd).commit_deadline
    advance_time(s.w3, WINDOW + 1)
    with reverts("RoundLedgerCommitClosed", round=rnd, deadline=deadline):
        b.commit_update(rnd, h32("b"), 5, 1.0, 0)


def test_attest_records_the_vote_pair(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd)
    accepted = _sorted([h.address for h in s.hospitals[:3]])
    agg = h32("aggregate")
    # independent of the contract and of ledger.records.vote_key
    key = keccak(abi_encode(["bytes32", "address[]"], [agg, accepted]))
    voter = s.hospitals[3]
    receipt = voter.attest(rnd, agg, list(reversed(accepted)))  # the client sorts
    assert events(voter.round_ledger, "AggregateAttested", receipt) == [
        {"round": rnd, "account": voter.address, "aggregateHash": agg, "voteKey": key, "accepted": accepted}
    ]
    att = voter.attestation(rnd, voter.address)
    assert att is not None and (att.vote_key, att.aggregate_hash, list(att.accepted)) == (key, agg, accepted)
    assert voter.attestation(rnd, s.hospitals[0].address) is None
    assert voter.votes_for(rnd, key) == 1
    info = voter.round_info(rnd)
    assert info.attest_count == 1 and info.leader_votes == 1


def test_attest_rejections(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    a.commit_update(rnd, h32("a"), 10, 1.0, 0)
    b.commit_update(rnd, h32("b"), 10, 1.0, 0)
    low, high = _sorted([a.address, b.address])
    attest = a.round_ledger.functions.attest
    with reverts("RoundLedgerAcceptedNotSorted", round=rnd, position=1):
        raw_send(c, attest(rnd, h32("agg"), [high, low]))
    with reverts("RoundLedgerAcceptedNotSorted", round=rnd, position=1):
        raw_send(c, attest(rnd, h32("agg"), [low, low]))
    with reverts("RoundLedgerNotCommitted", round=rnd, account=d.address):
        c.attest(rnd, h32("agg"), [a.address, d.address])
    with reverts("RoundLedgerInvalidAttestation", round=rnd, aggregateHash=h32("agg"), acceptedCount=0):
        c.attest(rnd, h32("agg"), [])
    with reverts("RoundLedgerInvalidAttestation", round=rnd, aggregateHash=ZERO32, acceptedCount=2):
        c.attest(rnd, ZERO32, [a.address, b.address])
    c.attest(rnd, h32("agg"), [a.address, b.address])  # a non-committer may attest
    with reverts("RoundLedgerAlreadyAttested", round=rnd, account=c.address):
        c.attest(rnd, h32("other"), [a.address])
    with reverts("RoundLedgerRoundNotOpen", round=rnd + 1, status=NONE_R):
        d.attest(rnd + 1, h32("agg"), [a.address])
    deadline = a.round_info(rnd).attest_deadline
    advance_time(s.w3, 2 * WINDOW + 1)
    with reverts("RoundLedgerAttestClosed", round=rnd, deadline=deadline):
        d.attest(rnd, h32("agg"), [a.address, b.address])


def test_two_of_four_is_no_quorum_three_of_four_finalizes(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd)
    accepted = _sorted([h.address for h in s.hospitals])
    agg = h32("aggregate")
    s.hospitals[0].attest(rnd, agg, accepted)
    s.hospitals[1].attest(rnd, agg, accepted)
    assert not s.hospitals[0].quorum_reached(rnd)
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=2, activeCount=4):
        s.hospitals[2].finalize(rnd)
    s.hospitals[2].attest(rnd, agg, accepted)
    assert s.hospitals[0].quorum_reached(rnd)
    with reverts(
        "RoundLedgerAttestStillOpen", round=rnd, deadline=s.hospitals[0].round_info(rnd).attest_deadline
    ):
        s.hospitals[3].fail_round(rnd)

    receipt = s.hospitals[3].finalize(rnd)
    key = keccak(abi_encode(["bytes32", "address[]"], [agg, accepted]))
    assert events(s.hospitals[3].round_ledger, "RoundFinalized", receipt) == [
        {
            "round": rnd,
            "aggregateHash": agg,
            "finalizer": s.hospitals[3].address,
            "voteKey": key,
            "votes": 3,
            "activeCount": 4,
            "accepted": accepted,
        }
    ]
    info = s.hospitals[0].round_info(rnd)
    assert info.status == "finalized" and info.aggregate_hash == agg and s.hospitals[0].quorum_reached(rnd)
    # replays of a finished round
    with reverts("RoundLedgerRoundNotOpen", round=rnd, status=FINALIZED):
        s.hospitals[3].commit_update(rnd, h32("late"), 1, 1.0, 0)
    with reverts("RoundLedgerRoundNotOpen", round=rnd, status=FINALIZED):
        s.hospitals[3].finalize(rnd)
    # a late attestation is recorded (here a dissent) but changes nothing
    s.hospitals[3].attest(rnd, h32("other"), accepted)
    late = s.hospitals[0].attestation(rnd, s.hospitals[3].address)
    assert late.aggregate_hash == h32("other")
    info_after = s.hospitals[0].round_info(rnd)
    assert info_after.status == "finalized" and info_after.aggregate_hash == agg
    with reverts("RoundLedgerAlreadyAttested", round=rnd, account=s.hospitals[3].address):
        s.hospitals[3].attest(rnd, agg, accepted)
    assert s.hospitals[1].open_round() == rnd + 1
    # once the next round is open, the finished one takes no more attestations
    with reverts("RoundLedgerRoundNotOpen", round=rnd, status=FINALIZED):
        s.hospitals[0].attest(rnd, agg, accepted)


def test_the_leading_pair_wins_and_ties_fail_the_round(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    _commit_all(s, rnd)
    everyone = [h.address for h in s.hospitals]
    a.attest(rnd, h32("x"), everyone)
    b.attest(rnd, h32("x"), everyone)
    c.attest(rnd, h32("x"), everyone[:3])  # same hash, other set: another pair
    d.attest(rnd, h32("y"), everyone)
    info = a.round_info(rnd)
    assert info.leader_votes == 2 and info.attest_count == 4 and not a.quorum_reached(rnd)
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=2, activeCount=4):
        a.finalize(rnd)
    advance_time(s.w3, 2 * WINDOW + 1)
    receipt = c.fail_round(rnd)
    assert events(c.round_ledger, "RoundFailed", receipt) == [
        {"round": rnd, "caller": c.address, "leaderVotes": 2, "activeCount": 4}
    ]
    assert a.round_info(rnd).status == "failed" and a.credit_supply() == 0
    with reverts("RoundLedgerRoundNotOpen", round=rnd, status=FAILED):
        a.fail_round(rnd)
    assert d.open_round() == rnd + 1


def test_fail_round_refuses_a_quorate_round(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd)
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), [s.hospitals[0].address])
    advance_time(s.w3, 2 * WINDOW + 1)
    with reverts("RoundLedgerQuorumReached", round=rnd):
        s.hospitals[3].fail_round(rnd)
    s.hospitals[3].finalize(rnd)  # still finalizable after the deadline


def test_quorum_counts_active_members_at_finalize(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd)
    for h in s.hospitals[:2]:
        h.attest(rnd, h32("agg"), [s.hospitals[0].address])
    s.admin.revoke(s.hospitals[3].address)  # 2 of 3: 2*3 > 3*2 is false
    assert not s.hospitals[0].quorum_reached(rnd)
    s.admin.revoke(s.hospitals[2].address)  # 2 of 2
    assert s.hospitals[0].quorum_reached(rnd)
    receipt = s.hospitals[1].finalize(rnd)
    assert events(s.hospitals[1].round_ledger, "RoundFinalized", receipt)[0]["activeCount"] == 2


def test_credits_are_proportional_to_samples(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd, samples=(100, 200, 300, 7))
    accepted = [h.address for h in s.hospitals[:3]]  # the fourth update is rejected
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), accepted)
    receipt = s.hospitals[0].finalize(rnd)
    expected = {
        s.hospitals[0].address: CREDIT // 6,
        s.hospitals[1].address: CREDIT // 3,
        s.hospitals[2].address: CREDIT // 2,
    }
    mints = events(s.hospitals[0].credit, "Transfer", receipt)
    assert {m["to"]: m["value"] for m in mints} == expected and all(m["from"] == ZERO for m in mints)
    for account, amount in expected.items():
        assert s.admin.credit_balance(account) == amount
    assert s.admin.credit_balance(s.hospitals[3].address) == 0
    assert s.admin.credit_supply() == sum(expected.values())
    assert CREDIT - s.admin.credit_supply() < len(accepted)  # the rounding dust goes to nobody


def test_equal_samples_split_evenly_and_leave_dust(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd, samples=(5, 5, 5))
    accepted = [h.address for h in s.hospitals[:3]]
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), accepted)
    s.hospitals[0].finalize(rnd)
    assert [s.admin.credit_balance(a) for a in accepted] == [33333333333333333333] * 3
    assert s.admin.credit_supply() == CREDIT - 1


@pytest.mark.parametrize(
    ("quorum", "windows", "error", "args"),
    [
        ((1, 3), (60, 60), "RoundLedgerInvalidQuorum", {"numerator": 1, "denominator": 3}),
        ((3, 3), (60, 60), "RoundLedgerInvalidQuorum", {"numerator": 3, "denominator": 3}),
        ((0, 1), (60, 60), "RoundLedgerInvalidQuorum", {"numerator": 0, "denominator": 1}),
        ((2, 3), (0, 60), "RoundLedgerInvalidWindows", {"commitWindow": 0, "attestWindow": 60}),
    ],
)
def test_round_ledger_constructor_checks(
    ledger_deployed: LedgerSetup, quorum: tuple[int, int], windows: tuple[int, int], error: str, args: dict
) -> None:
    with reverts(error, **args):
        deploy(
            ledger_deployed.w3,
            dev_account(ledger_deployed.w3, 0),
            quorum=quorum,
            commit_window=windows[0],
            attest_window=windows[1],
        )


def test_custom_error_data_is_selector_plus_args(ledger_consortium: LedgerSetup) -> None:
    """The decoder's input, checked against a selector computed here from the signature."""
    s = ledger_consortium
    outsider = s.outsider
    with pytest.raises(ContractCustomError) as info:
        outsider.round_ledger.functions.openRound().call({"from": outsider.address})
    expected = keccak(text="RoundLedgerNotActiveMember(address)")[:4] + abi_encode(
        ["address"], [outsider.address]
    )
    assert info.value.data == "0x" + expected.hex()


def test_a_revert_sends_nothing(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h = s.hospitals[0]
    nonce, block = s.w3.eth.get_transaction_count(h.address), s.w3.eth.block_number
    with reverts("RoundLedgerRoundNotOpen", round=7, status=NONE_R):
        h.commit_update(7, h32("u"), 1, 1.0, 0)
    assert (s.w3.eth.get_transaction_count(h.address), s.w3.eth.block_number) == (nonce, block)
    assert "commit_update" not in h.gas_used


def test_gas_budget(ledger_consortium: LedgerSetup) -> None:
    """commit and attest stay cheap (figures in the report; budgets here guard regressions)."""
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd)
    for h in s.hospitals:
        h.attest(rnd, h32("agg"), [x.address for x in s.hospitals])
    s.hospitals[0].finalize(rnd)
    commits = [g for h in s.hospitals for g in h.gas_used["commit_update"]]
    attests = [g for h in s.hospitals for g in h.gas_used["attest"]]
    assert max(commits) < 120_000
    assert attests[0] < 135_000  # the first vote for a pair stores the pair
    assert max(attests[1:]) < 100_000
    assert s.hospitals[0].gas_used["finalize"][0] < 300_000


# =========================================================================== ContributionCredit


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
    with reverts("ContributionCreditMinterAlreadySet", minter=s.deployment.addresses["RoundLedger"]):
        raw_send(s.admin, f.setMinter(s.admin.address))
    with reverts("ConsortiumAdminUnauthorizedAccount", account=s.outsider.address):
        raw_send(s.outsider, f.setMinter(s.outsider.address))


def test_set_minter_once_on_a_fresh_token(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    art = compile_contracts()["ContributionCredit"]
    factory = s.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = send(s.w3, s.admin.account, {"data": factory.constructor(s.admin.address).data_in_transaction})
    token = s.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    with reverts("ContributionCreditInvalidMinter", minter=ZERO):
        raw_send(s.admin, token.functions.setMinter(ZERO))
    receipt = raw_send(s.admin, token.functions.setMinter(s.hospitals[0].address))
    assert events(token, "MinterSet", receipt) == [{"minter": s.hospitals[0].address}]
    receipt = raw_send(s.hospitals[0], token.functions.mint(s.hospitals[1].address, 5))
    assert events(token, "Transfer", receipt) == [{"from": ZERO, "to": s.hospitals[1].address, "value": 5}]
    with reverts("ContributionCreditInvalidReceiver", receiver=ZERO):
        raw_send(s.hospitals[0], token.functions.mint(ZERO, 5))


def _earn(s: LedgerSetup) -> tuple[LedgerClient, LedgerClient]:
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd, samples=(1, 1))
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), [s.hospitals[0].address, s.hospitals[1].address])
    s.hospitals[0].finalize(rnd)
    return s.hospitals[0], s.hospitals[1]


def test_transfers_are_disabled_until_the_admin_enables_them(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    holder, other = _earn(s)
    f = holder.credit.functions
    with reverts("ContributionCreditTransfersDisabled", **{"from": holder.address, "to": other.address}):
        raw_send(holder, f.transfer(other.address, 1))
    receipt = raw_send(holder, f.approve(other.address, 10))  # approvals are allowed
    assert events(holder.credit, "Approval", receipt) == [
        {"owner": holder.address, "spender": other.address, "value": 10}
    ]
    assert f.allowance(holder.address, other.address).call() == 10
    with reverts("ContributionCreditTransfersDisabled", **{"from": holder.address, "to": other.address}):
        raw_send(other, f.transferFrom(holder.address, other.address, 1))
    with reverts("ConsortiumAdminUnauthorizedAccount", account=holder.address):
        raw_send(holder, f.enableTransfers())

    receipt = raw_send(s.admin, f.enableTransfers())
    assert events(holder.credit, "TransfersEnabled", receipt) == [{"admin": s.admin.address}]
    with reverts("ContributionCreditTransfersAlreadyEnabled"):
        raw_send(s.admin, f.enableTransfers())
    balance = holder.credit_balance(holder.address)
    receipt = raw_send(holder, f.transfer(other.address, 3))
    assert events(holder.credit, "Transfer", receipt) == [
        {"from": holder.address, "to": other.address, "value": 3}
    ]
    assert holder.credit_balance(holder.address) == balance - 3
    with reverts(
        "ContributionCreditInsufficientBalance", sender=holder.address, balance=balance - 3, needed=balance
    ):
        raw_send(holder, f.transfer(other.address, balance))
    with reverts("ContributionCreditInvalidReceiver", receiver=ZERO):
        raw_send(holder, f.transfer(ZERO, 1))
    with reverts("ContributionCreditInsufficientAllowance", spender=other.address, allowance=10, needed=11):
        raw_send(other, f.transferFrom(holder.address, other.address, 11))
    raw_send(other, f.transferFrom(holder.address, s.outsider.address, 4))
    assert f.allowance(holder.address, other.address).call() == 6
    assert holder.credit_balance(s.outsider.address) == 4
    with reverts("ContributionCreditInvalidSpender", spender=ZERO):
        raw_send(holder, f.approve(ZERO, 1))
