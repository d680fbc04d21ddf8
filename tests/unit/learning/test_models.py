"""Models by name: identical seeded weights on every peer, Opacus-compatible, right shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.validators import ModuleValidator

from node.learning.models import MODEL_NAMES, build_model, flat_parameters, load_flat_parameters

SHAPES = {
    "logreg": {"n_features": 30},
    "mlp": {"n_features": 30},
    "mlp-wide": {"n_features": 30},
    "cnn": {"input_shape": (1, 32, 32)},
    "resnet18": {"input_shape": (1, 28, 28)},
    "resnet50": {"input_shape": (3, 64, 64)},
    "imaging-features": {"input_shape": (1, 16, 16)},
}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_builds_identically_from_a_seed_and_is_opacus_compatible(name):
    kwargs = SHAPES[name]
    a, b = build_model(name, seed=7, **kwargs), build_model(name, seed=7, **kwargs)
    assert flat_parameters(a).tobytes() == flat_parameters(b).tobytes()
    if name not in ("logreg", "imaging-features"):  # linear heads start at zero whatever the seed
        assert (
            flat_parameters(build_model(name, seed=8, **kwargs)).tobytes()
            != flat_parameters(a).tobytes()
        )
    assert ModuleValidator.validate(a, strict=False) == []
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in a.modules())
    shape = (kwargs["n_features"],) if "n_features" in kwargs else kwargs["input_shape"]
    assert a.eval()(torch.zeros(3, *shape)).shape == (3,)  # one logit per sample
    flat = flat_parameters(a)
    load_flat_parameters(b, flat + 1)
    assert np.allclose(flat_parameters(b), flat + 1)


def test_build_model_keeps_the_tabular_call_and_explains_mistakes():
    assert build_model("logreg", 30).linear.in_features == 30
    assert build_model("mlp", input_shape=(12,)).net[0].in_features == 12
    with pytest.raises(ValueError, match="unknown model 'vit'"):
        build_model("vit", 3)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("cnn", 30)
    with pytest.raises(ValueError, match="binary"):
        build_model("logreg", 30, n_classes=5)
    with pytest.raises(ValueError, match="too small"):
        build_model("resnet18", input_shape=(1, 4, 4))


def test_resnet_stem_follows_the_input_size():
    small, large = (
        build_model("resnet18", input_shape=(1, 28, 28)),
        build_model("resnet18", input_shape=(1, 64, 64)),
    )
    assert len(small.stem) == 3 and isinstance(large.stem[-1], torch.nn.MaxPool2d)
    assert sum(p.numel() for p in small.parameters()) == pytest.approx(11.17e6, rel=0.01)


def test_wide_mlp_has_about_a_million_parameters():
    # hand count: 30*985 + 985 (layer 1), 985*985 + 985 (layer 2), 985 + 1 (head)
    assert (
        flat_parameters(build_model("mlp-wide", 30)).size
        == 30 * 985 + 985 + 985 * 985 + 985 + 985 + 1
        == 1_002_731
    )


def test_sized_mlp_for_a_parameter_budget() -> None:
    from node.learning.models import mlp_for_parameters

    # by hand: width h on 30 features holds 30h + h + h*h + h + h + 1 = h^2 + 33h + 1
    assert mlp_for_parameters(100_000, 30) == "mlp@300"  # 90,000 + 9,900 + 1 = 99,901
    assert flat_parameters(build_model("mlp@300", 30)).size == 99_901
    assert mlp_for_parameters(1_000_000, 30) == "mlp@984"  # 968,256 + 32,472 + 1 = 1,000,729
    with pytest.raises(ValueError, match="mlp@<width>"):
        build_model("mlp@wide", 30)
    with pytest.raises(ValueError, match="needs more than"):
        mlp_for_parameters(10, 30)
