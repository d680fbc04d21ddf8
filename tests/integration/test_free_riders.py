"""The free-rider screen (node/consensus/freeriding.py): hand-built vectors of known angle, a stale
free-rider in a simulated campaign on the embedded chain (paid nothing, its rejection on the
record), honest sites never flagged over several seeds of the shipped scenarios, and a stale
free-rider among live peers (real libp2p, DP-SGD, sealing; marked slow)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from ledger import collect, connect, load_state
from ledger.deploy import Deployment
from node.consensus.freeriding import SIMILARITY_THRESHOLD, screen_free_riders
from node.consensus.rules import aggregate
from node.incentives.cohort import build_cohort
from node.incentives.report import summarize
from node.incentives.scenario import load_scenario, scenario_from_dict
from node.incentives.simulate import Campaign, simulate
from node.peer.mods import PeerMod
from node.sim.demo import DemoConfig, run_demo


def _at_angle(base: np.ndarray, cos: float, seed: int = 0) -> np.ndarray:
    """A vector of base's norm whose cosine with ``base`` is exactly ``cos`` (Gram-Schmidt)."""
    other = np.random.default_rng(seed).normal(size=base.shape)
    other -= (other @ base) / (base @ base) * base
    other *= np.linalg.norm(base) / np.linalg.norm(other)
    return cos * base + math.sqrt(1 - cos**2) * other


def test_screen_flags_zero_stale_and_later_duplicates() -> None:
    rng = np.random.default_rng(1)
    prev = rng.normal(size=50)
    a, b = rng.normal(size=50), rng.normal(size=50)
    updates = [
        a,
        np.zeros(50),
        3.0 * prev,
        b,
        a.copy(),
        _at_angle(prev, 0.9995),
        _at_angle(prev, 0.998),
        1e-9 * a,
    ]
    # the fixed-cosine part alone (spread_fraction=0)
    flags = screen_free_riders(updates, prev, spread_fraction=0)
    assert flags == {
        1: "zero-update",
        2: "stale-update",
        4: "duplicate-update",
        5: "stale-update",
        7: "zero-update",
    }
    # against the round's spread (random 50-d vectors: nearly orthogonal, S ~ 1) a noisy copy at
    # cosine 0.998 (sine 0.063 < 0.2 S) is a duplicate; the stale test stays on the fixed cosine
    assert screen_free_riders(updates, prev) == flags
    noisy = _at_angle(a, 0.998, seed=3)
    assert screen_free_riders([a, b, noisy], None) == {2: "duplicate-update"}
    assert screen_free_riders([noisy, b, a], None) == {
        2: "duplicate-update"
    }  # the later one, whoever it is
    assert screen_free_riders([a, b, noisy], None, spread_fraction=0) == {}
    # the earlier of two copies is kept, whichever order they come in
    assert screen_free_riders([b, a, a.copy(), a.copy()], None) == {
        2: "duplicate-update",
        3: "duplicate-update",
    }
    # a copy of a flagged (stale) update is flagged as stale itself, not as a duplicate of it
    assert screen_free_riders([prev, prev.copy()], prev) == {0: "stale-update", 1: "stale-update"}
    # before the first global step (None or zero) nothing is stale
    assert screen_free_riders([a, b], np.zeros(50)) == {} == screen_free_riders([a, b], None)
    # the threshold is inclusive, on cosine: 0.999 flagged, just below it not
    assert screen_free_riders([_at_angle(prev, SIMILARITY_THRESHOLD + 1e-9)], prev) == {
        0: "stale-update"
    }
    assert screen_free_riders([_at_angle(prev, SIMILARITY_THRESHOLD - 1e-6)], prev) == {}


def test_screen_flags_a_copy_of_another_members_previous_update_never_of_its_own() -> None:
    """Against the previous round's accepted updates (``earlier``), by the same spread test:
    random 50-d rows are nearly orthogonal, so the round's spread S (the median pairwise sine,
    computed here with numpy) is near 1 and the bound 0.2 S near 0.2."""
    rng = np.random.default_rng(2)
    a, b, c = rng.normal(size=50), rng.normal(size=50), rng.normal(size=50)
    before = {"x": rng.normal(size=50), "y": rng.normal(size=50)}
    rows = [a, b, c]

    def sine(u, v):
        return math.sqrt(max(0.0, 1 - (u @ v / np.linalg.norm(u) / np.linalg.norm(v)) ** 2))

    spread = float(np.median([sine(rows[i], rows[j]) for i in range(3) for j in range(i + 1, 3)]))
    close, far = _at_angle(before["x"], 0.998, seed=4), _at_angle(before["x"], 0.9, seed=4)
    assert sine(close, before["x"]) < 0.2 * spread < sine(far, before["x"])
    senders = ["y", "x", "z"]
    # z sends x's previous update with noise: flagged; x sending the same is its own: kept
    assert screen_free_riders([a, b, close], None, senders=senders, earlier=before) == {
        2: "duplicate-update"
    }
    assert screen_free_riders([a, close, c], None, senders=senders, earlier=before) == {}
    assert screen_free_riders([a, b, far], None, senders=senders, earlier=before) == {}
    assert screen_free_riders([a, b, close], None) == {}  # without the previous round's
    # an exact replay is caught by the fixed cosine alone
    assert screen_free_riders(
        [a, b, 2 * before["y"]], None, senders=["x", "z", "w"], earlier=before, spread_fraction=0
    ) == {2: "duplicate-update"}
    with pytest.raises(ValueError, match="senders of all 3 updates"):
        screen_free_riders([a, b, c], None, earlier=before)


def test_screen_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="threshold"):
        screen_free_riders([np.ones(3)], None, threshold=1.5)
    with pytest.raises(ValueError, match="same number of values"):
        screen_free_riders([np.ones(3), np.ones(4)], None)
    with pytest.raises(ValueError, match="previous_step has 2 values"):
        screen_free_riders([np.ones(3)], np.ones(2))


_STALE_FOUR = {
    "name": "stale-four",
    "rounds": 3,
    "rule": "median",
    "learning_rate": 0.5,
    "local_epochs": 5,
    "hospitals": [
        {"samples": 120},
        {"samples": 60},
        {"samples": 40},
        {"samples": 40, "role": "free-rider", "free_ride": "stale"},
    ],
}


def test_a_stale_free_rider_is_rejected_on_record_and_paid_nothing() -> None:
    w3 = connect()
    result = simulate(scenario_from_dict(_STALE_FOUR), w3=w3, progress=False)
    rider = "hospital-d"
    # round 1 has no previous global step: the replay is all zeros
    assert [r.rejected for r in result.rounds] == [{rider: "zero-update"}] + [
        {rider: "stale-update"}
    ] * 2
    by_scheme = {s.scheme: s for s in summarize(result)}
    for scheme in ("shapley-gtg", "reputation", "leave-one-out"):
        assert by_scheme[scheme].free_rider_share <= 0.05, scheme
        assert by_scheme[scheme].balances_match_chain
    # the game is the step actually applied (issue 16), and the screen kept the replay out of
    # it: the rejected free-rider is a null player, worth exactly zero in every round
    assert all(r.shapley_exact[rider] == 0 for r in result.rounds)
    # every accepted site put the rejection and its reason on chain
    audit = collect(w3, Deployment.from_dict(result.chain["deployment"]))
    account = result.chain["accounts"][rider].lower()
    for r, row in zip(result.rounds, audit["rounds"], strict=False):
        recorded = {
            (x["reporter"].lower(), x["account"].lower(), x["reason_name"])
            for x in row["rejections"]
        }
        reporters = {result.chain["accounts"][n].lower() for n in r.accepted}
        assert recorded == {(rep, account, r.rejected[rider]) for rep in reporters}
    assert all(c["ok"] for c in audit["checks"]), [c for c in audit["checks"] if not c["ok"]]


@pytest.mark.parametrize("name", ["default", "free-riders", "poisoners", "four"])
def test_honest_sites_are_never_flagged(name: str) -> None:
    """No DP noise (the hardest case for the screen): over 3 seeds and every round, no honest
    site (label noise and legacy scanners included) is flagged, the previous round's accepted
    updates of the other sites included in the screen."""
    for seed in range(3):
        scenario = replace(load_scenario(name), seed=seed, rounds=4)
        cohort = build_cohort(scenario)
        campaign = Campaign(scenario, cohort)
        players = list(cohort.hospitals)
        samples = [float(h.samples) for h in players]
        for t in range(1, scenario.rounds + 1):
            stack = campaign.updates(t, players)
            flags = campaign.screen(stack, campaign.commit_order(players), players)
            flagged = {players[i].name for i in flags}
            assert flagged <= {h.name for h in players if h.role != "honest"}, (
                name,
                seed,
                t,
                flags,
            )
            step = aggregate(scenario.rule, stack, samples, f=scenario.f)
            campaign.advance(step, {h.name: stack[i] for i, h in enumerate(players)})


class StaleFreeRide(PeerMod):
    """Sends the previous global step instead of training (Lin et al., 2019's stale update; in
    round 1 that is a zero update), and leaves its own update out of its aggregate so that it
    votes with the others and keeps up with the global model."""

    async def train(self, peer, round_, call_next):
        update = await call_next(round_)
        step = np.zeros_like(update.delta) if peer.last_step is None else peer.last_step
        return replace(update, delta=step.astype(update.delta.dtype))

    def verified(self, peer, round_, opened, rejected):
        opened.pop(peer.address, None)


@pytest.mark.slow
def test_live_peers_reject_a_stale_free_rider_and_say_why_on_chain(tmp_path) -> None:
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(rounds=2, chain_state=state, progress=False, state_dir=tmp_path),
        mods={3: [StaleFreeRide()]},
    )
    names = list(report["hospitals"])
    rider = report["hospitals"][names[3]]["address"]
    honest = {report["hospitals"][n]["address"].lower() for n in names[:3]}
    audit = collect(*load_state(state))
    for row, r, reason in zip(
        report["rounds"], audit["rounds"], ("zero-update", "stale-update"), strict=False
    ):
        assert all(row["rejected"][n] == {rider: reason} for n in names[:3]), row["rejected"]
        assert r["status"] == "finalized" and {a.lower() for a in r["accepted"]} == honest
        recorded = {
            (x["reporter"].lower(), x["account"].lower(), x["reason_name"]) for x in r["rejections"]
        }
        assert recorded == {(h, rider.lower(), reason) for h in honest}
    assert audit["credits"].get(rider, 0) == 0
