"""Every [training] key of a node's config reaches training, in every round.

Regression test: the round pipeline once rebuilt its TrainConfig from the learning rate and
the seed alone, so ``[training].device`` never reached training and FedProx's ``proximal_mu``
was lost in the node process.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from node.data.samples import LabelledData
from node.learning.models import build_model, flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, round_train_config, train_local
from node.peer.pipeline import PeerSettings
from node.service.config import load_config

CONFIG = """
[node]
identity = "a.key"
state_dir = "state"
listen = "/ip4/127.0.0.1/tcp/4001"

[chain]
rpc = "http://127.0.0.1:8545"
deployment = "deployment.json"

[training]
learning_rate = 1.5
seed = 7
device = "cpu"
proximal_mu = 0.25
"""


def test_every_training_key_reaches_the_rounds_train_config(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text(CONFIG)
    train = PeerSettings.from_config(load_config(path)).train
    assert (train.learning_rate, train.seed, train.device, train.proximal_mu) == (
        1.5,
        7,
        "cpu",
        0.25,
    )
    for round_ in (1, 2, 9):
        cfg = round_train_config(train, round_)
        assert cfg.seed == 7 * 100_003 + round_
        for f in fields(TrainConfig):
            if f.name != "seed":
                assert getattr(cfg, f.name) == getattr(train, f.name), f.name


def test_the_rounds_proximal_term_changes_what_is_trained(tmp_path):
    """FedProx's mu set in the config moves training: the round's update is pulled to the anchor."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 30)).astype(np.float32)
    data = LabelledData(x, (x[:, 0] > 0).astype(np.float32))
    norms = []
    for mu in (0.0, 0.5):
        model = build_model("logreg", 30)
        privacy = PrivacyLedger(
            DPConfig(
                target_epsilon=1.0,
                delta=1e-5,
                steps_per_epoch=4,
                local_epochs=2,
                rounds=1,
                secure_mode=False,
            ),
            tmp_path / f"p{mu}.json",
        )
        cfg = round_train_config(TrainConfig(learning_rate=1.0, seed=3, proximal_mu=mu), 1)
        result = train_local(model, flat_parameters(model), data, privacy, cfg)
        norms.append(float(np.linalg.norm(result.delta)))
    assert norms[1] < norms[0]
