"""The per-round committee on chain (issue 19): RoundLedger draws `committeeSize` attesters from
the round's beacon over the registry's Active slots, refuses everyone else's attestation
with its exact custom error, and finalizes at more than 2/3 of the committee.

The independent reference for the draw is node.consensus.committee (a second implementation,
in Python with eth_hash's keccak), compared with the contract's committeeSeat on 132 keys and
sizes from 1 to 1000.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
import trio
from ledger_support import (
    COHORT,
    LedgerSetup,
    committee_chain,
    committee_setup,
    events,
    h32,
    keys,
    open_with_beacon,
    peer_id,
    reverts,
)

from ledger import LedgerClient, institution_id
from ledger.beacon import beacon_info
from ledger.committee import (
    committee_info,
    seat_on_chain,
    set_committee_size,
    slot_count,
    slot_of,
)
from node.consensus.committee import committee_key, seat
from node.consensus.update import parameters_hash
from node.errors import NotAuthorized
from node.peer.committee import AGGREGATE_KIND, RoundCommittee
from node.service.cli import committee_status
from node.service.modelsync import ModelOffer, encode_offer

N, K = 6, 4


@pytest.fixture(scope="module")
def _committee_base() -> tuple[object, object]:
    return committee_chain(N, K)


@pytest.fixture
def six(_committee_base: tuple[object, object]) -> Iterator[LedgerSetup]:
    yield committee_setup(*_committee_base, N)  # type: ignore[arg-type]


def _open_with_beacon(s: LedgerSetup, reveal: int = N) -> int:
    return open_with_beacon(s, reveal)


def _split(s: LedgerSetup, round_: int) -> tuple[list[LedgerClient], list[LedgerClient]]:
    """(committee, the others) by the Python draw over the members' registry slots."""
    info = committee_info(s.hospitals[0], round_)
    assert info.key == committee_key(beacon_info(s.hospitals[0], round_).value or b"", round_)
    assert info.key is not None and info.domain == N
    seats = {h.address: seat(info.key, slot_of(h, h.address).slot, N) for h in s.hospitals}
    inside = [h for h in s.hospitals if seats[h.address] < info.size]
    return inside, [h for h in s.hospitals if seats[h.address] >= info.size]


def test_python_draw_equals_the_contracts(six: LedgerSetup) -> None:
    rng = random.Random(19)
    client = six.hospitals[0]
    for n in (1, 2, 3, 5, 6, 16, 17, 64, 100, 256, 1000):
        for _ in range(12):
            key = rng.randbytes(32)
            slot = rng.randrange(n)
            assert seat_on_chain(client, key, slot, n) == seat(key, slot, n)


def test_only_the_committee_attests_and_two_thirds_of_it_finalize(six: LedgerSetup) -> None:
    round_ = _open_with_beacon(six)
    info = committee_info(six.hospitals[0], round_)
    assert (info.size, info.domain) == (K, N) and info.key is not None
    inside, outside = _split(six, round_)
    assert len(inside) == K and len(outside) == N - K
    accepted = [h.address for h in six.hospitals]
    agg = h32(f"aggregate-{round_}")
    for h in outside:
        s = seat(info.key, slot_of(h, h.address).slot, N)
        with reverts("RoundLedgerNotCommitteeMember", round=round_, account=h.address, seat=s):
            h.attest(round_, agg, accepted)
    for h in inside[:2]:
        h.attest(round_, agg, accepted)
    # 2 of 4: 2 * 3 > 4 * 2 is false
    assert not six.hospitals[0].round_ledger.functions.quorumReached(round_).call()
    with reverts("RoundLedgerQuorumNotReached", round=round_, votes=2, memberCount=K):
        outside[0].finalize(round_)
    inside[2].attest(round_, agg, accepted)  # 3 of 4 > 2/3
    # the seat check is O(1): one Feistel evaluation, no loop over members
    assert max(g for h in inside[:3] for g in h.gas_used["attest"]) < 130_000
    receipt = outside[0].finalize(round_, settle=False)
    (ev,) = events(six.hospitals[0].round_ledger, "RoundFinalized", receipt)
    assert (ev["votes"], ev["memberCount"], ev["aggregateHash"]) == (3, K, agg)


def test_only_the_committee_rejects_an_update(six: LedgerSetup) -> None:
    """A follower receives no update, so it has none to reject: its accusation is refused as
    its vote is; a seat's rejection of a follower's update is recorded."""
    round_ = _open_with_beacon(six)
    info = committee_info(six.hospitals[0], round_)
    assert info.key is not None
    inside, outside = _split(six, round_)
    follower, seat_holder = outside[0], inside[0]
    s = seat(info.key, slot_of(follower, follower.address).slot, N)
    with reverts("RoundLedgerNotCommitteeMember", round=round_, account=follower.address, seat=s):
        follower.record_rejections(round_, {seat_holder.address: "hash-mismatch"})
    receipt = seat_holder.record_rejections(round_, {follower.address: "hash-mismatch"})
    (ev,) = events(six.hospitals[0].round_ledger, "UpdateRejected", receipt)
    assert (ev["account"], ev["reporter"], ev["reason"]) == (
        follower.address,
        seat_holder.address,
        1,
    )


def test_credits_pay_the_accepted_update_not_the_seat(six: LedgerSetup) -> None:
    """Settling mints ``creditPerRound`` (100 credits by default) over the accepted committers
    by samples (100 each here): one sixth to each of the six, whether it attested (three
    seats), sat without voting (the fourth seat) or could not vote (the two followers)."""
    round_ = _open_with_beacon(six)
    inside, outside = _split(six, round_)
    accepted = [h.address for h in six.hospitals]
    for h in inside[:3]:
        h.attest(round_, h32(f"aggregate-{round_}"), accepted)
    outside[0].finalize(round_)  # and settle
    share = 100 * 10**18 * 100 // (6 * 100)
    balances = {h.address: six.admin.credit_balance(h.address) for h in six.hospitals}
    assert balances == {h.address: share for h in six.hospitals}


def test_no_attestation_before_the_beacon_draws_the_committee(six: LedgerSetup) -> None:
    round_ = _open_with_beacon(six, reveal=3)  # 3 of 6 revealed, window still open
    assert beacon_info(six.hospitals[0], round_).status == "revealing"
    assert committee_info(six.hospitals[0], round_).key is None
    with reverts("RoundLedgerCommitteeNotDrawn", round=round_):
        six.hospitals[0].attest(round_, h32("agg"), [six.hospitals[0].address])


def test_a_freed_slot_is_taken_again_and_a_small_consortium_has_no_committee(
    six: LedgerSetup,
) -> None:
    assert sorted(slot_of(h, h.address).slot for h in six.hospitals) == list(range(N))
    first, second = six.hospitals[0], six.hospitals[1]
    freed = slot_of(first, first.address).slot
    first.exit()
    assert slot_of(first, first.address).since == 0 and slot_count(first) == N
    newcomer = six.outsider
    newcomer.register(institution_id("newcomer"), peer_id(99), *keys(99), COHORT)
    six.admin.admit(newcomer.address)  # takes the freed slot: slots stay within 0..N-1
    assert slot_of(newcomer, newcomer.address).slot == freed and slot_count(first) == N
    newcomer.exit()
    second.exit()  # 4 members left: committeeSize 4 is everyone
    round_ = second.current_round() + 1
    six.hospitals[2].open_round()
    assert committee_info(second, round_).size == 0


def test_committee_size_is_fixed_before_the_first_round(six: LedgerSetup) -> None:
    with reverts("RoundLedgerCommitteeFixed", caller=six.hospitals[0].address):
        set_committee_size(six.hospitals[0], 2)
    six.hospitals[0].open_round()
    with reverts("RoundLedgerCommitteeFixed", caller=six.admin.address):
        set_committee_size(six.admin, 2)


def test_the_beacon_binds_once(six: LedgerSetup) -> None:
    fn = six.admin.round_ledger.functions.bindBeacon(six.admin.beacon.address)
    with reverts(
        "RoundLedgerInvalidBeaconBinding", caller=six.admin.address, beacon=six.admin.beacon.address
    ):
        six.admin._send("bindBeacon", fn)


def test_node_status_reports_k_and_the_tail(six: LedgerSetup) -> None:
    status = committee_status(six.hospitals[0], 2)
    # n=6, f=2, k=4: P[X >= 2] = C(2,2) C(4,2) / C(6,4) = 6/15, the hypergeometric tail
    assert (status["k"], status["members"], status["tolerated_f"]) == (K, N, 2)
    assert status["tail_probability"] == pytest.approx(6 / 15)
    assert status["default_k"] == N  # 3f + 1 > n: no smaller committee meets 1e-6


def test_a_follower_refuses_an_aggregate_the_chain_did_not_finalize(six: LedgerSetup) -> None:
    """A committee member that sends a follower other parameters than the finalized aggregate
    is refused: the follower files an offer only if its hash is the chain's."""
    params = np.array([0.5, -1.25, 2.0], dtype=np.float32)
    round_ = _open_with_beacon(six)
    inside, outside = _split(six, round_)
    for h in inside[:3]:
        h.attest(round_, parameters_hash(params), [h.address for h in six.hospitals])
    outside[0].finalize(round_, settle=False)
    follower = RoundCommittee(SimpleNamespace(ledger=outside[0], global_params=np.zeros(3)))
    sender = SimpleNamespace(address=inside[0].address)
    honest = encode_offer(ModelOffer(round_, params))
    with pytest.raises(NotAuthorized, match="asked for no aggregate"):
        trio.run(follower.on_blob, sender, AGGREGATE_KIND, honest)
    follower.expect(round_)  # what fetch() does before it asks the committee
    forged = encode_offer(ModelOffer(round_, params * 10))
    with pytest.raises(NotAuthorized, match="not round .* finalized aggregate"):
        trio.run(follower.on_blob, sender, AGGREGATE_KIND, forged)
    trio.run(follower.on_blob, sender, AGGREGATE_KIND, honest)
    offered = follower.offered(round_)
    assert offered is not None and np.array_equal(offered, params)
