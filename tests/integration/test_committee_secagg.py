"""secagg with the aggregation committee as its aggregators (issue 19, docs/secagg.md): six
hospitals on the embedded chain with real libp2p hosts, a committee of four drawn per round from
the beacon, FedAvg over Bonawitz et al. 2017 masked inputs.

The reference for each aggregate is the fixed-point FedAvg of the survivors' recorded updates in
numpy integers (:func:`tests.integration.test_protection_secagg.reference_hash`), independent of
:mod:`node.crypto.secagg.masking`; the chain must carry its hash.

* Without failures: each round finalizes on that hash, attested by exactly the four seats; the
  followers adopt it; every member sends its masked vector to the seats only (k blobs), deals
  shares to the seats only, and a follower signs and releases nothing.
* Round 1: a follower commits and then vanishes before its masked vector leaves. The seats
  unmask the sum without it from their shares of its mask key, and the round finalizes.
  Round 2: a seat crashes right after the draw; the three others (the quorum, and the Shamir
  threshold over four seats) unmask and finalize.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from ledger import LedgerClient, collect, load_state
from ledger.committee import committee_info
from node.peer.mods import LeaveRound, PeerMod
from node.peer.pipeline import HospitalPeer, RoundOutcome
from node.sim.demo import DemoConfig, run_demo
from tests.integration.test_protection_secagg import reference_hash
from tests.node_support import Record

pytestmark = pytest.mark.slow

N, K = 6, 4


class Sends(PeerMod):
    """Records, per (round, sender), the recipients of each kind of blob it sends and, per
    round, every peer's view of the committee."""

    def __init__(self) -> None:
        self.to: dict[tuple[int, str], dict[str, list[str]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.seats: dict[int, set[frozenset[str] | None]] = defaultdict(set)

    async def train(self, peer, round_, call_next):
        self.seats[round_].add(peer.committee.members(round_))
        return await call_next(round_)

    async def outgoing(self, peer, recipient, kind, blob):
        self.to[(peer.completed_round + 1, peer.address.lower())][kind].append(
            recipient.address.lower()
        )
        return blob


def _config(tmp_path, rounds: int) -> DemoConfig:
    return DemoConfig(
        hospitals=N,
        rounds=rounds,
        committee=K,
        rule="fedavg",
        protection="secagg",
        chain_state=tmp_path / "chain.json",
        progress=False,
        state_dir=tmp_path,
        # a crashed seat never commits, so the others hold their blobs (commit before reveal)
        # until the window closes; the beacon's reveal window is a quarter of it (see
        # tests/integration/test_committee_peers.py for why not 30 s)
        commit_window=60,
    )


def _sum_hash(round_: int, survivors: list[str]) -> str:
    """The reference hash of the FedAvg of ``survivors``' recorded updates (any case), with the
    global parameters the first of them trained from."""
    spelt = {a.lower(): a for _, a in Record.trained}
    expected, float_error = reference_hash(round_, [spelt[a.lower()] for a in survivors])
    assert float_error < 1e-4  # fixed point costs nothing that matters
    return expected.hex()


def test_secagg_with_a_committee_of_four_of_six_finalizes_the_exact_sum(tmp_path) -> None:
    Record.trained.clear()
    sends = Sends()
    report = run_demo(_config(tmp_path, 2), mods=[Record(), sends])
    w3, deployment = load_state(tmp_path / "chain.json")
    chain = LedgerClient(w3, deployment)
    everyone = [h["address"] for h in report["hospitals"].values()]
    for row in report["rounds"]:
        round_ = row["round"]
        info = chain.round_info(round_)
        assert row["finalized"] and info.status == "finalized"
        assert row["aggregate_hash"] == info.aggregate_hash.hex()  # followers adopted it too
        assert info.aggregate_hash.hex() == _sum_hash(round_, everyone)
        assert committee_info(chain, round_).size == K and info.attest_count == K
        (seats,) = sends.seats[round_]  # every peer drew the same committee
        assert seats is not None and len(seats) == K
        for address in map(str.lower, everyone):
            sent = sends.to[(round_, address)]
            others = seats - {address}
            assert sorted(sent["update"]) == sorted(others), (round_, address, sent)
            assert sorted(sent["secagg-shares"]) == sorted(others)
            assert len(sent["secagg-keys"]) == N - 1
            if address not in seats:  # a follower holds no shares: it signs and releases none
                assert "secagg-consistency" not in sent and "secagg-unmask" not in sent
    assert report["peers_agree"]
    assert [c["check"] for c in collect(w3, deployment)["checks"] if not c["ok"]] == []


class FollowerVanishesThenSeatCrashes(PeerMod):
    """Run by every peer. Round 1: the follower with the lowest address leaves right after
    committing (its masked vector never leaves). Round 2: the seat with the highest address
    leaves right after the draw (it neither trains, commits nor unmasks)."""

    def __init__(self) -> None:
        self.gone: dict[int, str] = {}

    async def train(self, peer, round_, call_next):
        seats = peer.committee.members(round_)
        if round_ == 2 and seats and peer.address.lower() == max(seats):
            self.gone[2] = peer.address.lower()
            raise LeaveRound("crashed")
        return await call_next(round_)

    async def hold(self, peer, round_, call_next):
        seats = peer.committee.members(round_) or frozenset()
        followers = {m.address.lower() for m in peer.active_members()} - seats
        if round_ == 1 and peer.address.lower() == min(followers):
            self.gone[1] = peer.address.lower()
            raise LeaveRound("vanished after committing")
        return await call_next(round_)


def test_a_vanished_follower_is_unmasked_and_a_crashed_seat_is_covered(tmp_path) -> None:
    Record.trained.clear()
    mod = FollowerVanishesThenSeatCrashes()
    outcomes: dict[tuple[str, int], RoundOutcome] = {}

    class Recorded(HospitalPeer):
        async def run_round(self, round_):
            out = await super().run_round(round_)
            outcomes[(self.address.lower(), round_)] = out
            return out

    run_demo(_config(tmp_path, 2), peer_class=Recorded, mods=[Record(), mod])
    w3, deployment = load_state(tmp_path / "chain.json")
    chain = LedgerClient(w3, deployment)
    audit = collect(w3, deployment)
    assert [c["check"] for c in audit["checks"] if not c["ok"]] == []
    everyone = sorted({a for a, _ in outcomes})
    r1, r2 = audit["rounds"]
    # round 1: the follower committed, but the seats never got its input: it is left out
    vanished = mod.gone[1]
    assert vanished in {c["account"].lower() for c in r1["commits"]}
    assert vanished not in {s.lower() for s in r1["committee"]["seats"]}
    assert r1["finalized"] and {a.lower() for a in r1["accepted"]} == set(everyone) - {vanished}
    survivors = [a for a in everyone if a != vanished]
    assert chain.round_info(1).aggregate_hash.hex() == _sum_hash(1, survivors)
    # round 2: 3 of 4 seats unmask and vote (3 * 3 > 4 * 2), counted over the 4 seats
    down = mod.gone[2]
    seats = {a.lower() for a in r2["committee"]["seats"]}
    assert down in seats and len(seats) == K
    assert r2["finalized"] and (r2["winning_votes"], r2["active_at_close"]) == (K - 1, K)
    assert down not in {c["account"].lower() for c in r2["commits"]}
    fresh = sorted(seats - {down})  # the base parameters come from a seat (the vanished
    survivors = fresh + [a for a in everyone if a not in seats]  # follower trained from round 0's)
    final = chain.round_info(2).aggregate_hash
    assert final.hex() == _sum_hash(2, survivors)
    for address in set(everyone) - {down}:
        out = outcomes[(address, 2)]
        assert out.finalized and out.aggregate_hash == final.hex(), (address, out)
