"""Fixed image features for a DP linear model: the input map of the ``imaging-features`` model.

Tramer & Boneh (ICLR 2021), "Differentially private learning needs better features": under DP-SGD
a linear model on a data-independent feature map loses far less than an end-to-end CNN, because
the private part has few parameters and its clipped gradients carry signal above the noise.

Feature sets (each row a vector per single-channel image):

- ``blob``: the scale-normalized difference-of-Gaussians statistics of :mod:`node.learning.blobfeatures`
  (9 numbers);
- ``scatter``: the 2-layer scattering transform of :mod:`node.learning.scatternet` (J = 2, L = 8, 81
  channels), each channel pooled over space to its mean and its maximum (162 numbers; a lesion
  may lie anywhere, so the pooling is global);
- ``scatter-rot``: the same coefficients averaged over orientations first, i.e. made rotation
  invariant (Sifre & Mallat, CVPR 2013): order 1 over ``theta1``, order 2 over ``theta1`` at each
  relative angle ``theta2 - theta1``; ``1 + J + L J (J - 1) / 2`` channels (11), pooled to mean and
  maximum (22 numbers). A lesion is a round blob: orientation carries little of its signal,
  and under DP every extra dimension costs (the noise is isotropic, the signal is not);
- ``scatter+blob``, ``scatter-rot+blob``: a scattering set and the blob statistics side by side.

:data:`FEATURE_SET` (``scatter-rot+blob``, 31 numbers) was chosen on a validation split by
``scripts/sweep_dp_imaging.py``.

The features are whitened (ZCA) with the mean and covariance of a PUBLIC reference set: SYNTHETIC
lesion images from the generator of :mod:`node.data.datasets.synthetic` at a seed no site uses, so no
hospital statistic is released and nothing here spends privacy. Whitening makes the linear
model's loss well conditioned, so that a few DP-SGD steps go far (De et al. 2022). The
reference is the synthetic task's. :func:`fit_whitener` takes any public images, but the node has
no setting for them yet: a consortium training on real scans needs that hook first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from node.data.samples import ImageData, TabularData
from node.learning.blobfeatures import DEFAULT_SCALES, blob_map
from node.learning.scatternet import scattering, scattering_channels

__all__ = [
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

FEATURE_SETS = ("blob", "scatter", "scatter-rot", "scatter+blob", "scatter-rot+blob")
FEATURE_SET = "scatter-rot+blob"  # the imaging-features model's map (chosen by validation)
SCATTER_J, SCATTER_L = 2, 8
REFERENCE_SEED = 10_007  # no site of any split uses it (sites: seed * 1000 + h, h < 500)
REFERENCE_IMAGES = 2000
BATCH = (
    64  # images per scattering call: its order-2 spectra take 64 x 64 x (S + 8)^2 complex values
)
#: The federated DP-SGD schedule of the ``imaging-features`` model at epsilon 1 (clip 1), picked on a
#: validation split by scripts/sweep_dp_imaging.py (benchmarks/results/sweep_dp_imaging_features.json):
#: few full-batch steps at a large learning rate (De et al. 2022).
DP_SCHEDULE = {"rounds": 20, "local_epochs": 1, "steps_per_epoch": 1, "learning_rate": 1.0}


def feature_dim(kind: str = FEATURE_SET) -> int:
    """Length of one image's feature vector."""
    _check(kind)
    dims = {
        "blob": 3 * len(DEFAULT_SCALES),
        "scatter": 2 * scattering_channels(SCATTER_J, SCATTER_L),
        "scatter-rot": 2 * (1 + SCATTER_J + SCATTER_L * SCATTER_J * (SCATTER_J - 1) // 2),
    }
    return sum(dims[part] for part in kind.split("+"))


def _check(kind: str) -> None:
    if kind not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {kind!r}; choose one of {', '.join(FEATURE_SETS)}")


def orientation_average(s: torch.Tensor, J: int = SCATTER_J, L: int = SCATTER_L) -> torch.Tensor:
    """Scattering channels (N x K x h x w, in :func:`node.learning.scatternet.scattering`'s order) averaged
    over orientations: order 0 as is, order 1 over ``theta1`` per ``j1``, order 2 over ``theta1`` per
    ``(j1, j2)`` and relative angle ``(theta2 - theta1) mod L``."""
    n, _, h, w = s.shape
    out = [s[:, :1], s[:, 1 : 1 + J * L].reshape(n, J, L, h, w).mean(dim=2)]
    at = 1 + J * L
    rel = (torch.arange(L)[:, None] + torch.arange(L)[None, :]) % L  # [theta1, d] -> theta2
    for j1 in range(J - 1):
        k = J - j1 - 1
        block = (
            s[:, at : at + L * k * L].reshape(n, L, k, L, h, w).transpose(1, 2)
        )  # N, j2, theta1, theta2, h, w
        index = rel.view(1, 1, L, L, 1, 1).expand(n, k, L, L, h, w).to(s.device)
        out.append(
            block.gather(3, index).mean(dim=2).reshape(n, k * L, h, w)
        )  # mean over theta1 at each d
        at += L * k * L
    return torch.cat(out, dim=1)


def raw_features(x: torch.Tensor, kind: str = FEATURE_SET) -> torch.Tensor:
    """Unwhitened features of N x 1 x H x W images (differentiable in ``x``)."""
    _check(kind)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"image features need N x 1 x H x W images, got shape {tuple(x.shape)}")
    parts = []
    if "scatter" in kind:
        s = scattering(x, J=SCATTER_J, L=SCATTER_L)[:, 0]  # N x 81 x H/4 x W/4
        if kind.startswith("scatter-rot"):
            s = orientation_average(s)
        parts += [s.mean(dim=(2, 3)), s.amax(dim=(2, 3))]
    if "blob" in kind:
        parts.append(blob_map(x))
    return torch.cat(parts, dim=1)


def _batched(features, images: np.ndarray, batch: int, dim: int) -> torch.Tensor:
    """``features`` of ``images`` ``batch`` at a time (bounded memory), without gradients."""
    x = torch.from_numpy(images)
    with torch.no_grad():
        parts = [features(x[i : i + batch]) for i in range(0, len(x), batch)]
    return torch.cat(parts) if parts else torch.zeros(0, dim)


@dataclass(frozen=True)
class Whitener:
    """``(f - mean) @ matrix``: ZCA whitening fitted on public images."""

    mean: torch.Tensor
    matrix: torch.Tensor

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        return (f - self.mean.to(f.dtype)) @ self.matrix.to(f.dtype)


def fit_whitener(reference: ImageData, kind: str = FEATURE_SET, floor: float = 1e-6) -> Whitener:
    """ZCA whitening from PUBLIC reference images: ``C^(-1/2)`` with eigenvalues floored at
    ``floor`` times the largest (near-constant directions are not blown up)."""
    f = (
        _batched(lambda b: raw_features(b, kind), reference.x, BATCH, feature_dim(kind))
        .double()
        .numpy()
    )
    if len(f) <= f.shape[1]:
        raise ValueError(
            f"a whitener for {f.shape[1]} features needs more than {f.shape[1]} reference images, "
            f"got {len(f)}"
        )
    mu = f.mean(0)
    vals, vecs = np.linalg.eigh(np.cov(f - mu, rowvar=False))
    vals = np.maximum(vals, floor * vals.max())
    w = (vecs / np.sqrt(vals)) @ vecs.T
    return Whitener(torch.from_numpy(mu.astype(np.float32)), torch.from_numpy(w.astype(np.float32)))


@lru_cache(maxsize=8)
def public_whitener(size: int, kind: str = FEATURE_SET) -> Whitener:
    """The whitener of :data:`REFERENCE_IMAGES` SYNTHETIC reference images of ``size`` pixels
    (4 scanner styles, as the synthetic sites; seed :data:`REFERENCE_SEED`); cached."""
    from node.data.datasets.synthetic import (
        synthetic_imaging_split,
    )  # the data layer imports no model code

    ref = synthetic_imaging_split(
        4, sizes=[REFERENCE_IMAGES // 4] * 4, n_test=4, size=size, seed=REFERENCE_SEED
    )
    return fit_whitener(ImageData.concat(list(ref.hospitals.values())), kind)


def image_features(x: torch.Tensor, kind: str = FEATURE_SET) -> torch.Tensor:
    """Whitened features of N x 1 x S x S images (the public whitener for side S)."""
    if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"image features need N x 1 x S x S images, got shape {tuple(x.shape)}")
    return public_whitener(int(x.shape[-1]), kind)(raw_features(x, kind))


def to_features(data: ImageData, kind: str = FEATURE_SET, batch: int = BATCH) -> TabularData:
    """``data``'s images mapped to whitened features once (what a loader does before training)."""
    if not isinstance(data, ImageData):
        raise ValueError(
            f"{data.source or 'data'}: image features need images, got {type(data).__name__}"
        )
    f = _batched(lambda b: image_features(b, kind), data.x, batch, feature_dim(kind))
    return TabularData(
        f.numpy().astype(np.float32),
        data.y,
        patients=data.patients,
        groups=data.groups,
        source=f"{data.source} | {kind} features",
    )
