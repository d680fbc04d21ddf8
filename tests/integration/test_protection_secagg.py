"""secagg between real peers: real libp2p hosts, the embedded chain, DP-SGD updates.

The reference for the aggregate is computed here from the survivors' recorded updates with
numpy integers (fixed point, 16 fractional bits), independently of node.crypto.secagg.masking; the chain
must carry its hash, attested by every honest peer."""

from __future__ import annotations

import numpy as np
import pytest

from gossip import BlobRejected
from ledger import collect, load_state
from node.consensus.update import parameters_hash
from node.crypto.sealing import peek_context
from node.peer.mods import LeaveRound, PeerMod
from node.sim.demo import DemoConfig, run_demo
from tests.node_support import Record

pytestmark = pytest.mark.slow


class Dropout(PeerMod):
    """Advertises its mask key and deals its shares, masks its update, then goes offline
    before committing: its pairwise masks are in everyone else's inputs."""

    async def protect(self, peer, update, call_next):
        await call_next(update)
        raise LeaveRound("dropped out mid-round")


def reference_hash(round_: int, survivors: list[str]) -> tuple[bytes, np.ndarray]:
    rows = [Record.trained[(round_, a)] for a in survivors]
    total = sum(np.rint(s * d.astype(np.float64) * 2**16).astype(np.int64) for d, s, _ in rows)
    samples = sum(s for _, s, _ in rows)
    params = (rows[0][2] + (total / 2**16) / samples).astype(np.float32)
    plain = rows[0][2] + sum(s * d.astype(np.float64) for d, s, _ in rows) / samples
    return parameters_hash(params), np.abs(params - plain).max()


# One dropout each: shares are released only for a survivor set that more than 2n/3 members
# signed (Bonawitz et al. 2017, section 6), so 3 survivors of 5 release nothing (see
# tests/integration/test_secagg_attacks.py for why a bare majority is not enough against one liar).
@pytest.mark.parametrize("hospitals,dropped", [(4, [2]), (5, [1])])
def test_secagg_recovers_the_exact_sum_when_peers_drop_out(tmp_path, hospitals, dropped):
    Record.trained.clear()
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=1,
            hospitals=hospitals,
            rule="fedavg",
            protection="secagg",
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
            round_timeout=4.0,
            commit_window=30,
        ),  # the survivors hold their blobs until it closes (node.peer.reveal)
        mods={i: [Record(), Dropout()] if i in dropped else [Record()] for i in range(hospitals)},
    )
    names = list(report["hospitals"])
    gone = {report["hospitals"][names[i]]["address"] for i in dropped}
    survivors = sorted(
        (
            report["hospitals"][n]["address"]
            for n in names
            if report["hospitals"][n]["address"] not in gone
        ),
        key=str.lower,
    )
    expected, float_error = reference_hash(1, survivors)
    assert float_error < 1e-4  # fixed point costs nothing that matters
    r = collect(*load_state(state))["rounds"][0]
    assert {c["account"].lower() for c in r["commits"]} == {a.lower() for a in survivors}
    assert all(c["mode"] == 2 for c in r["commits"])
    attested = {
        a["account"].lower(): a["aggregate_hash"].removeprefix("0x") for a in r["attestations"]
    }
    assert attested == {
        a.lower(): expected.hex() for a in survivors
    }  # every honest peer, the exact sum
    assert r["status"] == "finalized"  # more than 2/3 attested


class Meddle(PeerMod):
    """Honest, but in round 2 also sends a replayed, a tampered and a mislabelled message."""

    sent: dict[tuple[int, str], bytes] = {}
    answers: dict[str, str | None] = {}

    async def outgoing(self, peer, recipient, kind, blob):
        Meddle.sent.setdefault((peek_context(blob).round, kind), blob)
        return blob

    async def protect(self, peer, update, call_next):
        blob = await call_next(update)
        if update.round == 2:
            keys = self.sent[(2, "secagg-keys")]
            attempts = {
                "replay": (self.sent[(1, "secagg-keys")], "secagg-keys"),
                "tampered": (keys[:-1] + bytes([keys[-1] ^ 1]), "secagg-keys"),
                "wrong-phase": (keys, "secagg-shares"),
                "duplicate": (keys, "secagg-keys"),
            }
            for name, (data, kind) in attempts.items():
                try:
                    await peer.host.send_blob(peer.others()[0].peer_id, data, kind=kind)
                    Meddle.answers[name] = None
                except BlobRejected as exc:
                    Meddle.answers[name] = exc.reason
        return blob


def test_secagg_rejects_replayed_tampered_and_mislabelled_messages(tmp_path):
    """(with top-50% compression over the round-shared coordinates, to cover that path too)"""
    report = run_demo(
        DemoConfig(
            rounds=2,
            rule="fedavg",
            protection="secagg",
            topk=0.5,
            progress=False,
            state_dir=tmp_path,
        ),
        mods={0: [Meddle()]},
    )
    a = Meddle.answers
    assert "replay" in a["replay"] and "round 1" in a["replay"]
    assert "bad signature" in a["tampered"]
    assert "'keys' message where 'shares' was expected" in a["wrong-phase"]
    assert "already received" in a["duplicate"]
    assert all(r["finalized"] for r in report["rounds"]) and report["peers_agree"]
