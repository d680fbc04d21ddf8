"""A committed blob that missed its direct transfer still arrives: another peer relays it
(node/peer/relay.py), and the receiver takes it only if its hash is the commitment on chain.

Real chain, real libp2p hosts, real sealed updates (the demo's four hospitals).
"""

from __future__ import annotations

import pytest

from gossip import BlobRejected
from ledger import collect, load_state
from node.peer import relay
from node.peer.mods import PeerMod
from node.peer.pipeline import HospitalPeer
from node.sim.demo import DemoConfig, run_demo

ROLES: dict[str, object] = {}


def _victim(peer: HospitalPeer):
    """The member the skipper drops: the first by address that is neither skipper nor liar."""
    return next(
        m
        for m in peer.active_members()
        if m.address not in (ROLES.get("skipper"), ROLES.get("liar"))
    )


class Skip(PeerMod):
    """Commits and sends its update to everyone but the victim (a transfer that failed for good)."""

    async def train(self, peer, round_, call_next):
        ROLES["skipper"] = peer.address
        return await call_next(round_)

    async def outgoing(self, peer, recipient, kind, blob):
        victim = _victim(peer)
        ROLES["victim"] = victim.address
        return None if kind == "update" and recipient.address == victim.address else blob


class Lie(PeerMod):
    """Pushes the victim a relayed copy of the skipper's blob with one byte changed."""

    async def train(self, peer, round_, call_next):
        ROLES["liar"] = peer.address
        return await call_next(round_)

    async def verifying(self, peer, round_):
        skipper, victim = ROLES["skipper"], _victim(peer)
        await peer.intake.await_blobs(round_, {skipper}, 30)
        blob = peer.intake.inbox(round_)[skipper]  # a KeyError here: the skipper's blob never came
        forged = blob[:-1] + bytes([blob[-1] ^ 1])
        try:
            await peer.host.send_blob(
                victim.peer_id, relay.encode_relay(skipper, forged), kind=relay.RELAY_KIND
            )
            ROLES["forgery"] = "accepted"
        except BlobRejected as exc:
            ROLES["forgery"] = str(exc)


@pytest.mark.slow
def test_a_dropped_transfer_is_relayed_a_forged_relay_refused_and_all_attest_one_hash(tmp_path):
    ROLES.clear()
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=1, chain_state=state, progress=False, state_dir=tmp_path, round_timeout=8.0
        ),
        mods={3: [Skip()], 1: [Lie()]},
    )
    assert "does not match the commitment on chain" in ROLES["forgery"]
    row = report["rounds"][0]
    assert row["finalized"] and row["aggregate_hash"] is not None  # all four computed one aggregate
    assert row["accepted"] == 4 and row["rejected"] == {}
    audit = collect(*load_state(state))
    r = audit["rounds"][0]
    assert r["status"] == "finalized"
    skipper = ROLES["skipper"].lower()
    assert len(r["attestations"]) == 4
    for att in r["attestations"]:  # the victim too attested the set with the skipper in it
        assert skipper in {a.lower() for a in att["accepted"]} and len(att["accepted"]) == 4
    assert len({att["aggregate_hash"] for att in r["attestations"]}) == 1


def test_relay_messages_round_trip_and_bad_input_is_refused():
    req = relay.RelayRequest(3, "0x" + "ab" * 20, "cd" * 32)
    assert relay.decode_request(relay.encode_request(req)) == req
    assert relay.encode_request(req) == (
        b'{"committer":"0x' + b"ab" * 20 + b'","round":3,"update_hash":"' + b"cd" * 32 + b'"}'
    )
    committer, blob = relay.decode_relay(relay.encode_relay("0x" + "AB" * 20, b"sealed"))
    assert (committer, blob) == ("0x" + "ab" * 20, b"sealed")
    for bad in (
        b"not json",
        b'{"round":3}',
        b'{"committer":"0x12","round":3,"update_hash":"' + b"cd" * 32 + b'"}',
        b'{"committer":"0x' + b"ab" * 20 + b'","round":0,"update_hash":"' + b"cd" * 32 + b'"}',
        b'{"committer":"0x' + b"ab" * 20 + b'","round":1,"update_hash":"zz"}',
    ):
        with pytest.raises(relay.RelayError):
            relay.decode_request(bad)
    with pytest.raises(relay.RelayError):
        relay.decode_relay(b"medmesh/model/v1" + b"\0" * 40)
