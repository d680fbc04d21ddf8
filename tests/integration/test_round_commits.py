"""RoundLedger on the embedded chain and on anvil, a round's opening and its commitments: who
may act, what a commitment records, what is refused, and the most committers a round takes.
Reverts are checked by exact custom error and arguments, events by exact arguments."""

from __future__ import annotations

import pytest
from ledger_support import (
    COHORT,
    LedgerSetup,
    block_time,
    deploy_test_contract,
    events,
    h32,
    keys,
    peer_id,
    raw_send,
    reverts,
    revoke_by_quorum,
    setup_on,
)

from ledger import (
    advance_time,
    deploy,
    dev_account,
    institution_id,
)

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO32 = b"\x00" * 32
NONE_R = 0
WINDOW = 3600
JOIN_BATCH, COMMIT_BATCH = 16, 32  # Crowd members per transaction: ~6M and ~4M gas (< 10M)


def test_open_round(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h = s.hospitals[0]
    assert h.current_round() == 0
    assert h.round_info(1).status == "none"
    rnd = h.open_round()
    assert rnd == 1 and h.current_round() == 1
    opened = block_time(s, h.last_receipt)  # type: ignore[arg-type]
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
    revoke_by_quorum(s, s.hospitals[1])  # by more than 2/3 of the four members: the other three
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
