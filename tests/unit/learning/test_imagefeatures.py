"""Fixed image features and the `imaging-features` model: whitening against numpy's covariance,
the pooled scattering against the transform itself, loader-side mapping equal to the forward
pass, and DP training of the head alone."""

import numpy as np
import pytest
import torch

import node.learning.imagefeatures
from node.data.datasets.synthetic import synthetic_lesions
from node.data.samples import TabularData
from node.learning.blobfeatures import blob_features
from node.learning.imagefeatures import (
    FEATURE_SET,
    feature_dim,
    fit_whitener,
    orientation_average,
    public_whitener,
    raw_features,
    to_features,
)
from node.learning.models import build_model, flat_parameters, model_input
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.scatternet import scattering
from node.learning.training import TrainConfig, train_local

SIZE = 16  # tiny images keep the public whitener (2,000 reference images) fast


def test_exports():
    assert sorted(node.learning.imagefeatures.__all__) == sorted(
        [
            "FEATURE_SETS",
            "FEATURE_SET",
            "Whitener",
            "feature_dim",
            "orientation_average",
            "raw_features",
            "fit_whitener",
            "public_whitener",
            "image_features",
            "to_features",
            "REFERENCE_SEED",
            "REFERENCE_IMAGES",
            "DP_SCHEDULE",
        ]
    )


def test_features_are_pooled_scattering_then_blob_statistics():
    images = synthetic_lesions(3, size=SIZE, seed=1)
    x = torch.from_numpy(images.x)
    f = raw_features(x, "scatter+blob").numpy()
    s = scattering(x, J=2, L=8)[:, 0].numpy()  # 3 x 81 x 4 x 4
    assert f.shape == (3, feature_dim("scatter+blob")) == (3, 2 * 81 + 9)
    assert feature_dim("scatter-rot+blob") == 2 * (1 + 2 + 8) + 9 == 31
    np.testing.assert_allclose(f[:, :81], s.mean(axis=(2, 3)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(f[:, 81:162], s.max(axis=(2, 3)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(f[:, 162:], blob_features(images).x, rtol=1e-5, atol=1e-7)


def test_orientation_average_by_hand():
    # J = 2, L = 2: channels [S0, S1(j0,t0), S1(j0,t1), S1(j1,t0), S1(j1,t1), S2(t1=0,t2=0), S2(0,1), S2(1,0), S2(1,1)]
    s = torch.arange(9, dtype=torch.float32).view(1, 9, 1, 1)
    got = orientation_average(s, J=2, L=2).flatten().tolist()
    # order 1: (1+2)/2, (3+4)/2; order 2 at relative angle 0: (S2(0,0) + S2(1,1))/2, at 1: (S2(0,1) + S2(1,0))/2
    assert got == [0.0, 1.5, 3.5, (5 + 8) / 2, (6 + 7) / 2]


def test_rotating_an_image_by_90_degrees_keeps_its_rotation_invariant_features():
    x = torch.from_numpy(synthetic_lesions(2, size=SIZE, seed=5).x)
    turned = torch.rot90(x, 1, dims=(2, 3))  # 90 degrees = L/2 orientation steps

    def worst_channel_change(kind):  # relative change of the most-changed feature
        a, b = raw_features(x, kind), raw_features(turned, kind)
        return float(((a - b).norm(dim=0) / a.norm(dim=0)).max())

    # averaged over orientations: within 5% (the 4-pixel sampling grid does not rotate onto itself);
    # per orientation, channels swap places and change by far more
    assert worst_channel_change("scatter-rot") < 0.05 < 0.3 < worst_channel_change("scatter")


def test_whitened_reference_features_have_identity_covariance():
    ref = synthetic_lesions(400, size=SIZE, seed=2)
    w = fit_whitener(ref, "blob")
    z = w(raw_features(torch.from_numpy(ref.x), "blob")).double().numpy()
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(9), atol=1e-3)
    with pytest.raises(ValueError, match="needs more than 171 reference images"):
        fit_whitener(ref.subset(np.arange(100)), "scatter+blob")


def test_the_loader_mapping_equals_the_models_own_forward_pass():
    images = synthetic_lesions(6, size=SIZE, seed=3)
    model = build_model("imaging-features", input_shape=images.input_shape)
    torch.nn.init.normal_(model.linear.weight, generator=torch.Generator().manual_seed(0))
    mapped = model_input("imaging-features", images)
    assert isinstance(mapped, TabularData) and mapped.x.shape == (6, feature_dim())
    assert np.array_equal(mapped.y, images.y) and np.array_equal(mapped.patients, images.patients)
    with torch.no_grad():
        np.testing.assert_allclose(
            model(torch.from_numpy(images.x)).numpy(),
            model(torch.from_numpy(mapped.x)).numpy(),
            rtol=1e-5,
            atol=1e-5,
        )
    expected = public_whitener(SIZE)(raw_features(torch.from_numpy(images.x), FEATURE_SET))
    np.testing.assert_allclose(mapped.x, expected.numpy(), rtol=1e-5, atol=1e-5)
    assert model_input("cnn", images) is images  # other models take the images themselves


def test_only_the_linear_head_is_trained_and_shared_under_dp():
    images = synthetic_lesions(40, size=SIZE, seed=4)
    model = build_model("imaging-features", input_shape=images.input_shape)
    start = flat_parameters(model)
    assert start.size == feature_dim() + 1 and not start.any()  # weights and bias, zero-initialized
    dp = DPConfig(
        target_epsilon=1.0, delta=1e-5, rounds=1, local_epochs=1, steps_per_epoch=1
    ).calibrated()
    for data in (
        images,
        model_input("imaging-features", images),
    ):  # on the fly, or mapped by the loader
        update = train_local(
            model,
            start,
            data,
            PrivacyLedger(dp, warn_if_off=False),
            TrainConfig(1.0, seed=0, device="cpu"),
        )
        assert (
            update.delta.shape == start.shape
            and np.isfinite(update.delta).all()
            and update.delta.any()
        )
        assert 0 < update.epsilon <= 1.0 + 1e-6


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="single-channel square"):
        build_model("imaging-features", input_shape=(3, 32, 32))
    with pytest.raises(ValueError, match=f"{feature_dim()} features"):
        build_model("imaging-features", 30)
    with pytest.raises(ValueError, match="unknown feature set"):
        feature_dim("pixels")
    with pytest.raises(ValueError, match="need images"):
        to_features(TabularData(np.zeros((2, 3)), np.array([0, 1])))
    assert build_model("imaging-features", feature_dim()).linear.in_features == feature_dim()
