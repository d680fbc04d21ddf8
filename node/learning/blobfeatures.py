"""Fixed, handcrafted image features for DP training (Tramer & Boneh, ICLR 2021).

"Differentially private learning needs better features": a linear model on a data-independent
feature map loses far less accuracy under DP-SGD than an end-to-end CNN, because the private
part has few parameters and its clipped gradients carry signal above the noise. Here the map is
a blob detector: each image is filtered by a difference of Gaussians (Lindeberg 1998,
scale-normalized by ``sigma^2``) at a few scales, and each response map is pooled to its
maximum, the mean of its 10 largest values and its standard deviation.
Nothing in the map is learned from data, so it spends no epsilon.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from node.data.samples import ImageData, TabularData

__all__ = ["blob_features", "blob_map", "DEFAULT_SCALES", "SURROUND"]

DEFAULT_SCALES = (2.0, 3.0, 4.0)
SURROUND = 2.5  # the DoG's outer Gaussian is SURROUND times wider than its centre


def _gaussian(sigma: float) -> torch.Tensor:
    r = min(int(np.ceil(3 * sigma)), 15)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    g = _gaussian(sigma).to(x.dtype)
    r = len(g) // 2
    x = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (r, r, 0, 0), mode="reflect"), g.view(1, 1, 1, -1)
    )
    return torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (0, 0, r, r), mode="reflect"), g.view(1, 1, -1, 1)
    )


def blob_map(x: torch.Tensor, scales: Sequence[float] = DEFAULT_SCALES) -> torch.Tensor:
    """The features of :func:`blob_features` on a tensor of N x 1 x H x W images (differentiable)."""
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"blob_features needs N x 1 x H x W images, got shape {tuple(x.shape)}")
    if not scales or min(scales) <= 0:
        raise ValueError("scales must be a non-empty list of positive widths (pixels)")
    cols = []
    for s in scales:
        dog = (s**2) * (
            _blur(x, s) - _blur(x, SURROUND * s)
        )  # bright blobs of radius ~ s*sqrt(2) respond > 0
        flat = dog.flatten(1)
        top = flat.topk(min(10, flat.shape[1]), dim=1).values
        cols += [top[:, 0], top.mean(dim=1), flat.std(dim=1)]
    return torch.stack(cols, dim=1)


def blob_features(images: ImageData, scales: Sequence[float] = DEFAULT_SCALES) -> TabularData:
    """Three features per scale (max, top-10 mean and std of the scale-normalized DoG response) of
    single-channel images; labels and patients carried over."""
    feats = blob_map(torch.from_numpy(images.x), scales).numpy().astype(np.float32)
    return TabularData(
        feats, images.y, patients=images.patients, source=f"{images.source} | blob features"
    )
