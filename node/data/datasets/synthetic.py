"""A SYNTHETIC imaging task, generated on the fly for tests and benchmarks of the CNN path.

No patient data: every image is drawn from a seeded generator. Each 1 x size x size image is
smooth random "tissue" (low-frequency noise) with a few small bright specks; a positive image
also holds one lesion-like blob (a soft-edged Gaussian disc, radius 2.5-5 px, faint against
the tissue). Each site has its own :class:`SiteStyle` (contrast, brightness, pixel noise), as
different scanners would, and a "legacy scanner" site is much noisier. Every data set built
here says ``synthetic`` in its ``source``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from node.data.samples import HospitalSplit, ImageData, hospital_name

__all__ = [
    "SiteStyle",
    "synthetic_lesions",
    "synthetic_imaging_split",
    "DEFAULT_STYLES",
    "LEGACY_STYLE",
]


@dataclass(frozen=True)
class SiteStyle:
    """How one site's scanner renders an image."""

    contrast: float = 1.0  # multiplies deviations from mid-grey
    brightness: float = 0.0  # added after the contrast
    noise: float = 0.06  # std of the per-pixel Gaussian noise (pixels are in [0, 1])


DEFAULT_STYLES = (
    SiteStyle(1.0, 0.0, 0.05),
    SiteStyle(0.8, 0.05, 0.07),
    SiteStyle(1.2, -0.05, 0.06),
    SiteStyle(0.9, 0.0, 0.06),
)
LEGACY_STYLE = SiteStyle(0.7, 0.0, 0.18)


def synthetic_lesions(
    n: int,
    *,
    size: int = 64,
    positive_fraction: float = 0.5,
    style: SiteStyle = SiteStyle(),
    seed: int = 0,
    site: str = "site",
) -> ImageData:
    """``n`` synthetic images (1 x size x size, float32 in [0, 1]) with labels 1 = lesion."""
    if n < 1 or size < 16:
        raise ValueError("need n >= 1 and size >= 16")
    if not 0 < positive_fraction < 1:
        raise ValueError("positive_fraction must be in (0, 1)")
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_fraction).astype(np.float32)
    y[0], y[-1] = 1.0, 0.0 if n > 1 else y[-1]  # both classes present whenever n >= 2
    coarse = torch.from_numpy(rng.normal(size=(n, 1, 6, 6)).astype(np.float32))
    tissue = torch.nn.functional.interpolate(
        coarse, size=(size, size), mode="bicubic", align_corners=False
    )
    img = 0.45 + 0.08 * tissue[:, 0].numpy()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    def blobs(
        mask: np.ndarray, radius: np.ndarray, amplitude: np.ndarray, margin: int
    ) -> np.ndarray:
        cy = rng.uniform(margin, size - margin, n).astype(np.float32)
        cx = rng.uniform(margin, size - margin, n).astype(np.float32)
        d2 = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2
        soft = 1.0 / (1.0 + np.exp((np.sqrt(d2) - radius[:, None, None]) / 0.8))  # soft-edged disc
        return (mask * amplitude)[:, None, None] * soft

    for _ in range(3):  # specks on every image: brightness alone must not give the label away
        img += blobs(rng.random(n) < 0.7, rng.uniform(0.8, 1.5, n), rng.uniform(0.1, 0.25, n), 4)
    img += blobs(y > 0.5, rng.uniform(2.5, 5.0, n), rng.uniform(0.2, 0.35, n), min(10, size // 4))
    img = 0.5 + (img - 0.5) * style.contrast + style.brightness
    img += rng.normal(scale=style.noise, size=img.shape)
    x = np.clip(img, 0.0, 1.0).astype(np.float32)[:, None]
    patients = np.asarray([f"syn-{site}-{i}" for i in range(n)])
    return ImageData(
        x, y, patients=patients, source=f"synthetic lesions (generated, not patient data) {site}"
    )


def synthetic_imaging_split(
    n_hospitals: int = 4,
    *,
    sizes: Sequence[int] | None = None,
    n_test: int = 400,
    size: int = 64,
    seed: int = 0,
    legacy_site: bool = True,
    positive_fractions: Sequence[float] | None = None,
) -> HospitalSplit[ImageData]:
    """Hospitals with site-specific styles (the last one a legacy scanner when ``legacy_site``)
    and label mixes, plus a held-out set drawn equally from every site's style. SYNTHETIC."""
    sizes = (
        list(sizes)
        if sizes is not None
        else [240, 180, 120, 90][:n_hospitals] + [120] * max(0, n_hospitals - 4)
    )
    fractions = (
        list(positive_fractions)
        if positive_fractions is not None
        else [0.3, 0.5, 0.4, 0.6][:n_hospitals] + [0.5] * max(0, n_hospitals - 4)
    )
    if len(sizes) != n_hospitals or len(fractions) != n_hospitals:
        raise ValueError("sizes and positive_fractions need one entry per hospital")
    styles = [DEFAULT_STYLES[h % len(DEFAULT_STYLES)] for h in range(n_hospitals)]
    if legacy_site:
        styles[-1] = LEGACY_STYLE
    hospitals = {}
    tests = []
    for h in range(n_hospitals):
        name = hospital_name(h)
        hospitals[name] = synthetic_lesions(
            sizes[h],
            size=size,
            positive_fraction=fractions[h],
            style=styles[h],
            seed=seed * 1000 + h,
            site=name,
        )
        tests.append(
            synthetic_lesions(
                max(2, n_test // n_hospitals),
                size=size,
                style=styles[h],
                seed=seed * 1000 + 500 + h,
                site=f"{name}-test",
            )
        )
    return HospitalSplit(
        hospitals, ImageData.concat(tests, source="synthetic lesions (generated) held-out set")
    )
