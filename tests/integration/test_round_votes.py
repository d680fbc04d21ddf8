"""RoundLedger on the embedded chain and on anvil, a round's votes: attestations of (aggregate,
accepted set) pairs, quorum and finalization, ties and failed rounds, recorded rejections and
alerts, and dissent before and after finalization. Reverts are checked by exact custom error
and arguments, events by exact arguments."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from ledger_support import (
    COHORT,
    LedgerSetup,
    by_address,
    commit_all,
    events,
    h32,
    keys,
    raw_send,
    reverts,
)

from ledger import (
    LedgerError,
    advance_time,
    institution_id,
    vote_key,
)

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO32 = b"\x00" * 32
NONE_R, FINALIZED, FAILED = 0, 2, 3
WINDOW = 3600


def test_attest_records_the_vote_pair(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    commit_all(s, rnd)
    accepted = by_address([h.address for h in s.hospitals[:3]])
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
    commit_all(s, rnd)
    accepted = by_address([h.address for h in s.hospitals])
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
    commit_all(s, rnd)
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
    commit_all(s, rnd)
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), [s.hospitals[0].address])
    advance_time(s.w3, 2 * WINDOW + 1)
    with reverts("RoundLedgerQuorumReached", round=rnd):
        s.hospitals[3].fail_round(rnd)
    s.hospitals[3].finalize(rnd)  # still finalizable after the deadline


def test_the_no_aggregate_marker_cannot_be_attested(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    commit_all(s, rnd)
    one = (1).to_bytes(32, "big")
    with reverts("RoundLedgerInvalidAttestation", round=rnd, aggregateHash=one, acceptedMask=1):
        s.hospitals[0].attest(rnd, one, [s.hospitals[0].address])


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
    commit_all(s, rnd)
    everyone = by_address([h.address for h in s.hospitals])
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
    commit_all(s, rnd)
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
