"""Fast tests of the node's config file: validation with one-line errors naming the key, the
template, the CLI's init and add-peer, and settings reaching the pipeline. The node's other
pieces are in test_node_pieces.py; the real processes in tests/e2e/test_node_process.py."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from node.peer.pipeline import PeerSettings
from node.service.config import PROTECTION_MODES, ConfigError, load_config, template

GOOD = """
[node]
identity = "a.key"
state_dir = "state"
listen = "/ip4/127.0.0.1/tcp/4001"
bootstrap = ["/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"]

[chain]
rpc = "http://127.0.0.1:8545"
deployment = "deployment.json"

[privacy]
epsilon = 2.0
"""


def write(tmp_path, text: str):
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_defaults_and_resolved_paths(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.node.identity == tmp_path / "a.key"
    assert cfg.node.state_dir == tmp_path / "state"
    assert cfg.node.bootstrap == (
        "/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",
    )
    assert cfg.listen_ip_port == ("127.0.0.1", 4001)
    assert cfg.privacy.epsilon == 2.0 and cfg.privacy.delta == 1e-5
    # the default rule is the geometric median (issue 16: the one that met the robustness goal)
    assert cfg.aggregation.protection == "sealed" and cfg.aggregation.rule == "geomed"


def test_template_round_trips(tmp_path):
    text = template(
        {
            "node": {"identity": "k.key", "state_dir": "s", "listen": "/ip4/127.0.0.1/tcp/5000"},
            "chain": {"rpc": "http://127.0.0.1:9", "deployment": "d.json"},
            "aggregation": {"rule": "trimmed-mean"},
            "data": {"site": 2},
        }
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.aggregation.rule == "trimmed-mean" and cfg.data.site == 2 and cfg.data.cohort == 0
    assert cfg.node.identity == tmp_path / "k.key" and cfg.rounds.round_timeout == 60.0


BAD = [
    (
        GOOD.replace("epsilon = 2.0", "epsilon = -1"),
        "node.toml: [privacy].epsilon: must be > 0, got -1.0",
    ),
    (
        GOOD.replace("epsilon = 2.0", 'epsilon = "high"'),
        "node.toml: [privacy].epsilon: must be a number, got 'high'",
    ),
    (
        GOOD.replace("epsilon = 2.0", "epsilonn = 2.0"),
        "node.toml: [privacy].epsilonn: unknown key; expected one of",
    ),
    (
        GOOD.replace('rpc = "http://127.0.0.1:8545"\n', ""),
        "node.toml: [chain].rpc: missing (required)",
    ),
    (
        GOOD.replace('rpc = "http://127.0.0.1:8545"', 'rpc = "127.0.0.1:8545"'),
        "node.toml: [chain].rpc: must be an http(s) JSON-RPC URL",
    ),
    (
        GOOD.replace('tcp/4001"', 'tcp/99999"'),
        "node.toml: [node].listen: must look like /ip4/127.0.0.1/tcp/4001",
    ),
    (
        GOOD.replace("/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5", ""),
        "node.toml: [node].bootstrap: '/ip4/127.0.0.1/tcp/4002' must be",
    ),
    (
        GOOD + '\n[aggregation]\nprotection = "plaintext"\n',
        "node.toml: [aggregation].protection: unknown protection mode 'plaintext'; choose one of sealed, secagg, ckks",
    ),
    (
        GOOD + '\n[aggregation]\nprotection = "ckks"\n',
        "node.toml: [aggregation].protection: protection ckks reveals only the sum",
    ),
    (
        GOOD + '\n[aggregation]\nrule = "fedavg"\nprotection = "secagg"\nquantize = true\n',
        'node.toml: [aggregation].quantize: 8-bit values compose with protection = "sealed" only',
    ),
    (
        GOOD + "\n[aggregation]\ntopk = 1.5\n",
        "node.toml: [aggregation].topk: must be in (0, 1], got 1.5",
    ),
    (
        GOOD + "\n[aggregation]\nclip_norm = 0\n",
        "node.toml: [aggregation].clip_norm: must be > 0, got 0.0",
    ),
    (
        GOOD.replace("epsilon = 2.0", "epsilon = 2.0\ncount_noise = 0"),
        "node.toml: [privacy].count_noise: must be > 0 (the row count is always",
    ),
    (
        GOOD + '\n[aggregation]\nprotection = "secagg"\nrule = "fedavg"\nnorm_bound = true\n',
        "node.toml: [aggregation].norm_bound: norm_bound needs each update's norm: protection "
        "sealed, or ckks with krum / multi-krum; not secagg with fedavg",
    ),
    (
        GOOD + '\n[aggregation]\nnorm_bound = "yes"\n',
        "node.toml: [aggregation].norm_bound:",
    ),
    (
        GOOD + "\n[aggregation]\nmin_contributors = 2\n",
        "node.toml: [aggregation].min_contributors: must be at least 3, got 2: a sum of two updates reveals each",
    ),
    (
        GOOD + '\n[aggregation]\nrule = "krum"\n',
        "node.toml: [aggregation].rule: krum needs at least 5 hospitals, the split has 4",
    ),
    (
        GOOD + '\n[aggregation]\nrule = "mean"\n',
        "node.toml: [aggregation].rule: unknown rule 'mean'",
    ),
    (
        GOOD + "\n[aggregation]\nbucket_size = 0\n",
        "node.toml: [aggregation].bucket_size: must be >= 1",
    ),
    (
        GOOD + '\n[aggregation]\nrule = "fedavg"\nbucket_size = 2\n',
        'node.toml: [aggregation].bucket_size: must be >= 1, and 1 with rule = "fedavg"',
    ),
    (
        GOOD + "\n[data]\nsite = 4\n",
        "node.toml: [data].site: must be in 0..3 (data.sites = 4), got 4",
    ),
    (GOOD + '\n[data]\nsource = "table"\n', "node.toml: [data].path: required for source 'table'"),
    (
        GOOD + "\n[data]\ncohort = -1\n",
        "node.toml: [data].cohort: must be a number of patients >= 1 (0: the data's row count rounded up), "
        "got -1",
    ),
    (GOOD + '\n[data]\nsource = "table"\npath = "missing.csv"\n', "missing.csv does not exist"),
    (GOOD + '\n[training]\nmodel = "gpt"\n', "node.toml: [training].model: unknown model 'gpt'"),
    (GOOD + '\n[training]\nmodel = "mlp@0"\n', "[training].model: unknown model 'mlp@0'"),
    (GOOD + '\n[training]\nmodel = "mlp@x1"\n', "[training].model: unknown model 'mlp@x1'"),
    (
        GOOD + "\n[training]\nproximal_mu = -0.1\n",
        "node.toml: [training].proximal_mu: must be >= 0, got -0.1",
    ),
    (
        GOOD + "\n[rounds]\nround_timeout = 0\n",
        "node.toml: [rounds].round_timeout: must be > 0, got 0.0",
    ),
    (
        GOOD + "\n[gossip]\nmax_control_bytes = 2000000\n",
        "node.toml: [gossip].max_control_bytes: must be in 1..524288",
    ),
    (
        GOOD + "\n[gossip]\nreconnect_initial = 60.0\n",
        "node.toml: [gossip].reconnect_initial: must be > 0 and <= reconnect_max",
    ),
    (GOOD + "\n[extra]\nx = 1\n", "node.toml: [extra]: unknown section"),
    (GOOD.replace("[chain]", "[chains]"), "node.toml: [chains]: unknown section"),
    (
        GOOD + "\n[rounds]\nstop_after_round = true\n",
        "node.toml: [rounds].stop_after_round: must be an integer, got True",
    ),
    ("[node\n", "node.toml: not valid TOML"),
    # issue 17.15 and 17.14: each accepted before
    (
        GOOD.replace("12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5", "12D3KooWExample"),
        "node.toml: [node].bootstrap: '/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWExample': "
        "'12D3KooWExample' is not a libp2p peer ID",
    ),
    (
        GOOD.replace("/ip4/127.0.0.1/tcp/4002", "/ip4/0.0.0.0/tcp/4002"),
        "0.0.0.0 is a listen address, not one a peer can dial",
    ),
    (
        GOOD + "\n[aggregation]\nf = 10\n[data]\nsites = 1\n",
        "node.toml: [aggregation].f: must be below the number of hospitals (1), got 10",
    ),
    (
        GOOD + '\n[aggregation]\nrule = "krum"\nf = 2\n[data]\nsites = 6\n',
        "node.toml: [aggregation].f: krum with f = 2 needs at least 7 hospitals",
    ),
    (
        GOOD + "\n[gossip]\nmax_connections_per_ip = 0\n",
        "node.toml: [gossip].max_connections_per_ip: must be >= 1, got 0",
    ),
    (
        GOOD + '\n[training]\ndevice = "gpu"\n',
        "node.toml: [training].device: must be auto, cpu, cuda or cuda:N, got 'gpu'",
    ),
    (
        GOOD + '\n[rounds]\nwhen_done = "sleep"\n',
        "node.toml: [rounds].when_done: must be one of stop, standby",
    ),
    (
        GOOD + '\n[data]\nscaling = "guess"\n',
        "node.toml: [data].scaling: must be one of auto, secure, bounds, federated",
    ),
    (
        GOOD + '\n[data]\nsource = "npz"\npath = "node.toml"\nscaling = "bounds"\n',
        "node.toml: [data].bounds: required with scaling",
    ),
]


def test_a_sized_mlp_is_a_model_a_node_trains(tmp_path):
    """``mlp@<width>`` (node.learning.models), e.g. the 99,901-parameter ``mlp@300`` that
    ``scripts/bench_nodes.py --model mlp@300`` runs real nodes with."""
    cfg = load_config(write(tmp_path, GOOD + '\n[training]\nmodel = "mlp@300"\n'))
    assert cfg.training.model == "mlp@300"


@pytest.mark.parametrize("text,expected", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_config_fails_with_one_line_naming_the_key(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_config_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read the config"):
        load_config(tmp_path / "nope.toml")


def test_protection_modes_are_defined_once():
    assert PROTECTION_MODES["sealed"] == 1  # the byte HospitalPeer records on chain today
    from node.peer.pipeline import MODE_SEALED

    assert MODE_SEALED == PROTECTION_MODES["sealed"]


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    from node.cli import main

    path = write(tmp_path, GOOD.replace("epsilon = 2.0", "epsilon = 0"))
    assert main(["node", "run", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "medmesh: error: node.toml: [privacy].epsilon: must be > 0, got 0.0"


def test_cli_init_writes_0600_identity_and_a_loadable_config(tmp_path, capsys):
    from node.cli import main
    from node.peer.identity import NodeIdentity

    assert (
        main(
            [
                "node",
                "init",
                "--dir",
                str(tmp_path / "a"),
                "--name",
                "hospital-a",
                "--json",
                "--listen",
                "/ip4/127.0.0.1/tcp/4101",
                "--deployment",
                str(tmp_path / "d.json"),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    for key in ("identity", "config"):
        assert os.stat(out[key]).st_mode & 0o777 == 0o600
    cfg = load_config(out["config"])
    ident = NodeIdentity.load(cfg.node.identity)
    assert ident.address == out["address"] and ident.institution == "hospital-a"
    assert out["multiaddr"] == f"/ip4/127.0.0.1/tcp/4101/p2p/{out['peer_id']}"
    assert out["peer_id"].startswith("12D3KooW")
    # a second init must not overwrite the identity
    assert main(["node", "init", "--dir", str(tmp_path / "a"), "--name", "hospital-a"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_state_dir_that_is_a_file_names_the_key(tmp_path):
    (tmp_path / "state").write_text("not a folder")
    with pytest.raises(
        ConfigError, match=r"node.toml: \[node\].state_dir: .* exists and is not a directory"
    ):
        load_config(write(tmp_path, GOOD))


def test_three_class_labels_name_the_config_key(tmp_path):
    from node.data.loaders import load_table
    from node.data.samples import DataError

    path = tmp_path / "t.csv"
    path.write_text("a,label\n1,x\n2,y\n3,z\n")
    with pytest.raises(DataError, match=r"\[data\].positive"):
        load_table(path, "label")
    cfg = load_config(
        write(
            tmp_path, GOOD + f'\n[data]\nsource = "table"\npath = "{path}"\npositive = ["x", "y"]\n'
        )
    )
    from node.service.sources import load_training_data

    assert load_training_data(cfg.data).y.tolist() == [1.0, 1.0, 0.0]
    # built without the config's checks, a file source without a path is one line, not a crash
    with pytest.raises(ConfigError, match=r"^\[data\]\.path: required for source 'table'$"):
        load_training_data(replace(cfg.data, path=None))


def test_init_prints_a_dialable_multiaddr_and_add_peer_fills_bootstrap(tmp_path, capsys):
    """Issue 17.14: the multiaddr other hospitals put in their bootstrap lists, and a command that does it."""
    import tomllib

    from node.cli import main

    dep = tmp_path / "deployment.json"
    dep.write_text("{}")
    assert (
        main(
            [
                "node",
                "init",
                "--dir",
                str(tmp_path / "a"),
                "--name",
                "a",
                "--listen",
                "/ip4/0.0.0.0/tcp/4001",
                "--public-ip",
                "10.1.2.3",
                "--deployment",
                str(dep),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("multiaddr "))
    a_addr = line.split()[1]
    assert a_addr.startswith("/ip4/10.1.2.3/tcp/4001/p2p/12D3KooW")
    text = (tmp_path / "a" / "a.toml").read_text()
    assert (
        'listen = "/ip4/0.0.0.0/tcp/4001"  # libp2p listen multiaddr' in text
    )  # a commented template
    assert (
        main(
            [
                "node",
                "init",
                "--dir",
                str(tmp_path / "b"),
                "--name",
                "b",
                "--listen",
                "/ip4/127.0.0.1/tcp/4002",
                "--deployment",
                str(dep),
                "--json",
            ]
        )
        == 0
    )
    b = json.loads(capsys.readouterr().out)
    assert b["multiaddr"].startswith("/ip4/127.0.0.1/tcp/4002/p2p/")
    b_cfg = tmp_path / "b" / "b.toml"
    assert main(["node", "add-peer", "--config", str(b_cfg), a_addr]) == 0
    assert main(["node", "add-peer", "--config", str(b_cfg), a_addr]) == 0  # idempotent
    assert tomllib.loads(b_cfg.read_text())["node"]["bootstrap"] == [a_addr]
    assert os.stat(b_cfg).st_mode & 0o777 == 0o600
    capsys.readouterr()
    assert (
        main(
            ["node", "add-peer", "--config", str(b_cfg), "/ip4/10.0.0.1/tcp/1/p2p/12D3KooWExample"]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a libp2p peer ID" in err[0]
    assert main(["node", "add-peer", "--config", str(b_cfg), b["multiaddr"]]) == 2
    assert "own address" in capsys.readouterr().err
    # the walkthrough's form: every other hospital's `multiaddr` file in one call; one bad entry adds nothing
    assert (tmp_path / "a" / "multiaddr").read_text().strip() == a_addr
    assert (
        main(
            [
                "node",
                "init",
                "--dir",
                str(tmp_path / "c"),
                "--name",
                "c",
                "--listen",
                "/ip4/127.0.0.1/tcp/4003",
                "--deployment",
                str(dep),
                "--json",
            ]
        )
        == 0
    )
    c_addr = (tmp_path / "c" / "multiaddr").read_text().strip()
    assert c_addr == json.loads(capsys.readouterr().out)["multiaddr"]
    assert (
        main(
            [
                "node",
                "add-peer",
                "--config",
                str(b_cfg),
                c_addr,
                "/ip4/0.0.0.0/tcp/1/p2p/" + c_addr[-52:],
            ]
        )
        == 2
    )
    assert tomllib.loads(b_cfg.read_text())["node"]["bootstrap"] == [a_addr]
    assert main(["node", "add-peer", "--config", str(b_cfg), a_addr, c_addr]) == 0
    assert tomllib.loads(b_cfg.read_text())["node"]["bootstrap"] == [a_addr, c_addr]


def test_bucket_size_reaches_the_live_peer_settings(tmp_path):
    cfg = load_config(write(tmp_path, GOOD + '\n[aggregation]\nrule = "median"\nbucket_size = 2\n'))
    assert cfg.aggregation.bucket_size == 2 and PeerSettings.from_config(cfg).bucket_size == 2
    assert load_config(write(tmp_path, GOOD)).aggregation.bucket_size == 1  # off by default


def test_norm_bound_reaches_the_pipeline_settings(tmp_path):
    """``[aggregation] norm_bound`` (Sun et al. 2019) is off by default and, once set, is what the
    round pipeline runs with (sealed: the clear rule's clipping; ckks: factors on ciphertexts)."""
    assert PeerSettings.from_config(load_config(write(tmp_path, GOOD))).norm_bound is False
    cfg = load_config(write(tmp_path, GOOD + "\n[aggregation]\nnorm_bound = true\n"))
    assert cfg.aggregation.norm_bound is True
    assert PeerSettings.from_config(cfg).norm_bound is True
