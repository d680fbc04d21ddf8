"""A peer that misbehaves is caught, put on the record, and cannot stop the round.

Real chain, real libp2p hosts, real sealed updates: one of four hospitals commits one blob on
chain and sends different (validly sealed and signed) bytes to the others — equivocation.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger import collect, load_state
from node.crypto.sealing import blob_hash
from node.peer.mods import PeerMod
from node.peer.pipeline import HospitalPeer, RoundOutcome
from node.sim.demo import DemoConfig, run_demo
from tests.node_support import POISON_SCALE

pytestmark = pytest.mark.slow


class Equivocate(PeerMod):
    """Commits the hash of one sealing of its update, then sends another sealing."""

    async def protect(self, peer, update, call_next):
        committed = await call_next(update)
        self.other = await call_next(update)  # same update, fresh keys: different bytes
        assert blob_hash(self.other) != blob_hash(committed)
        return committed

    async def outgoing(self, peer, recipient, kind, blob):
        return self.other if kind == "update" else blob


def test_equivocation_is_rejected_recorded_and_outvoted(tmp_path):
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(rounds=1, chain_state=state, progress=False, state_dir=tmp_path),
        mods={3: [Equivocate()]},
    )
    names = list(report["hospitals"])
    cheat = report["hospitals"][names[3]]["address"]
    row = report["rounds"][0]
    for honest in names[:3]:
        assert row["rejected"][honest] == {cheat: "hash-mismatch"}
    audit = collect(*load_state(state))
    r = audit["rounds"][0]
    assert r["status"] == "finalized"
    assert cheat.lower() not in {a.lower() for a in r["accepted"]}
    assert len(r["accepted"]) == 3
    recorded = {
        (x["reporter"].lower(), x["account"].lower(), x["reason_name"]) for x in r["rejections"]
    }
    honest_addrs = {report["hospitals"][n]["address"].lower() for n in names[:3]}
    assert recorded == {(a, cheat.lower(), "hash-mismatch") for a in honest_addrs}
    assert audit["credits"].get(cheat, 0) == 0


class Crashed(HospitalPeer):
    """A hospital whose node is down for the round: it neither commits nor attests."""

    async def run_round(self, round_):
        return RoundOutcome(round_, error="offline")


def test_a_crashed_peer_is_left_out_not_waited_for(tmp_path):
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=2,
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
            round_timeout=3.0,
            commit_window=8,
        ),
        peer_class={2: Crashed},
    )
    names = list(report["hospitals"])
    down = report["hospitals"][names[2]]["address"].lower()
    audit = collect(*load_state(state))
    for r in audit["rounds"]:
        assert r["status"] == "finalized"  # 3 of 4 active members: more than 2/3
        assert down not in {a.lower() for a in r["accepted"]} and len(r["accepted"]) == 3
        assert down not in {c["account"].lower() for c in r["commits"]}
    # bounded by the commit window (the others hold their blobs until it closes: node.peer.reveal) and the timeout
    assert all(row["seconds"] < 30 for row in report["rounds"])


class Poison(PeerMod):
    """Trains honestly, then sends its update scaled up by ``POISON_SCALE`` (a model-replacement
    style attack): well formed, validly sealed and committed, only its content is hostile."""

    async def train(self, peer, round_, call_next):
        update = await call_next(round_)
        return replace(update, delta=(update.delta * POISON_SCALE).astype(update.delta.dtype))


def test_multi_krum_drops_a_poisoner_and_the_chain_says_why(tmp_path):
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=1,
            hospitals=6,
            rule="multi-krum",
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
        ),
        mods={4: [Poison()]},
    )
    names = list(report["hospitals"])
    bad = report["hospitals"][names[4]]["address"].lower()
    audit = collect(*load_state(state))
    r = audit["rounds"][0]
    assert r["status"] == "finalized"
    assert bad not in {a.lower() for a in r["accepted"]} and len(r["accepted"]) == 5
    honest = {report["hospitals"][n]["address"].lower() for n in names if n != names[4]}
    recorded = {
        (x["reporter"].lower(), x["account"].lower(), x["reason_name"]) for x in r["rejections"]
    }
    assert recorded == {(h, bad, "robust-rule") for h in honest}
    assert audit["credits"].get(report["hospitals"][names[4]]["address"], 0) == 0
    assert report["rounds"][0]["auc"] > 0.9  # the poison did not reach the model


def test_a_round_without_quorum_fails_cleanly_and_the_next_one_opens(tmp_path):
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=2,
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
            round_timeout=2.0,
            commit_window=3,
            attest_window=3,
        ),
        peer_class={2: Crashed, 3: Crashed},
    )
    assert [r["finalized"] for r in report["rounds"]] == [False, False]  # 2 of 4 is no quorum
    audit = collect(*load_state(state))
    assert [r["status"] for r in audit["rounds"]] == ["failed", "open"]
    assert sum(audit["credits"].values()) == 0
