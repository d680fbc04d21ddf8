"""Fixed blob features: the DoG against scipy's Gaussian filter, and hand-worked cases."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import node.learning.blobfeatures
from node.data.samples import ImageData
from node.learning.blobfeatures import SURROUND, blob_features


def _images(x: np.ndarray) -> ImageData:
    return ImageData(x.astype(np.float32), np.zeros(len(x), dtype=np.float32), source="test")


def test_exports():
    assert sorted(node.learning.blobfeatures.__all__) == [
        "DEFAULT_SCALES",
        "SURROUND",
        "blob_features",
        "blob_map",
    ]


def test_features_match_a_scipy_difference_of_gaussians():
    rng = np.random.default_rng(3)
    x = rng.random((2, 1, 32, 32))
    feats = blob_features(_images(x), scales=(2.0,)).x
    for i in range(
        2
    ):  # scipy's "mirror" mode is torch's "reflect" padding; truncate=3 is the kernel radius
        dog = 4.0 * (
            gaussian_filter(x[i, 0], 2.0, mode="mirror", truncate=3.0)
            - gaussian_filter(x[i, 0], 2.0 * SURROUND, mode="mirror", truncate=3.0)
        )
        flat = np.sort(dog.ravel())[::-1]
        np.testing.assert_allclose(
            feats[i], [flat[0], flat[:10].mean(), dog.std(ddof=1)], rtol=1e-4, atol=1e-6
        )


def test_a_flat_image_has_no_blob_and_a_bright_disc_has_one():
    flat = np.full((1, 1, 32, 32), 0.4)
    yy, xx = np.mgrid[0:32, 0:32]
    disc = flat + 0.3 * ((yy - 16) ** 2 + (xx - 16) ** 2 <= 9)[None, None]
    f = blob_features(_images(np.concatenate([flat, disc]))).x
    np.testing.assert_allclose(f[0], 0.0, atol=1e-5)
    assert (f[1, 0::3] > 0.05).all()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        blob_features(_images(np.zeros((2, 3, 16, 16))))
    with pytest.raises(ValueError, match="scales"):
        blob_features(_images(np.zeros((2, 1, 16, 16))), scales=())
