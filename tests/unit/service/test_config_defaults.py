"""One configuration source (issue 18 §5): the node, the demo, the incentive simulator, the CLI
and the library settings resolve the same default for every key they share.

Each is built from an empty configuration (the node from a TOML holding only its required keys,
the demo with no option, the simulator from an empty scenario) and compared key by key. The
values the issue names (PRV, one local epoch) and the documented defaults are pinned too, so a
default that changes everywhere at once still fails here.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from node.cli import build_parser
from node.incentives.scenario import scenario_from_dict
from node.learning.privacy import DPConfig
from node.learning.training import TrainConfig, derive_seed, round_train_config
from node.peer.pipeline import PeerSettings
from node.service.config import parse_config
from node.sim.demo import DemoConfig

REQUIRED_ONLY = {
    "node": {"identity": "a.key", "state_dir": "state"},
    "chain": {"rpc": "http://127.0.0.1:8545", "deployment": "deployment.json"},
}


def _settings(s: PeerSettings) -> dict:
    """A PeerSettings as a dict; its feature bounds (arrays) by identity."""
    out = {f.name: getattr(s, f.name) for f in fields(s) if f.name != "feature_bounds"}
    out["feature_bounds"] = id(s.feature_bounds)
    return out


def test_the_node_the_demo_and_the_simulator_resolve_the_same_defaults():
    node = parse_config(REQUIRED_ONLY, Path("node.toml"))
    demo = DemoConfig()
    scenario = scenario_from_dict({})

    # the round pipeline: the node's, the demo's, and the library default agree (bounds aside:
    # a node and the demo on breast-cancer data both scale by the published ranges)
    from_node, from_demo = PeerSettings.from_config(node), demo.peer_settings()
    assert _settings(from_node) == _settings(from_demo)
    bare = _settings(PeerSettings())
    assert {k: v for k, v in _settings(from_node).items() if k != "feature_bounds"} == {
        k: v for k, v in bare.items() if k != "feature_bounds"
    }
    assert from_node.train == TrainConfig()

    # DP-SGD: the node's [privacy], the demo's and DPConfig's own defaults are one
    assert DPConfig.from_section(node.privacy) == demo.dp() == DPConfig()

    # keys the demo and the simulator share with the node's schema
    t, a, p, d = node.training, node.aggregation, node.privacy, node.data
    shared = {
        "seed": (t.seed, demo.seed, scenario.seed),
        "rounds": (p.rounds, demo.rounds, scenario.rounds),
        "model": (t.model, demo.model, scenario.model),
        "rule": (a.rule, demo.rule, scenario.rule),
        "f": (a.f, from_demo.f, scenario.f),
        "learning_rate": (t.learning_rate, demo.learning_rate, scenario.learning_rate),
        "local_epochs": (p.local_epochs, demo.local_epochs, scenario.local_epochs),
        "hospitals": (d.sites, demo.hospitals, scenario.n_hospitals),
    }
    for key, values in shared.items():
        assert len(set(values)) == 1, (key, values)

    # the CLI's `medmesh demo` options are the demo's defaults
    args = build_parser().parse_args(["demo"])
    for key in (
        "rounds",
        "hospitals",
        "epsilon",
        "rule",
        "protection",
        "accountant",
        "model",
        "data",
        "scaling",
        "learning_rate",
        "seed",
    ):
        assert getattr(args, key) == getattr(demo, key), key


def test_the_documented_defaults():
    """docs/node-guide.md and the issue: PRV, one full-batch step a round, CPU, the geometric median."""
    dp, train = DPConfig(), TrainConfig()
    assert (dp.accountant, dp.local_epochs, dp.steps_per_epoch, dp.rounds, dp.target_epsilon) == (
        "prv",
        1,
        1,
        5,
        1.0,
    )
    assert (train.learning_rate, train.device, train.proximal_mu) == (2.0, "cpu", 0.0)
    assert PeerSettings().rule == "geomed" and PeerSettings().min_contributors == 3


def test_one_seed_derivation():
    """The peer's per-round seed is the one the simulators use for site 0; sites stay apart."""
    assert round_train_config(TrainConfig(seed=7), 9).seed == derive_seed(7, 9) == 7 * 100_003 + 9
    seeds = {derive_seed(s, r, i) for s in range(5) for r in range(30) for i in range(12)}
    assert len(seeds) == 5 * 30 * 12
