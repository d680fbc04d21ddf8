"""ckks between real peers: real libp2p hosts, the embedded chain, real TenSEAL ciphertexts.

The reference is the plaintext weighted FedAvg of the updates the peers trained (recorded
here), in float64 numpy; the chain must carry the decrypted aggregate's hash."""

from __future__ import annotations

import numpy as np
import pytest

from ledger import LedgerClient, collect, load_state
from ledger.beacon import withheld_count
from node.consensus.update import parameters_hash
from node.crypto.sealing import peek_context
from node.peer.mods import PeerMod
from node.peer.pipeline import HospitalPeer, RoundOutcome
from node.sim.demo import DemoConfig, run_demo
from tests.ckks_support import chain_roles
from tests.node_support import Record

pytestmark = pytest.mark.slow


def test_ckks_round_decrypts_only_the_sum_within_1e_4(tmp_path):
    Record.trained.clear()
    state, model = tmp_path / "chain.json", tmp_path / "model.npy"
    report = run_demo(
        DemoConfig(
            rounds=1,
            rule="fedavg",
            protection="ckks",
            chain_state=state,
            model_out=model,
            progress=False,
            state_dir=tmp_path,
        ),
        mods=[Record()],
    )
    rows = [Record.trained[(1, h["address"])] for h in report["hospitals"].values()]
    g0 = rows[0][2].astype(np.float64)
    reference = sum(s * d.astype(np.float64) for d, s, _ in rows) / sum(s for _, s, _ in rows)
    got = np.load(model).astype(np.float64) - g0
    assert np.linalg.norm(got - reference) / np.linalg.norm(reference) < 1e-4
    audit = collect(*load_state(state))
    r = audit["rounds"][0]
    assert r["status"] == "finalized" and all(c["mode"] == 3 for c in r["commits"])
    assert {a["aggregate_hash"].removeprefix("0x") for a in r["attestations"]} == {
        parameters_hash(np.load(model)).hex()
    }
    assert len(r["attestations"]) == 4
    # the aggregator got two ciphertexts (the key holder encrypts nothing), the key holder sent three
    # contexts: nobody else got any ciphertext
    sent = report["rounds"][0]["blob_bytes_per_peer"]
    name = {h["address"]: n for n, h in report["hospitals"].items()}
    holder, aggregator = chain_roles(state, 1)
    assert holder != aggregator
    assert r["ckks_roles"] == {
        "key_holder": holder,
        "aggregator": aggregator,
    }  # the audit redraws the same pair
    assert all(c["ok"] for c in audit["checks"] if "beacon" in c["check"] or "ckks" in c["check"])
    assert sent[name[holder]] > max(v for k, v in sent.items() if k != name[holder])


class Misbehave(PeerMod):
    """In round 2, of the members that are neither key holder nor aggregator, the first that
    did not hold the key in round 1 commits its round-1 ciphertext in a fresh, valid round-2
    envelope (a replay); the next commits its blob's hash, then sends the blob with one byte
    flipped; any further one is honest. The roles come from the chain, so each peer decides
    at run time."""

    old: dict[str, bytes] = {}

    @staticmethod
    def part(peer) -> str | None:
        holder, aggregator = peer.protection.roles(2)
        holder1, _ = peer.protection.roles(1)
        free = [
            m.address
            for m in peer.active_members()
            if m.address not in (holder.address, aggregator.address)
        ]
        free.sort(key=lambda a: (a == holder1.address, a.lower()))
        return {free[0]: "replay", free[1]: "tamper"}.get(peer.address)

    async def protect(self, peer, update, call_next):
        blob = await call_next(update)
        if update.round == 1:
            Misbehave.old[peer.address] = peer.protection.own(update)
        elif self.part(peer) == "replay":
            _, aggregator = peer.protection.roles(update.round)
            return peer.protection.seal_for(update.round, Misbehave.old[peer.address], [aggregator])
        return blob

    async def outgoing(self, peer, recipient, kind, blob):
        if kind == "update" and peek_context(blob).round == 2 and self.part(peer) == "tamper":
            blob = blob[:1000] + bytes([blob[1000] ^ 1]) + blob[1001:]
        return blob


def test_ckks_rejects_replayed_and_tampered_ciphertexts(tmp_path):
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=2,
            hospitals=5,
            rule="fedavg",
            protection="ckks",
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
        ),
        mods=[Record(), Misbehave()],
    )
    members = sorted((h["address"] for h in report["hospitals"].values()), key=str.lower)
    holder, aggregator = chain_roles(state, 2)
    holder1, _ = chain_roles(state, 1)
    free = sorted(
        (m for m in members if m not in (holder, aggregator)),
        key=lambda a: (a == holder1, a.lower()),
    )
    replayer, tamperer, honest = free
    r2 = collect(*load_state(state))["rounds"][1]
    assert r2["status"] == "finalized"
    assert {a.lower() for a in r2["accepted"]} == {
        holder.lower(),
        aggregator.lower(),
        honest.lower(),
    }
    # round 2's aggregator saw both and put them on the record
    recorded = {
        (x["reporter"].lower(), x["account"].lower(), x["reason_name"]) for x in r2["rejections"]
    }
    assert recorded == {
        (aggregator.lower(), replayer.lower(), "bad-format"),
        (aggregator.lower(), tamperer.lower(), "hash-mismatch"),
    }
    assert report["peers_agree"]


class Absent(HospitalPeer):
    """Offline for the round unless it holds the key or aggregates: only those two commit.
    Every peer reveals its beacon secret first (the draw needs a quorum of reveals)."""

    async def run_round(self, round_):
        self.refresh_directory()
        await self.beacon.start_round(round_)
        await self.beacon.ready(round_)
        if self.address not in {m.address for m in self.protection.roles(round_)}:
            return RoundOutcome(round_, error="offline")
        return await super().run_round(round_)


def test_ckks_refuses_to_decrypt_a_sum_of_two_committed_members(tmp_path):
    """A sum of the key holder's update and one other is that other's update, to the key holder:
    below min_contributors (3), counted from the chain's commitments, nothing is decrypted."""
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=1,
            rule="fedavg",
            protection="ckks",
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
            round_timeout=5.0,
            commit_window=20,
        ),  # node.peer.reveal holds to it
        peer_class=Absent,
    )
    r = collect(*load_state(state))["rounds"][0]
    assert (
        len(r["commits"]) == 2 and not r["attestations"]
    )  # before: the pair decrypted and attested
    assert r["status"] == "open" and not report["rounds"][0]["finalized"]


class Withholder(HospitalPeer):
    """Commits a beacon secret like every peer, then never reveals it (it forgets it)."""

    async def run_round(self, round_):
        self.beacon._secrets.pop(round_, None)
        return await super().run_round(round_)


def test_a_withholding_member_is_recorded_and_holds_no_role(tmp_path):
    """One of four members withholds its reveal: the others wait for the reveal deadline, the
    beacon is final with 3 reveals (the quorum), the pair is drawn among the 3 revealers, the
    round finalizes with the withholder's update in it, and its withholding is on the record."""
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=1,
            rule="fedavg",
            protection="ckks",
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
            commit_window=80,
        ),
        peer_class={3: Withholder},
    )
    withholder = list(report["hospitals"].values())[3]["address"]
    w3, deployment = load_state(state)
    assert withheld_count(LedgerClient(w3, deployment), withholder) == 1
    assert withholder not in chain_roles(state, 1)
    r = collect(w3, deployment)["rounds"][0]
    assert r["status"] == "finalized" and withholder in r["accepted"]
    assert (r["beacon"]["reveals"], r["beacon"]["withheld"]) == (3, [withholder])
