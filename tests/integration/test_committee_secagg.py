"""secagg with the aggregation committee as its aggregators (issue 19, docs/secagg.md): six
hospitals on the embedded chain with real libp2p hosts, a committee of four drawn per round from
the beacon, FedAvg over Bonawitz et al. 2017 masked inputs.

The reference for each aggregate is the fixed-point FedAvg of the survivors' recorded updates in
numpy integers (:func:`tests.integration.test_protection_secagg.reference_hash`), independent of
:mod:`node.crypto.secagg.masking`; the chain must carry its hash.

* Without failures: each round finalizes on that hash, attested by exactly the four seats; the
  followers adopt it; every member sends its masked vector to the seats only (k blobs), deals
  shares to the seats only, and a follower signs and releases nothing.
* Round 1: a seat crashes right after the draw (and stays down); the three others (the
  quorum, and the Shamir threshold over four seats) unmask and finalize.
  Round 2: a follower commits and then vanishes before its masked vector leaves. The seats
  unmask the sum without it from their shares of its mask key, and the round finalizes. Every
  seat keeps all it received (masked vectors, its shares, the other seats' releases): no
  coalition of fewer than t = 3 seats unmasks any update, t seats unmask every survivor's
  (the threshold is tight: a round with no split view needs t seats).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger import LedgerClient, collect, load_state
from ledger.committee import committee_info
from node.crypto.secagg import shamir
from node.crypto.secagg.masking import decode_fixed, pair_seed, prg, self_mask_seed
from node.peer.mods import LeaveRound, PeerMod
from node.peer.pipeline import HospitalPeer, RoundOutcome
from node.protection import secagg_wire as wire
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


class SeatCrashesThenFollowerVanishes(PeerMod):
    """Run by every peer. Round 1: the seat with the highest address leaves right after the
    draw and stays down (it neither trains, commits nor unmasks, in round 1 or 2). Round 2: the
    follower with the lowest address among those up leaves right after committing (its masked
    vector never leaves)."""

    def __init__(self) -> None:
        self.gone: dict[int, str] = {}

    async def train(self, peer, round_, call_next):
        seats, me = peer.committee.members(round_), peer.address.lower()
        if round_ == 1 and seats and me == max(seats):
            self.gone[1] = me
        if self.gone.get(1) == me:
            raise LeaveRound("crashed")
        return await call_next(round_)

    async def hold(self, peer, round_, call_next):
        seats = peer.committee.members(round_) or frozenset()
        followers = {m.address.lower() for m in peer.active_members()} - seats
        if round_ == 2 and peer.address.lower() == min(followers - {self.gone[1]}):
            self.gone[2] = peer.address.lower()
            raise LeaveRound("vanished after committing")
        return await call_next(round_)


class KeepAll(PeerMod):
    """Each seat of round 2, honest but curious: once the other live seats' releases are in,
    it keeps everything it received (its shares, the releases, the masked vectors, the mask
    keys, its own share of its own secrets)."""

    def __init__(self) -> None:
        self.kept: dict[str, dict] = {}

    async def aggregated(self, peer, round_, opened, params):
        mode = peer.protection
        if round_ != 2:
            return
        committed = peer.ledger.commitments(round_)
        seats = {i.address for i in mode.ctx.aggregators(round_) if i.address in committed}
        await mode.mailbox.wait_for("unmask", round_, seats, peer.settings.round_timeout)
        self.kept[peer.address.lower()] = {
            "peer": peer,
            "shares": {a.lower(): b for a, b in mode.mailbox.get("shares", round_).items()},
            "own": mode._my_shares[round_],
            "unmask": dict(mode.mailbox.get("unmask", round_)),
            "blobs": peer.intake.inbox(round_),
            "keys": dict(mode._keys.get(round_, {})),
        }


def unmasked_by(kept: dict[str, dict], coalition: tuple[str, ...], t: int) -> list[str]:
    """Members whose real ``[w * delta, w]`` (Record) the ``coalition`` of seats unmasks by
    pooling what they kept: for member v, any t shares of its seed b_v and of its key s_v."""
    first = kept[coalition[0]]
    peer, keys, hits = first["peer"], first["keys"], []
    mode = peer.protection
    for ident in peer.others():
        v = ident.address.lower()
        b: dict[int, int] = {}
        s: dict[int, int] = {}
        for seat in coalition:
            seen = kept[seat]
            for m in seen["unmask"].values():
                b.update([m.seeds[v]] if v in m.seeds else [])
                s.update([m.keys[v]] if v in m.keys else [])
            if v in seen["shares"]:
                share = seen["shares"][v]
                b[share.x], s[share.x] = share.b, share.s
            if seat == v:
                x, b[x], s[x] = seen["own"]
        blob = first["blobs"].get(ident.address)
        if len(b) < t or len(s) < t or blob is None:
            continue
        y = wire.decode(mode.unseal(2, ident, blob), "masked")
        b_v = shamir.reconstruct(list(b.items()), t, 32)
        s_v = X25519PrivateKey.from_private_bytes(shamir.reconstruct(list(s.items()), t, 32))
        ctx = mode._ctx_bytes(2)
        x = y.values - prg(self_mask_seed(b_v, ctx), y.values.size, mode.params)
        for w in y.participants:
            if w != v:
                mask = prg(pair_seed(s_v, keys[w], v, w, ctx), y.values.size, mode.params)
                x = x - mask if w > v else x + mask
        vec = decode_fixed(x, mode.params)
        delta, weight, _ = Record.trained[(2, ident.address)]
        if vec[-1] == weight and np.abs(vec[:-1] - weight * delta.astype(np.float64)).max() < 1e-3:
            hits.append(v)
    return hits


def test_a_crashed_seat_is_covered_and_a_vanished_follower_is_unmasked(tmp_path) -> None:
    Record.trained.clear()
    mod, curious = SeatCrashesThenFollowerVanishes(), KeepAll()
    outcomes: dict[tuple[str, int], RoundOutcome] = {}

    class Recorded(HospitalPeer):
        async def run_round(self, round_):
            out = await super().run_round(round_)
            outcomes[(self.address.lower(), round_)] = out
            return out

    run_demo(_config(tmp_path, 2), peer_class=Recorded, mods=[Record(), mod, curious])
    w3, deployment = load_state(tmp_path / "chain.json")
    chain = LedgerClient(w3, deployment)
    audit = collect(w3, deployment)
    assert [c["check"] for c in audit["checks"] if not c["ok"]] == []
    everyone = sorted({a for a, _ in outcomes})
    r1, r2 = audit["rounds"]
    # round 1: 3 of 4 seats unmask and vote (3 * 3 > 4 * 2), counted over the 4 seats
    down = mod.gone[1]
    seats = {a.lower() for a in r1["committee"]["seats"]}
    assert down in seats and len(seats) == K
    assert r1["finalized"] and (r1["winning_votes"], r1["active_at_close"]) == (K - 1, K)
    assert down not in {c["account"].lower() for c in r1["commits"]}
    up = [a for a in everyone if a != down]
    assert chain.round_info(1).aggregate_hash.hex() == _sum_hash(1, up)
    for address in up:
        out = outcomes[(address, 1)]
        assert out.finalized and out.aggregate_hash == chain.round_info(1).aggregate_hash.hex()
    # round 2: the follower committed, but the seats never got its input: it is left out
    vanished = mod.gone[2]
    assert vanished in {c["account"].lower() for c in r2["commits"]}
    assert vanished not in {s.lower() for s in r2["committee"]["seats"]}
    survivors = [a for a in up if a != vanished]
    assert r2["finalized"] and {a.lower() for a in r2["accepted"]} == set(survivors)
    final = chain.round_info(2).aggregate_hash.hex()
    assert final == _sum_hash(2, survivors)
    for address in survivors:
        out = outcomes[(address, 2)]
        assert out.finalized and out.aggregate_hash == final, (address, out)
    # what curious seats learn: nothing below t = 3 seats (the vanished follower's mask key
    # was rebuilt, but its masked vector never left it), every survivor's update from t on
    t = 2 * K // 3 + 1
    live = {a.lower() for a in r2["committee"]["seats"]} - {down}
    assert sorted(curious.kept) == sorted(live)
    for c in range(1, t):
        for coalition in combinations(sorted(curious.kept), c):
            assert unmasked_by(curious.kept, coalition, t) == [], coalition
    for coalition in combinations(sorted(curious.kept), t):
        assert sorted(unmasked_by(curious.kept, coalition, t)) == sorted(
            set(survivors) - {coalition[0]}
        )
