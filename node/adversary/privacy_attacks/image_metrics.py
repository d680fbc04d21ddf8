"""Reconstruction quality: PSNR, and SSIM as defined by Wang, Bovik, Sheikh and Simoncelli (2004),
"Image quality assessment: from error visibility to structural similarity", IEEE TIP 13(4).

SSIM follows the paper's Sec. III-C and its reference implementation: an 11 x 11
circular-symmetric Gaussian window with standard deviation 1.5 (normalized to sum 1), local
weighted means, variances and covariance, K1 = 0.01, K2 = 0.03, C1 = (K1 L)^2, C2 = (K2 L)^2
with L the data range, and the mean of the SSIM map over the windows that fit in the image
("valid" positions, no padding).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["psnr", "ssim", "gaussian_window"]


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("images hold non-finite pixels")
    return x, y


def psnr(reference: np.ndarray, image: np.ndarray, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(L^2 / MSE); infinite for identical images."""
    x, y = _pair(reference, image)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The paper's weighting function w: a normalized, circular-symmetric Gaussian."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    reference: np.ndarray,
    image: np.ndarray,
    *,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Mean SSIM of two 2-D images (a leading channel axis of size 1 is dropped)."""
    x, y = _pair(reference, image)
    x, y = np.squeeze(x), np.squeeze(y)
    if x.ndim != 2:
        raise ValueError(f"ssim needs 2-D images, got shape {x.shape}")
    if min(x.shape) < window:
        raise ValueError(f"images of {x.shape} are smaller than the {window}x{window} window")
    w = gaussian_window(window, sigma)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2

    def local(img: np.ndarray) -> np.ndarray:  # weighted sum over each valid window
        return np.einsum("ijkl,kl->ij", sliding_window_view(img, w.shape), w)

    mx, my = local(x), local(y)
    vx, vy, cxy = local(x * x) - mx**2, local(y * y) - my**2, local(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(ssim_map.mean())
