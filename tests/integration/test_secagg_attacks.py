"""secagg against a member that wants individual updates (issue 15, section 1): real peers,
real libp2p hosts, the embedded chain, DP-SGD updates.

A *snooping* member runs the protocol but keeps every share, key advert and masked input it
receives, and after the round tries to unmask each other member's update: with both the
self-mask seed ``b_v`` and the mask key ``s_v`` of a member ``v`` (any ``t`` shares of each),
``y_v`` minus its masks is ``x_v``. The recovered vector is compared with what that member
really trained (recorded by the test, never sent), so a recovery cannot be a false positive.

- selective dealing (malicious): the snooper deals its Shamir shares to only 2 of the 4 others
  and signs a separate survivor statement for each half, to split the honest peers' views;
- late blobs (honest but curious): one member's masked input never reaches 2 of the 5 peers;
- a late commit (honest but curious): 2 peers read the chain's committers before an honest
  member's commit lands, 3 after, so the chain alone gives them different survivor sets.

Before the consistency check (Bonawitz et al. 2017, section 6) these recovered 4 of 4
updates, 1 and 1; now none recovers anything.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger import collect, load_state
from node.crypto.sealing import peek_context
from node.crypto.secagg import shamir
from node.crypto.secagg.masking import (
    decode_fixed,
    default_threshold,
    pair_seed,
    prg,
    self_mask_seed,
)
from node.peer import relay
from node.peer.mods import PeerMod
from node.peer.pipeline import HospitalPeer
from node.protection import secagg_consistency as consistency
from node.protection import secagg_wire as wire
from node.sim.demo import DemoConfig, run_demo
from tests.integration.test_protection_secagg import reference_hash
from tests.node_support import Record

pytestmark = pytest.mark.slow


class Snoop(PeerMod):
    """Follows the protocol, keeps everything it receives, and stays for every unmask message."""

    seen: dict[int, dict] = {}
    instances: dict[str, HospitalPeer] = {}

    async def train(self, peer, round_, call_next):
        Snoop.instances[peer.address] = peer
        return await call_next(round_)

    async def aggregated(self, peer, round_, opened, params):
        mode = peer.protection
        others = {i.address for i in peer.others()}
        await mode.mailbox.wait_for("unmask", round_, others, peer.settings.round_timeout)
        Snoop.seen[round_] = {
            kind: dict(mode.mailbox.get(kind, round_))
            for kind in ("unmask", "shares", "consistency")
        }
        Snoop.seen[round_] |= {
            "blobs": peer.intake.inbox(round_),
            "keys": dict(mode._keys.get(round_, {})),
            "address": peer.address,
        }


def recover(peer: HospitalPeer, round_: int) -> dict[str, np.ndarray]:
    """Every other member's ``[weight * delta, weight]`` the snooping ``peer`` can unmask."""
    seen, mode = Snoop.seen[round_], peer.protection
    keys = {a.lower(): k for a, k in seen["keys"].items()}
    t = default_threshold(len(peer.active_members()))
    found = {}
    for ident in peer.others():
        v = ident.address.lower()
        b = {m.seeds[v][0]: m.seeds[v][1] for m in seen["unmask"].values() if v in m.seeds}
        s = {m.keys[v][0]: m.keys[v][1] for m in seen["unmask"].values() if v in m.keys}
        mine = {a.lower(): m for a, m in seen["shares"].items()}.get(v)
        if mine is not None:
            b[mine.x], s[mine.x] = mine.b, mine.s
        blob = seen["blobs"].get(ident.address)
        if len(b) < t or len(s) < t or blob is None:
            continue
        y = wire.decode(mode.unseal(round_, ident, blob), "masked")
        b_v = shamir.reconstruct(list(b.items()), t, 32)
        s_v = X25519PrivateKey.from_private_bytes(shamir.reconstruct(list(s.items()), t, 32))
        ctx = mode._ctx_bytes(round_)
        x = y.values - prg(self_mask_seed(b_v, ctx), y.values.size, mode.params)
        for w in y.participants:
            if w != v:
                mask = prg(pair_seed(s_v, keys[w], v, w, ctx), y.values.size, mode.params)
                x = x - mask if w > v else x + mask
        found[ident.address] = decode_fixed(x, mode.params)
    return found


def recovered_updates(snooper: HospitalPeer, round_: int) -> list[str]:
    """Members whose recovered vector is their real ``weight * delta`` (to 1e-3; the weight as
    tests/node_support.py:sum_weight derives it)."""
    hits = []
    for address, vec in recover(snooper, round_).items():
        delta, samples, _ = Record.trained[(round_, address)]
        if (
            vec[-1] == samples
            and np.abs(vec[:-1] - samples * delta.astype(np.float64)).max() < 1e-3
        ):
            hits.append(address)
    return hits


class SelectiveDeal(PeerMod):
    """Deals its shares to the first two others only, and tells each half the statement it
    expects (signing both): the attack of issue 15."""

    def __init__(self) -> None:
        self.forged: dict[int, bytes] = {}

    async def outgoing(self, peer, recipient, kind, blob):
        left_out = {i.address for i in peer.others()[2:]}
        if recipient.address not in left_out or kind not in ("secagg-shares", "secagg-consistency"):
            return blob
        if kind == "secagg-shares":
            return None
        # the half without our shares saw participants without us
        round_, mode = peek_context(blob).round, peer.protection
        if round_ not in self.forged:
            participants, _, survivors = mode._statement(round_)
            participants = tuple(p for p in participants if p != peer.address.lower())
            khash = consistency.keys_hash(
                {p: k for p, k in mode._keys[round_].items() if p in participants}
            )
            forged = (participants, khash, survivors)
            sig = consistency.sign_statement(
                peer.identity.sign_private, mode._ctx_bytes(round_), round_, forged
            )
            msg = wire.Consistency(round_, peer.address.lower(), *forged, sig)
            theirs = [i for i in peer.others() if i.address in left_out]
            self.forged[round_] = mode.seal_for(round_, wire.encode(msg), theirs)
        return self.forged[round_]


def test_selective_share_dealing_recovers_no_update(tmp_path):
    Record.trained.clear()
    Snoop.seen.clear()
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=1,
            hospitals=5,
            rule="fedavg",
            protection="secagg",
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
            round_timeout=5.0,
        ),
        mods={
            0: [Record()],
            1: [Record()],
            2: [Record()],
            3: [Record()],
            4: [Record(), Snoop(), SelectiveDeal()],
        },
    )
    attacker = Snoop.instances[report["hospitals"][list(report["hospitals"])[4]]["address"]]
    assert 1 in Snoop.seen, "the attacker never reached the unmask stage"
    assert recovered_updates(attacker, 1) == []  # before the consistency check: all 4
    assert Snoop.seen[1]["unmask"] == {}  # no statement reached 4 of 5 signatures...
    assert not list(
        tmp_path.glob("*.secagg-released.json")
    )  # ...so no peer's release log holds anything
    r = collect(*load_state(state))["rounds"][0]
    assert r["status"] == "open" and not r["attestations"]  # the round fails rather than leak


class Flaky(PeerMod):
    """An honest member whose masked input is late at two peers (see :class:`Deaf`)."""

    address_: str = ""

    async def train(self, peer, round_, call_next):
        Flaky.address_ = peer.address
        return await call_next(round_)


class Deaf(PeerMod):
    """An honest member that never gets :class:`Flaky`'s masked input, directly or relayed."""

    async def incoming(self, peer, sender, kind, data):
        if kind == "update" and sender.address == Flaky.address_:
            return False
        return not (
            kind == relay.RELAY_KIND
            and relay.decode_relay(data)[0].lower() == Flaky.address_.lower()
        )


def test_late_blobs_at_two_of_five_peers_reveal_no_update(tmp_path):
    Record.trained.clear()
    Snoop.seen.clear()
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=1,
            hospitals=5,
            rule="fedavg",
            protection="secagg",
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
            round_timeout=5.0,
        ),
        mods={
            0: [Record(), Flaky()],
            1: [Record(), Deaf()],
            2: [Record(), Deaf()],
            3: [Record()],
            4: [Record(), Snoop()],
        },
    )
    names = list(report["hospitals"])
    snooper_address = report["hospitals"][names[4]]["address"]
    assert recovered_updates(Snoop.instances[snooper_address], 1) == []  # before: Flaky's update
    # the chain fixes the survivors for everyone: all five agree, so the shares released are
    # self-mask shares only, and the peers holding every masked input compute the exact sum
    released = Snoop.seen[1]["unmask"]
    assert len(released) == 4 and all(not m.keys for m in released.values())
    logs = [json.loads(p.read_text())["released"] for p in tmp_path.glob("*.secagg-released.json")]
    assert len(logs) == 5 and all(
        len(entry["b"]) == 5 and entry["s"] == [] for log in logs for entry in log
    )
    everyone = sorted((report["hospitals"][n]["address"] for n in names), key=str.lower)
    expected, _ = reference_hash(1, everyone)
    r = collect(*load_state(state))["rounds"][0]
    attested = {
        a["account"].lower(): a["aggregate_hash"].removeprefix("0x") for a in r["attestations"]
    }
    full = {report["hospitals"][names[i]]["address"].lower() for i in (0, 3, 4)}
    assert attested == {a: expected.hex() for a in full}  # the two deaf peers cannot compute it


class LateCommitter(PeerMod):
    """An honest member that commits only after two peers have read the chain without it
    (they already sent what they saw: a statement, or before the consistency check, shares)."""

    address_: str = ""
    early: set[str] = set()

    async def train(self, peer, round_, call_next):
        LateCommitter.address_ = peer.address
        return await call_next(round_)

    async def protect(self, peer, update, call_next):
        blob = await call_next(update)
        box, r = peer.protection.mailbox, update.round
        with trio.move_on_after(6 * peer.settings.round_timeout):
            await box.wait_until(
                "consistency",
                r,
                lambda _: all(
                    a in box.get("consistency", r) or a in box.get("unmask", r)
                    for a in LateCommitter.early
                ),
            )
        return blob


class Early(PeerMod):
    """Reads the chain before the late commit: it skips the commit-before-reveal hold
    (node.peer.reveal), which an honest peer keeps and which would rule the race out."""

    async def train(self, peer, round_, call_next):
        LateCommitter.early.add(peer.address)
        return await call_next(round_)

    async def hold(self, peer, round_, call_next):
        return "skipped", 0.0


class Patient(PeerMod):
    """Reads the chain only once the late member's masked input has arrived."""

    async def verifying(self, peer, round_):
        await peer.intake.await_blobs(
            round_, {LateCommitter.address_}, 6 * peer.settings.round_timeout
        )


def test_a_commit_racing_the_chain_reads_reveals_no_update(tmp_path):
    """Two peers read the committers before a late (honest) commit lands, three after: the
    chain alone gives them different survivor sets, and only the signed statements keep one
    group from revealing the late member's mask key while the other reveals its self-mask."""
    Record.trained.clear()
    Snoop.seen.clear()
    LateCommitter.early.clear()
    report = run_demo(
        DemoConfig(
            rounds=1,
            hospitals=5,
            rule="fedavg",
            protection="secagg",
            progress=False,
            state_dir=tmp_path,
            round_timeout=4.0,
        ),
        mods={
            0: [Record(), LateCommitter()],
            1: [Record(), Early()],
            2: [Record(), Early()],
            3: [Record(), Patient()],
            4: [Record(), Snoop(), Patient()],
        },
    )
    snooper = Snoop.instances[report["hospitals"][list(report["hospitals"])[4]]["address"]]
    assert (
        recovered_updates(snooper, 1) == []
    )  # before the consistency check: the late member's update
    views = {m.survivors for m in Snoop.seen[1]["consistency"].values()}
    assert len(views) == 2 and {len(v) for v in views} == {
        4,
        5,
    }  # the race happened: 2 read 4 committers
    assert not list(
        tmp_path.glob("*.secagg-released.json")
    )  # 2 + 3 signatures: neither set reaches 4
