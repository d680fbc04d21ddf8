"""ckks with the aggregation committee (issue 19, docs/secagg.md "ckks with a committee"): six
hospitals on the embedded chain with real libp2p hosts and real TenSEAL ciphertexts, a committee
of four drawn per round from the beacon, FedAvg.

The key holder and the aggregator are drawn among the round's seats; the reference for the pair
is :func:`tests.ckks_support.chain_roles`, re-derived from the beacon reveals and restricted to
the seats the contract let attest. The reference for each aggregate is the plaintext weighted
FedAvg of the recorded updates in float64 numpy (the 1e-4 relative target of the other ckks
end-to-end tests); the chain must carry the hash of what every member adopted.

* Without failures: two rounds finalize, attested by exactly the four seats; every member but
  the key holder sends its ciphertext to the aggregator only, the key holder sends its context
  to the five others and the decrypted aggregate to the three other seats only; the followers
  adopt the aggregate they fetched because its hash is the chain's.
* The key holder of round 1 crashes after the draw and stays down (it never sends its context,
  and withholds its beacon reveal from round 2 on): nobody can encrypt, nothing is committed,
  and round 1 fails on chain at its deadline; round 2 draws a new pair among the seats that
  revealed and finalizes on the FedAvg of the five members up.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from ledger import LedgerClient, collect, load_state
from ledger.committee import committee_info
from node.peer.mods import LeaveRound, PeerMod
from node.peer.pipeline import HospitalPeer, RoundOutcome
from node.sim.demo import DemoConfig, run_demo
from tests.ckks_support import chain_roles
from tests.node_support import Record, params_hash

pytestmark = pytest.mark.slow

N, K = 6, 4


class Sends(PeerMod):
    """Records, per (round, sender), the recipients of each kind of blob it sends and, per
    round, every peer's view of the committee and of the ckks roles."""

    def __init__(self) -> None:
        self.to: dict[tuple[int, str], dict[str, list[str]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.seats: dict[int, set[frozenset[str] | None]] = defaultdict(set)
        self.roles: dict[int, set[tuple[str, str]]] = defaultdict(set)

    async def train(self, peer, round_, call_next):
        self.seats[round_].add(peer.committee.members(round_))
        holder, aggregator = peer.protection.roles(round_)
        self.roles[round_].add((holder.address.lower(), aggregator.address.lower()))
        return await call_next(round_)

    async def outgoing(self, peer, recipient, kind, blob):
        self.to[(peer.completed_round + 1, peer.address.lower())][kind].append(
            recipient.address.lower()
        )
        return blob


def recorded_peer(outcomes: dict, adopted: dict, down: dict[str, str] | None = None):
    """A peer class that records each round's outcome and the parameters it holds after it;
    the member named in ``down`` (once set) is down from then on: it runs no round and withholds
    its beacon reveals."""

    class Recorded(HospitalPeer):
        async def run_round(self, round_):
            me = self.address.lower()
            if down is not None and down.get("address") == me:
                self.beacon._secrets.pop(round_, None)  # never revealed: withheld on chain
                out = RoundOutcome(round_, error="down")
            else:
                out = await super().run_round(round_)
            outcomes[(me, round_)] = out
            adopted[(me, round_)] = self.global_params.copy()
            return out

    return Recorded


def fedavg_reference(round_: int, members: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(the global parameters the members trained from, the plaintext weighted FedAvg step of
    their recorded updates), in float64."""
    spelt = {a.lower(): a for _, a in Record.trained}
    rows = [Record.trained[(round_, spelt[a.lower()])] for a in members]
    g0 = rows[0][2].astype(np.float64)
    assert all(np.array_equal(r[2], rows[0][2]) for r in rows)  # one starting point
    step = sum(s * d.astype(np.float64) for d, s, _ in rows) / sum(s for _, s, _ in rows)
    return g0, step


def assert_adopted(round_: int, members: list[str], chain, outcomes, adopted) -> None:
    """Every one of ``members`` finalized ``round_`` on the chain's hash and holds parameters
    with that hash (an independent formula), equal to the plaintext FedAvg within 1e-4."""
    final = chain.round_info(round_).aggregate_hash
    g0, step = fedavg_reference(round_, members)
    for address in members:
        out, params = outcomes[(address, round_)], adopted[(address, round_)]
        assert out.finalized and out.aggregate_hash == final.hex(), (address, out)
        assert params_hash(params) == final
        got = params.astype(np.float64) - g0
        assert np.linalg.norm(got - step) / np.linalg.norm(step) < 1e-4


def _config(tmp_path, **kw) -> DemoConfig:
    return DemoConfig(
        hospitals=N,
        rounds=2,
        committee=K,
        rule="fedavg",
        protection="ckks",
        chain_state=tmp_path / "chain.json",
        progress=False,
        state_dir=tmp_path,
        **kw,
    )


def _audited(tmp_path) -> tuple[LedgerClient, dict]:
    """The campaign's chain, and its audit with every check passed."""
    w3, deployment = load_state(tmp_path / "chain.json")
    audit = collect(w3, deployment)
    assert [c["check"] for c in audit["checks"] if not c["ok"]] == []
    return LedgerClient(w3, deployment), audit


def test_ckks_with_a_committee_of_four_of_six_finalizes_the_fedavg(tmp_path) -> None:
    Record.trained.clear()
    sends, outcomes, adopted = Sends(), {}, {}
    report = run_demo(
        _config(tmp_path),
        peer_class=recorded_peer(outcomes, adopted),
        mods=[Record(), sends],
    )
    chain, audit = _audited(tmp_path)
    everyone = sorted(h["address"].lower() for h in report["hospitals"].values())
    for r in audit["rounds"]:
        round_ = r["round"]
        info = chain.round_info(round_)
        assert info.status == "finalized" and committee_info(chain, round_).size == K
        (seats,) = sends.seats[round_]  # every peer drew the same committee
        # the contract refuses an attester off the committee: the four attesters are its seats
        assert info.attest_count == K
        assert {x["account"].lower() for x in r["attestations"]} == seats
        (pair,) = sends.roles[round_]  # and the same pair, among the seats
        holder, aggregator = pair
        assert {holder, aggregator} <= seats and holder != aggregator
        expected = tuple(
            a.lower() for a in chain_roles(tmp_path / "chain.json", round_, among=seats)
        )
        assert pair == expected
        roles = r["ckks_roles"]  # the audit redraws it among the seats too
        assert (roles["key_holder"].lower(), roles["aggregator"].lower()) == pair
        for address in everyone:
            sent = sends.to[(round_, address)]
            if address == holder:  # its update stays with it; the result goes to the seats only
                assert "update" not in sent
                assert sorted(sent["ckks-context"]) == sorted(set(everyone) - {holder})
                assert sorted(sent["ckks-result"]) == sorted(seats - {holder})
            elif address == aggregator:  # its own ciphertext stays with it
                assert "update" not in sent and sent["ckks-sum"] == [holder]
            else:  # seat or follower: one ciphertext, to the aggregator alone
                assert dict(sent) == {"update": [aggregator]}, (address, dict(sent))
        assert_adopted(round_, everyone, chain, outcomes, adopted)
    assert report["peers_agree"]


class HolderCrashes(PeerMod):
    """Run by every peer: the key holder of round 1 leaves right after the draw (before it
    makes its keys) and is down from then on (:func:`recorded_peer`)."""

    def __init__(self) -> None:
        self.down: dict[str, str] = {}

    async def train(self, peer, round_, call_next):
        holder, _ = peer.protection.roles(round_)
        if round_ == 1 and peer.address.lower() == holder.address.lower():
            self.down["address"] = peer.address.lower()
            raise LeaveRound("crashed")
        return await call_next(round_)


def test_a_crashed_key_holder_fails_its_round_and_the_next_finalizes(tmp_path) -> None:
    Record.trained.clear()
    crash, outcomes, adopted = HolderCrashes(), {}, {}
    run_demo(
        # the members wait round_timeout for the key holder's context; round 1 fails at its
        # attestation deadline (commit + attest window), when round 2's opener fails it; in round
        # 2 the members hold their ciphertexts until the commit window closes (the crashed one
        # never commits), and the beacon's reveal window is a quarter of it (why not shorter:
        # tests/integration/test_committee_peers.py)
        _config(tmp_path, round_timeout=30.0, commit_window=60, attest_window=60),
        peer_class=recorded_peer(outcomes, adopted, crash.down),
        mods=[Record(), crash],
    )
    chain, audit = _audited(tmp_path)
    down = crash.down["address"]
    everyone = sorted({a for a, _ in outcomes})
    up = [a for a in everyone if a != down]
    r1, r2 = audit["rounds"]
    # round 1: the drawn key holder is the crashed seat; nobody could encrypt, nothing finalized
    assert down in {a.lower() for a in r1["committee"]["seats"]}
    assert (
        chain_roles(tmp_path / "chain.json", 1, among=set(r1["committee"]["seats"]))[0].lower()
        == down
    )
    assert r1["status"] == "failed" and chain.round_info(1).status == "failed"
    assert r1["commits"] == [] and r1["attestations"] == []
    for address in up:
        out = outcomes[(address, 1)]
        assert not out.finalized and "no ckks context" in (out.error or ""), (address, out)
    # round 2: a new beacon without the crashed member's reveal, a new pair among the seats
    assert down in {a.lower() for a in r2["beacon"]["withheld"]}
    seats = {a.lower() for a in r2["committee"]["seats"]}
    holder, aggregator = (a.lower() for a in chain_roles(tmp_path / "chain.json", 2, among=seats))
    assert down not in (holder, aggregator) and {holder, aggregator} <= seats
    assert r2["finalized"] and down not in {c["account"].lower() for c in r2["commits"]}
    assert_adopted(2, up, chain, outcomes, adopted)
