"""ckks with Multi-Krum between real peers: real libp2p hosts, the embedded chain, real SEAL.

The references are computed here from the updates the peers actually encrypted (recorded): the
accepted set is the clear Multi-Krum (the rule sealed mode runs) on those updates, and the
aggregate their float64 numpy mean. The poisoners play through :mod:`node.peer.mods`; a forging or
norm-bounding mode is swapped in through :func:`tests.ckks_support.peer_with_mode`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tenseal.sealapi as seal

from ledger import collect, load_state
from ledger.records import alert_body_hash
from node.consensus.robust_audit import distances_from_gram
from node.consensus.rules import make_rule
from node.consensus.update import parameters_hash
from node.crypto.ckks.seal import seal_context
from node.peer.mods import PeerMod
from node.peer.pipeline import HospitalPeer
from node.protection.ckks_robust import FALSE_SCALARS, OUTVOTED, RobustCkksMode
from node.sim.demo import DemoConfig, run_demo
from tests.ckks_support import chain_roles, peer_with_mode
from tests.node_support import Record

pytestmark = pytest.mark.slow


class Poison(PeerMod):
    """The first member (address order) that is neither key holder nor aggregator (or, with
    ``role = "holder"``, the key holder) sends its update sign-flipped and scaled by 10 (a
    model-poisoning attempt); the others are honest. Runs after :class:`Record`, whose entry
    it replaces with the update the poisoner actually encrypts."""

    poisoner: dict[int, str] = {}

    def __init__(self, role: str = "free") -> None:
        self.role = role

    @staticmethod
    def poison(delta: np.ndarray) -> np.ndarray:
        return -10.0 * delta

    async def protect(self, peer, update, call_next):
        r = update.round
        await peer.beacon.ready(r)
        holder, aggregator = peer.protection.roles(r)
        free = sorted(
            (
                m.address
                for m in peer.active_members()
                if m.address not in (holder.address, aggregator.address)
            ),
            key=str.lower,
        )
        if peer.address == (holder.address if self.role == "holder" else free[0]):
            Poison.poisoner[r] = peer.address
            update = dataclasses.replace(update, delta=self.poison(update.delta).astype(np.float32))
            Record.trained[(r, peer.address)] = (
                update.delta.copy(),
                update.samples,
                peer.global_params.copy(),
            )
        return await call_next(update)


def _campaign(
    tmp_path,
    poison: Poison,
    peer_class: type[HospitalPeer] = HospitalPeer,
    hospitals: int = 5,
    **kwargs,
) -> tuple[dict, list[str], np.ndarray]:
    """One multi-krum round under ckks: the report, the members in canonical order, and the
    updates they actually encrypted (rows in that order)."""
    Record.trained.clear()
    Poison.poisoner.clear()
    report = run_demo(
        DemoConfig(
            rounds=1,
            hospitals=hospitals,
            rule="multi-krum",
            protection="ckks",
            chain_state=tmp_path / "chain.json",
            progress=False,
            state_dir=tmp_path,
            **kwargs,
        ),
        peer_class=peer_class,
        mods=[Record(), poison],
    )
    members = sorted((h["address"] for h in report["hospitals"].values()), key=str.lower)
    return report, members, np.stack([Record.trained[(1, a)][0] for a in members])


@pytest.mark.parametrize("role", ["free", "holder"], ids=["member", "key-holder"])
def test_a_poisoner_is_left_out_under_ckks(tmp_path, role):
    """Even when the poisoner is the key holder: every member selects from the scalars itself."""
    state, model = tmp_path / "chain.json", tmp_path / "model.npy"
    report, members, deltas = _campaign(tmp_path, Poison(role), model_out=model)
    want = [
        members[i] for i in make_rule("multi-krum", 1).select(deltas)
    ]  # the clear rule, sealed mode's code
    assert Poison.poisoner[1] not in want and len(want) == 4
    audit = collect(*load_state(state))
    r = audit["rounds"][0]
    assert r["status"] == "finalized" and all(c["mode"] == 3 for c in r["commits"])
    assert sorted(r["accepted"], key=str.lower) == want
    assert all(c["ok"] for c in audit["checks"] if "beacon" in c["check"] or "ckks" in c["check"])
    reference = deltas[[members.index(a) for a in want]].astype(np.float64).mean(axis=0)
    got = np.load(model).astype(np.float64) - Record.trained[(1, members[0])][2]
    assert np.linalg.norm(got - reference) / np.linalg.norm(reference) < 1e-4
    hashes = {a["aggregate_hash"].removeprefix("0x") for a in r["attestations"]}
    assert hashes == {parameters_hash(np.load(model)).hex()}
    assert len(r["attestations"]) == 5 and report["peers_agree"]
    holder, aggregator = chain_roles(state, 1)
    assert (Poison.poisoner[1] == holder) == (role == "holder") and Poison.poisoner[1] != aggregator
    assert report["rounds"][0]["left_out"] == [
        n for n, h in report["hospitals"].items() if h["address"] == Poison.poisoner[1]
    ]


class ForgingMode(RobustCkksMode):
    """A malicious aggregator: it evaluates the Gram matrix over ciphertexts it changed
    (:meth:`forge`, given each member's index in the canonical order), then sums the real
    ciphertexts of the accepted set. Every instance is kept, so that the test can read what each
    key holder named."""

    instances: list[RobustCkksMode] = []
    gram_in_workers = False  # in this process, where forge() can reach the ciphertexts

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        ForgingMode.instances.append(self)

    def forge(self, vectors: list, index: dict[str, int], round_: int) -> list:
        raise NotImplementedError

    async def aggregate(self, round_, opened):
        self.round_opened = opened
        return await super().aggregate(round_, opened)

    async def _gram(self, round_, blobs):
        _, aggregator = self.roles(round_)
        if aggregator.address.lower() != self.ctx.address.lower():
            return await super()._gram(round_, blobs)
        public = self._public[round_]
        index = {a: blobs.index(c) for a, c in self.round_opened.items() if c is not None}
        vectors = self.forge([public.load(b, round_) for b in blobs], index, round_)
        return self._evaluators[round_].gram(vectors, round_)


class Disguise(ForgingMode):
    """The poisoner's row computed from an honest ciphertext: the poisoner looks honest."""

    def forge(self, vectors, index, round_):
        i = index[Poison.poisoner[round_]]
        vectors[i] = vectors[(i + 1) % len(vectors)]
        return vectors


class Inflate(ForgingMode):
    """An honest member's ciphertext multiplied by the public constant 30 (no key needed): it
    looks farthest from everyone, Multi-Krum drops it and keeps the poisoner in its place. The
    accepted block of the Gram matrix is untouched, so the decrypted sum agrees with it."""

    victim: dict[int, str] = {}

    def forge(self, vectors, index, round_):
        holder, aggregator = self.roles(round_)
        roles = {holder.address, aggregator.address, Poison.poisoner[round_]}
        victim = Inflate.victim[round_] = min((a for a in index if a not in roles), key=str.lower)
        ctx = seal_context(self.params)
        ev, pt = seal.Evaluator(ctx), seal.Plaintext()
        seal.CKKSEncoder(ctx).encode(30.0, 1.0, pt)  # an exact integer at scale 1, as norm bounding

        def times_30(ct):
            out = seal.Ciphertext()
            ev.multiply_plain(ct, pt, out)
            return out

        i = index[victim]
        vectors[i] = dataclasses.replace(
            vectors[i], ciphertexts=tuple(times_30(c) for c in vectors[i].ciphertexts)
        )
        return vectors


@pytest.mark.parametrize(
    "forgery", [Inflate, Disguise], ids=["inflate-honest", "disguise-poisoner"]
)
def test_a_forging_aggregator_is_outvoted_and_named(tmp_path, forgery):
    """The verifiers drawn with the aggregator recompute the Gram matrix from the same committed
    ciphertexts bit for bit; the key holder decrypts the one the majority sent. The round finalizes
    with the clear Multi-Krum's accepted set (the poisoner out, the honest victim in), and the key
    holder names the aggregator. On a single unverified aggregator, Inflate drops the victim and
    accepts the poisoner, and the sum check passes (its block is untouched)."""
    ForgingMode.instances.clear()
    state = tmp_path / "chain.json"
    report, members, deltas = _campaign(tmp_path, Poison(), peer_class=peer_with_mode(forgery))
    want = [members[i] for i in make_rule("multi-krum", 1).select(deltas)]  # sealed mode's code
    r = collect(*load_state(state))["rounds"][0]
    assert r["status"] == "finalized" and report["peers_agree"]
    assert Poison.poisoner[1] not in want and len(want) == 4
    accepted = sorted(r["accepted"], key=str.lower)
    if forgery is Inflate:
        victim, poisoner = Inflate.victim[1], Poison.poisoner[1]
        assert victim in want and victim in accepted, (
            f"the honest victim was dropped (poisoner accepted: {poisoner in accepted})"
        )
    assert accepted == want
    holder, aggregator = chain_roles(state, 1)
    (key_holder,) = [m for m in ForgingMode.instances if m.ctx.address == holder]
    assert key_holder.named == {1: {aggregator: "gram"}}
    # and on chain, signed by the key holder: an auditor sees whom it outvoted
    body = dict(kind=OUTVOTED, round=1, evaluators=[aggregator], phase="gram", majority=2)
    (alert,) = r["alerts"]
    assert (alert["reporter"], alert["kind"]) == (holder, OUTVOTED)
    assert (
        alert["body_hash"].removeprefix("0x") == alert_body_hash({**body, "reporter": holder}).hex()
    )


def test_norm_bounding_over_ciphertexts_matches_the_clear_rule(tmp_path):
    state, model = tmp_path / "chain.json", tmp_path / "model.npy"
    # [aggregation] norm_bound = true: the poisoner's update (sign-flipped, 10x) is scaled down to
    # the median norm by a public factor on its ciphertext, then Multi-Krum runs on the result
    report, members, deltas = _campaign(tmp_path, Poison(), model_out=model, norm_bound=True)
    clear = make_rule(
        "multi-krum", 1, clip=True
    )  # median-norm clipping, then the rule (sealed's code)
    r = collect(*load_state(state))["rounds"][0]
    assert r["status"] == "finalized" and report["peers_agree"]
    assert sorted(r["accepted"], key=str.lower) == [members[i] for i in clear.select(deltas)]
    reference = clear.aggregate(deltas).params.astype(np.float64)
    got = np.load(model).astype(np.float64) - Record.trained[(1, members[0])][2]
    assert np.linalg.norm(got - reference) / np.linalg.norm(reference) < 1e-4


class OutOfRange(Poison):
    """An update whose squared norm, 1.5 * 2^17, is beyond the scalar bound (2^17) but not so far
    that it wraps around (2^18): the key holder publishes NaN for its norm."""

    @staticmethod
    def poison(delta: np.ndarray) -> np.ndarray:
        return -delta / np.linalg.norm(delta) * np.sqrt(1.5 * 2**17)


def test_an_update_beyond_the_scalar_bound_is_left_out_not_fatal(tmp_path):
    state = tmp_path / "chain.json"
    report, members, deltas = _campaign(tmp_path, OutOfRange(), hospitals=6)
    # the unreadable row counts as the farthest: the accepted set is sealed's on the real updates
    want = [members[i] for i in make_rule("multi-krum", 1).select(deltas)]
    assert Poison.poisoner[1] not in want and len(want) == 5
    r = collect(*load_state(state))["rounds"][0]
    assert r["status"] == "finalized" and report["peers_agree"]
    assert sorted(r["accepted"], key=str.lower) == want


class LyingKeyHolder(ForgingMode):
    """A key holder that decrypts honestly, then signs to every member the same false scalars: an
    honest victim's inner products with every other member lowered by the largest true distance,
    so each of its distances grows by twice that and Multi-Krum drops it instead of the poisoner.
    It adapts to the norm check: the victim's squared norm stays true. The accepted block is
    untouched, so the decrypted sum agrees with it (``check_sum``)."""

    victim: dict[int, str] = {}

    def forge(self, vectors, index, round_):
        return vectors  # its aggregator evaluates honestly

    async def _send(self, round_, phase, included, body, to):
        if phase == "scalars":
            holder, _ = self.roles(round_)
            roles = {holder.address.lower(), Poison.poisoner[round_].lower()}
            victim = min(a for a in included if a not in roles)
            LyingKeyHolder.victim[round_] = victim
            gram = np.frombuffer(body, dtype="<f8").reshape(len(included), -1).copy()
            v, t = included.index(victim), distances_from_gram(gram).max()
            diag = gram[v, v]
            gram[v, :] -= t
            gram[:, v] -= t
            gram[v, v] = diag
            body = gram.astype("<f8").tobytes()
        await super()._send(round_, phase, included, body, to)


def test_a_key_holder_signing_false_scalars_is_named_by_its_victim(tmp_path):
    """Without the own-row check the round finalizes with the honest victim dropped silently.
    With it, the victim finds that its row sums to less over the accepted set than its own update
    times the decrypted sum, attests nothing and records an alert naming the key holder; the other
    4 of 5 members still reach the quorum (more than 2/3), so a key holder lying about fewer than a
    third of the members finalizes, but on the record."""
    ForgingMode.instances.clear()
    state = tmp_path / "chain.json"
    _, members, deltas = _campaign(tmp_path, Poison(), peer_class=peer_with_mode(LyingKeyHolder))
    victim = LyingKeyHolder.victim[1]
    assert victim in [members[i].lower() for i in make_rule("multi-krum", 1).select(deltas)]
    r = collect(*load_state(state))["rounds"][0]
    holder, _ = chain_roles(state, 1)
    assert r["status"] == "finalized" and victim not in [a.lower() for a in r["accepted"]]
    assert victim not in [a["account"].lower() for a in r["attestations"]]
    (mode,) = [m for m in ForgingMode.instances if m.ctx.address.lower() == victim]
    body = mode.accused[1]
    assert body["key_holder"] == holder and "row sums to" in str(body["check"])
    assert [(a["reporter"].lower(), a["kind"]) for a in r["alerts"]] == [(victim, FALSE_SCALARS)]
    assert r["alerts"][0]["body_hash"].removeprefix("0x") == alert_body_hash(body).hex()
    assert all(not m.accused for m in ForgingMode.instances if m is not mode)
