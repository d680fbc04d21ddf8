"""RoundLedger on the embedded chain and on anvil (HospitalRegistry: test_registry.py,
ContributionCredit: test_credit.py), laid out like the contract. Reverts are checked by exact custom error and
arguments, events by exact arguments."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from ledger_support import (
    COHORT,
    LedgerSetup,
    deploy_test_contract,
    events,
    h32,
    keys,
    peer_id,
    raw_send,
    register_all,
    reverts,
    setup_on,
)
from web3.exceptions import ContractCustomError

from ledger import (
    LedgerClient,
    LedgerError,
    advance_time,
    compile_contracts,
    deploy,
    dev_account,
    institution_id,
    vote_key,
)
from ledger.compile import EVM_VERSION, error_decoder
from ledger.tx import send

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO = "0x0000000000000000000000000000000000000000"
ZERO32 = b"\x00" * 32
PENDING, ACTIVE, REVOKED = 1, 2, 4
NONE_R, OPEN, FINALIZED, FAILED = 0, 1, 2, 3
CREDIT = 100 * 10**18
WINDOW = 3600
JOIN_BATCH, COMMIT_BATCH = 16, 32  # Crowd members per transaction: ~6M and ~4M gas (< 10M)


def _ts(setup: LedgerSetup, receipt: dict) -> int:
    return int(setup.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def _sorted(addresses: list[str]) -> list[str]:
    return sorted(addresses, key=lambda a: int(a, 16))


def _revoke(s: LedgerSetup, target: LedgerClient) -> None:
    """Revoke ``target`` by the votes of every other Active member (more than 2/3 of 4 is 3)."""
    voters = [h for h in s.hospitals if h.address != target.address and h.is_active(h.address)]
    for h in voters:
        if h.identity(target.address).status in ("active", "suspended"):
            h.revoke(target.address)


def _mask(setup: LedgerSetup, rnd: int, accounts: list[str]) -> int:
    """The accepted bitmask of ``accounts``, computed here from the UpdateCommitted indexes."""
    index = {c.address: c.index for c in setup.admin.commitments(rnd).values()}
    return sum(1 << index[a] for a in set(accounts))


def _commit_all(
    setup: LedgerSetup, rnd: int, samples: tuple[int, ...] = (100, 200, 300, 400)
) -> None:
    for i, (h, n) in enumerate(zip(setup.hospitals, samples, strict=False)):
        h.commit_update(rnd, h32(f"update-{rnd}-{i}"), n, 0.5 + i, 1)


# =========================================================================== compiler


def test_compiled_artifacts_come_from_the_sources() -> None:
    artifacts = compile_contracts()
    assert set(artifacts) == {
        "HospitalRegistry",
        "RoundLedger",
        "RoundBeacon",
        "ContributionCredit",
        "IncentiveDistributor",
    }
    for art in artifacts.values():
        # the CBOR metadata trailer names the compiler: "solc" 0x000825 = 0.8.37
        assert art["deployedBytecode"].endswith("64736f6c63430008250033")
        assert art["bytecode"].endswith(art["deployedBytecode"][2:]) or len(art["bytecode"]) > len(
            art["deployedBytecode"]
        )
    assert EVM_VERSION == "prague"
    assert compile_contracts() == artifacts  # cached, identical


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
            "memberCount": 4,
            "membershipEpoch": 4,  # four admissions so far
        }
    ]
    info = h.round_info(1)
    assert (
        info.status,
        info.opener,
        info.opened_at,
        info.commit_deadline,
        info.attest_deadline,
    ) == (
        "open",
        h.address,
        opened,
        opened + WINDOW,
        opened + 2 * WINDOW,
    )
    assert info.aggregate_hash is None and info.commit_count == 0 and info.attest_count == 0
    assert (info.member_count, info.membership_epoch, info.settled) == (4, 4, False)
    with reverts("RoundLedgerRoundStillOpen", round=1):
        s.hospitals[1].open_round()


def test_only_active_members_act(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    outsider = s.outsider
    with reverts("RoundLedgerNotActiveMember", account=outsider.address):
        outsider.open_round()
    rnd = s.hospitals[0].open_round()
    s.hospitals[0].commit_update(rnd, h32("u0"), 10, 1.0, 0)
    outsider.register(
        institution_id("Pending Clinic"), "12D3KooWpending", *keys(7), COHORT
    )  # Pending, not Active
    with reverts("RoundLedgerNotRoundMember", round=rnd, account=outsider.address):
        outsider.commit_update(rnd, h32("u"), 10, 1.0, 0)
    with reverts("RoundLedgerNotRoundMember", round=rnd, account=outsider.address):
        outsider.attest(rnd, h32("agg"), [s.hospitals[0].address])
    with reverts("RoundLedgerNotActiveMember", account=outsider.address):
        outsider.finalize(rnd)
    with reverts("RoundLedgerNotActiveMember", account=outsider.address):
        outsider.fail_round(rnd)
    _revoke(s, s.hospitals[1])  # by more than 2/3 of the four members: the other three
    with reverts("RoundLedgerNotRoundMember", round=rnd, account=s.hospitals[1].address):
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
    # the batched view returns exactly what the per-committer getter does, in commit order
    per_member = [
        b.round_ledger.functions.commitment(rnd, x).call() for x in (b.address, a.address)
    ]
    accounts, batched = b.round_ledger.functions.commitmentsOf(rnd).call()
    assert accounts == [b.address, a.address] and [tuple(c) for c in batched] == [
        tuple(c) for c in per_member
    ]
    assert [list(x) for x in b.round_ledger.functions.commitmentsOf(rnd + 1).call()] == [[], []]
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


def test_a_round_takes_at_most_max_committers(ledger_deployed: LedgerSetup) -> None:
    """MAX_COMMITTERS (224, the width of the accepted-set bitmask) commit; the next is refused.
    The 224 come from a test-only Crowd contract (tests/contracts/Crowd.sol): its member
    contracts register, are admitted and commit in a few batched transactions."""
    w3 = ledger_deployed.w3
    s = setup_on(
        w3, deploy(w3, dev_account(w3, 0), genesis_seats=1000, bond=0)
    )  # genesis: no quorum
    h = s.hospitals[0]
    limit = s.admin.round_ledger.functions.MAX_COMMITTERS().call()
    assert limit == 224
    h.register(institution_id("The 225th"), peer_id(0), *keys(0), COHORT, bond=0)
    s.admin.admit(h.address)
    crowd = deploy_test_contract(w3, s.admin.account, "Crowd")
    registry, round_ledger = s.admin.registry.address, s.admin.round_ledger.address
    for _ in range(0, limit, JOIN_BATCH):
        raw_send(s.admin, crowd.functions.join(registry, JOIN_BATCH))
    raw_send(s.admin, s.admin.registry.functions.transferAdmin(crowd.address))  # the crowd admits
    raw_send(s.admin, crowd.functions.admitAll(registry, 0, limit))
    for start in range(0, limit, JOIN_BATCH):
        raw_send(s.admin, crowd.functions.declareAll(round_ledger, start, start + JOIN_BATCH))
    assert s.admin.active_count() == limit + 1
    rnd = h.open_round()
    for start in range(0, limit, COMMIT_BATCH):
        receipt = raw_send(
            s.admin, crowd.functions.commitAll(round_ledger, rnd, start, start + COMMIT_BATCH)
        )
        assert receipt["gasUsed"] < 8_000_000
    assert s.admin.round_info(rnd).commit_count == limit
    with reverts("RoundLedgerRoundFull", round=rnd, limit=limit):
        h.commit_update(rnd, h32("one too many"), 1, 1.0, 0)
    # accepting all 224 costs what accepting one does: the set is a bitmask (issue 14: <= 100k)
    h.attest_mask(rnd, h32("agg"), (1 << limit) - 1)
    assert h.gas_used["attest"][0] < 100_000
    assert len(h.attestation(rnd, h.address).accepted) == limit  # type: ignore[union-attr]


def test_attest_records_the_vote_pair(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd)
    accepted = _sorted([h.address for h in s.hospitals[:3]])
    agg = h32("aggregate")
    mask = 0b0111  # hospitals 0, 1, 2 committed first, second and third
    # independent of the contract and of ledger.records.vote_key
    key = keccak(abi_encode(["bytes32", "uint256"], [agg, mask]))
    voter = s.hospitals[3]
    seen = s.w3.eth.get_block(s.w3.eth.block_number - 1)  # the latest block's parent
    receipt = voter.attest(
        rnd, agg, list(reversed(accepted))
    )  # the client builds the mask, reads the head
    assert events(voter.round_ledger, "AggregateAttested", receipt) == [
        {
            "round": rnd,
            "account": voter.address,
            "aggregateHash": agg,
            "voteKey": key,
            "acceptedMask": mask,
            "seenNumber": seen["number"],
            "seenHead": bytes(seen["hash"]),
        }
    ]
    att = voter.attestation(rnd, voter.address)
    assert att is not None and (att.vote_key, att.aggregate_hash, list(att.accepted)) == (
        key,
        agg,
        accepted,
    )
    assert (att.accepted_mask, att.struck) == (mask, False)
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
    number, head = c.chain_head()
    attest = a.round_ledger.functions.attest
    with reverts("RoundLedgerAcceptedNotCommitted", round=rnd, acceptedMask=0b101, commitCount=2):
        raw_send(c, attest(rnd, h32("agg"), 0b101, number, head))  # index 2: nobody committed third
    with reverts(
        "RoundLedgerAcceptedNotCommitted", round=rnd, acceptedMask=1 << 255, commitCount=2
    ):
        raw_send(c, attest(rnd, h32("agg"), 1 << 255, number, head))
    # the head an attester says it saw must be a block of this chain (blockhash)
    for bad_number, bad_head in (
        (number, h32("not a block")),
        (number + 1, head),
        (number, ZERO32),
    ):
        with reverts("RoundLedgerUnknownHead", seenNumber=bad_number, seenHead=bad_head):
            c.attest(rnd, h32("agg"), [a.address, b.address], seen=(bad_number, bad_head))
    with pytest.raises(LedgerError, match="made no commitment"):  # refused before sending
        c.attest(rnd, h32("agg"), [a.address, d.address])
    with reverts(
        "RoundLedgerInvalidAttestation", round=rnd, aggregateHash=h32("agg"), acceptedMask=0
    ):
        c.attest(rnd, h32("agg"), [])
    with reverts(
        "RoundLedgerInvalidAttestation", round=rnd, aggregateHash=ZERO32, acceptedMask=0b11
    ):
        c.attest(rnd, ZERO32, [a.address, b.address])
    c.attest(rnd, h32("agg"), [a.address, b.address])  # a non-committer may attest
    with reverts("RoundLedgerAlreadyAttested", round=rnd, account=c.address):
        c.attest(rnd, h32("other"), [a.address])
    with reverts("RoundLedgerRoundNotOpen", round=rnd + 1, status=NONE_R):
        d.attest_mask(rnd + 1, h32("agg"), 0b1)
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
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=2, memberCount=4):
        s.hospitals[2].finalize(rnd)
    s.hospitals[2].attest(rnd, agg, accepted)
    assert s.hospitals[0].quorum_reached(rnd)
    with reverts(
        "RoundLedgerAttestStillOpen",
        round=rnd,
        deadline=s.hospitals[0].round_info(rnd).attest_deadline,
    ):
        s.hospitals[3].fail_round(rnd)

    receipt = s.hospitals[3].finalize(rnd)
    key = keccak(abi_encode(["bytes32", "uint256"], [agg, 0b1111]))
    assert events(s.hospitals[3].round_ledger, "RoundFinalized", receipt) == [
        {
            "round": rnd,
            "aggregateHash": agg,
            "finalizer": s.hospitals[3].address,
            "voteKey": key,
            "votes": 3,
            "memberCount": 4,
            "acceptedMask": 0b1111,
        }
    ]
    info = s.hospitals[0].round_info(rnd)
    assert (
        info.status == "finalized"
        and info.aggregate_hash == agg
        and s.hospitals[0].quorum_reached(rnd)
    )
    # replays of a finished round
    with reverts("RoundLedgerRoundNotOpen", round=rnd, status=FINALIZED):
        s.hospitals[3].commit_update(rnd, h32("late"), 1, 1.0, 0)
    with reverts("RoundLedgerRoundNotOpen", round=rnd, status=FINALIZED):
        s.hospitals[3].finalize(rnd)
    # a late attestation is recorded (here a dissent) but changes nothing
    receipt = s.hospitals[3].attest(rnd, h32("other"), accepted)
    other = keccak(abi_encode(["bytes32", "uint256"], [h32("other"), 0b1111]))
    assert events(s.admin.round_ledger, "DissentRecorded", receipt) == [
        {"round": rnd, "account": s.hospitals[3].address, "voteKey": other, "winningKey": key}
    ]
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
    with reverts("RoundLedgerQuorumNotReached", round=rnd, votes=2, memberCount=4):
        a.finalize(rnd)
    advance_time(s.w3, 2 * WINDOW + 1)
    receipt = c.fail_round(rnd)
    assert events(c.round_ledger, "RoundFailed", receipt) == [
        {"round": rnd, "caller": c.address, "leaderVotes": 2, "memberCount": 4}
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


def test_credits_are_proportional_to_samples(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd, samples=(100, 200, 300, 7))
    accepted = [h.address for h in s.hospitals[:3]]  # the fourth update is rejected
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), accepted)
    s.hospitals[0].finalize(rnd)
    receipt = s.hospitals[0].last_receipt  # the settle transaction mints
    assert receipt is not None and s.admin.round_info(rnd).settled
    expected = {
        s.hospitals[0].address: CREDIT // 6,
        s.hospitals[1].address: CREDIT // 3,
        s.hospitals[2].address: CREDIT // 2,
    }
    mints = events(s.hospitals[0].credit, "Transfer", receipt)
    assert {m["to"]: m["value"] for m in mints} == expected and all(
        m["from"] == ZERO for m in mints
    )
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
    ledger_deployed: LedgerSetup,
    quorum: tuple[int, int],
    windows: tuple[int, int],
    error: str,
    args: dict,
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
    assert attests[0] < 120_000  # the first vote for a pair stores the pair
    assert max(attests[1:]) < 100_000
    assert s.hospitals[0].gas_used["finalize"][0] < 300_000


def test_gas_budget_for_a_split_vote(ledger_consortium: LedgerSetup) -> None:
    """The first vote for a pair that does not lead stores a new tally and stays under 120k."""
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    _commit_all(s, rnd)
    everyone = [h.address for h in s.hospitals]
    a.attest(rnd, h32("x"), everyone)
    b.attest(rnd, h32("y"), everyone)  # a new pair, not leading
    c.attest(rnd, h32("y"), everyone)  # takes the lead
    d.attest(rnd, h32("x"), everyone[:3])  # a new pair with a smaller set
    attests = [h.gas_used["attest"][0] for h in s.hospitals]
    assert max(attests) < 120_000, attests


# =========================================================================== rejections and dissent


def test_record_rejections(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    for h in (a, b, c):
        h.commit_update(rnd, h32(f"u-{h.address}"), 10, 1.0, 0)
    receipt = a.record_rejections(rnd, {b.address: "hash-mismatch", c.address: 2})
    assert events(a.round_ledger, "UpdateRejected", receipt) == [
        {"round": rnd, "account": b.address, "reporter": a.address, "reason": 1},
        {"round": rnd, "account": c.address, "reporter": a.address, "reason": 2},
    ]
    f = a.round_ledger.functions
    assert (
        f.rejection(rnd, a.address, b.address).call() == 1
        and a.rejection_count(rnd, b.address) == 1
    )
    assert f.rejection(rnd, b.address, a.address).call() == 0
    d.record_rejections(rnd, {b.address: 6})
    assert a.rejection_count(rnd, b.address) == 2
    with reverts("RoundLedgerAlreadyRejected", round=rnd, reporter=a.address, account=b.address):
        a.record_rejections(rnd, {b.address: 3})
    with reverts("RoundLedgerInvalidRejection", round=rnd, account=b.address, reason=0):
        c.record_rejections(rnd, {b.address: 0})
    with reverts("RoundLedgerInvalidRejection", round=rnd, account=c.address, reason=1):
        c.record_rejections(rnd, {c.address: 1})
    with reverts("RoundLedgerNotCommitted", round=rnd, account=d.address):
        c.record_rejections(rnd, {d.address: 1})
    with reverts("RoundLedgerLengthMismatch", accounts=1, reasons=2):
        raw_send(c, f.recordRejections(rnd, [b.address], [1, 2]))
    with reverts("RoundLedgerNotActiveMember", account=s.outsider.address):
        s.outsider.record_rejections(rnd, {b.address: 1})
    with reverts("RoundLedgerRoundNotOpen", round=rnd + 1, status=NONE_R):
        c.record_rejections(rnd + 1, {b.address: 1})
    with pytest.raises(LedgerError, match="unknown rejection reason"):
        c.record_rejections(rnd, {b.address: "bored"})
    deadline = a.round_info(rnd).attest_deadline
    advance_time(s.w3, 2 * WINDOW + 1)
    with reverts("RoundLedgerAttestClosed", round=rnd, deadline=deadline):
        c.record_rejections(rnd, {b.address: 1})


def test_record_alert(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, *_ = s.hospitals
    with reverts("RoundLedgerUnknownRound", round=1):
        a.record_alert(1, "drift", {"round": 1})
    rnd = a.open_round()
    body = {
        "kind": "accuracy_drop",
        "round": rnd,
        "message": "validation AUC 0.80 is 0.15 below the best round",
    }
    receipt, body_hash = b.record_alert(rnd, "accuracy_drop", body)
    # the hash is keccak-256 of the canonical JSON, recomputed here by hand
    canonical = (
        '{"kind":"accuracy_drop","message":"validation AUC 0.80 is 0.15 below the best round",'
        f'"round":{rnd}}}'
    )
    assert body_hash == keccak(text=canonical)
    kind = b"accuracy_drop" + b"\x00" * 19
    assert events(a.round_ledger, "AlertRecorded", receipt) == [
        {"round": rnd, "reporter": b.address, "kind": kind, "bodyHash": body_hash}
    ]
    assert receipt["gasUsed"] < 40_000  # nothing stored: 32,488 measured on the embedded chain
    f = a.round_ledger.functions
    with reverts("RoundLedgerInvalidAlert", round=rnd, kind=ZERO32, bodyHash=body_hash):
        raw_send(a, f.recordAlert(rnd, ZERO32, body_hash))
    with reverts("RoundLedgerInvalidAlert", round=rnd, kind=kind, bodyHash=ZERO32):
        raw_send(a, f.recordAlert(rnd, kind, ZERO32))
    with reverts("RoundLedgerNotActiveMember", account=s.outsider.address):
        s.outsider.record_alert(rnd, "drift", body)
    with reverts("RoundLedgerUnknownRound", round=rnd + 1):
        a.record_alert(rnd + 1, "drift", body)
    with pytest.raises(LedgerError, match="alert kind must be 1-32 printable ASCII"):
        a.record_alert(rnd, "x" * 33, body)
    advance_time(s.w3, 2 * WINDOW + 1)  # no window: an alert follows the round's end
    _, later = a.record_alert(rnd, "bias_shift", {"round": rnd})
    assert later == keccak(text=f'{{"round":{rnd}}}')


def test_dissent_is_visible_before_and_after_finalization(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    _commit_all(s, rnd)
    everyone = _sorted([h.address for h in s.hospitals])
    a.attest(rnd, h32("agg"), everyone)
    b.attest(rnd, h32("other"), everyone[:2])  # dissent before finalization
    c.attest(rnd, h32("agg"), everyone)
    assert a.dissent_count(rnd) == 1
    assert a.attestation(rnd, b.address).with_leader is False  # type: ignore[union-attr]
    other = a.attestation(rnd, b.address)
    assert (
        other is not None
        and other.aggregate_hash == h32("other")
        and list(other.accepted) == everyone[:2]
    )
    d.attest(rnd, h32("agg"), everyone)
    d.finalize(rnd)
    assert a.dissent_count(rnd) == 1
    # a member admitted after the round opened takes part from the next round only
    s.outsider.register(institution_id("Late Clinic"), "12D3KooWlate", *keys(8), COHORT)
    for h in (a, b, c):
        h.endorse(s.outsider.address)
    s.outsider.admit(s.outsider.address)
    with reverts("RoundLedgerNotRoundMember", round=rnd, account=s.outsider.address):
        s.outsider.attest(rnd, h32("late"), everyone)
    assert a.attestation(rnd, a.address).with_leader is True  # type: ignore[union-attr]
    assert a.round_info(rnd).aggregate_hash == h32("agg")


def test_a_late_agreement_records_no_dissent(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd)
    everyone = [h.address for h in s.hospitals]
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), everyone)
    s.hospitals[0].finalize(rnd)
    receipt = s.hospitals[3].attest(rnd, h32("agg"), everyone)
    assert events(s.admin.round_ledger, "DissentRecorded", receipt) == []
    assert (
        s.admin.dissent_count(rnd) == 0
        and s.admin.votes_for(rnd, vote_key(h32("agg"), 0b1111)) == 4
    )


def test_the_no_aggregate_marker_cannot_be_attested(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd)
    one = (1).to_bytes(32, "big")
    with reverts("RoundLedgerInvalidAttestation", round=rnd, aggregateHash=one, acceptedMask=1):
        s.hospitals[0].attest(rnd, one, [s.hospitals[0].address])


# =========================================================================== credit schemes and slashing


def _deploy_with(s: LedgerSetup, **kwargs: object) -> LedgerSetup:
    t = setup_on(s.w3, deploy(s.w3, dev_account(s.w3, 0), **kwargs))  # type: ignore[arg-type]
    register_all(t)
    return t


def test_equal_credit_scheme(ledger_deployed: LedgerSetup) -> None:
    s = _deploy_with(ledger_deployed, credit_scheme="equal")
    assert s.admin.ledger_config()["credit_scheme"] == "equal"
    rnd = s.hospitals[0].open_round()
    _commit_all(s, rnd, samples=(1, 1000, 5))
    accepted = [h.address for h in s.hospitals[:3]]
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), accepted)
    s.hospitals[0].finalize(rnd)
    assert [s.admin.credit_balance(a) for a in accepted] == [CREDIT // 3] * 3


def test_slashing_burns_credits_of_left_out_committers(ledger_deployed: LedgerSetup) -> None:
    s = _deploy_with(ledger_deployed, slash_per_rejection=10 * 10**18)
    a, b, c, d = s.hospitals
    assert s.admin.ledger_config() == {
        "commit_window": WINDOW,
        "attest_window": WINDOW,
        "credit_per_round": CREDIT,
        "quorum": (2, 3),
        "credit_scheme": "samples",
        "slash_per_rejection": 10 * 10**18,
    }
    rnd = a.open_round()
    _commit_all(s, rnd, samples=(1, 1, 1, 1))
    for h in (a, b, c):
        h.attest(rnd, h32("r1"), [a.address, b.address, c.address, d.address])
    a.finalize(rnd)
    assert s.admin.credit_balance(d.address) == CREDIT // 4
    rnd = a.open_round()
    _commit_all(s, rnd, samples=(1, 1, 1, 1))
    for h in (a, b, c):
        h.attest(rnd, h32("r2"), [a.address, b.address, c.address])  # d's update left out
    a.finalize(rnd)
    receipt = a.last_receipt  # the settle transaction slashes
    penalty = 10 * 10**18
    assert events(a.round_ledger, "ContributorSlashed", receipt) == [
        {"round": rnd, "account": d.address, "amount": penalty}
    ]
    assert events(a.credit, "Slashed", receipt) == [{"account": d.address, "amount": penalty}]
    assert s.admin.credit_balance(d.address) == CREDIT // 4 - penalty
    assert s.admin.credit_supply() == CREDIT // 4 * 4 + CREDIT // 3 * 3 - penalty


def test_slashing_takes_at_most_the_balance(ledger_deployed: LedgerSetup) -> None:
    s = _deploy_with(ledger_deployed, slash_per_rejection=10**30)
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    _commit_all(s, rnd)
    for h in (a, b, c):
        h.attest(rnd, h32("agg"), [a.address])
    a.finalize(rnd)
    receipt = a.last_receipt
    assert [e["account"] for e in events(a.round_ledger, "ContributorSlashed", receipt)] == [
        b.address,
        c.address,
        d.address,
    ]
    assert all(e["amount"] == 0 for e in events(a.round_ledger, "ContributorSlashed", receipt))


def test_round_ledger_scheme_check(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    with pytest.raises(LedgerError, match="credit_scheme must be one of"):
        deploy(s.w3, dev_account(s.w3, 0), credit_scheme="lottery")
    art = compile_contracts()["RoundLedger"]
    factory = s.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    ctor = factory.constructor(ZERO, ZERO, (60, 60, 0, 2, 3, 2, 0))
    with reverts("RoundLedgerInvalidScheme", scheme=2):
        send(s.w3, s.admin.account, {"data": ctor.data_in_transaction}, decoder=error_decoder())
