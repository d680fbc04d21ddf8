"""A 2-layer scattering transform of images (Bruna & Mallat, TPAMI 2013; Oyallon & Mallat, CVPR 2015).

The fixed features Tramer & Boneh (ICLR 2021) train DP linear models on. An image ``x`` is
filtered by a bank of complex Morlet wavelets ``psi_{j,theta}`` (scales ``2^j``, ``j < J``;
``L`` orientations in ``[0, pi)``) and a Gaussian low-pass ``phi`` of width ``~2^J``:

- order 0: ``S0 = x * phi``;
- order 1: ``S1[j1, t1] = |x * psi_{j1,t1}| * phi``;
- order 2: ``S2[j1, t1, j2, t2] = ||x * psi_{j1,t1}| * psi_{j2,t2}| * phi`` for ``j2 > j1``;

each subsampled by ``2^J``: ``1 + J L + L^2 J (J - 1) / 2`` channels (81 for J = 2, L = 8).
The filters are those of kymatio's 2-D filter bank (Andreux et al., JMLR 2020): a Morlet of
width ``0.8 * 2^j``, centre frequency ``3 pi / 4 / 2^j``, slant ``4 / L``, periodized on the
padded grid, with its mean subtracted through a Gaussian envelope so that ``psi_hat(0) = 0``;
``phi`` a Gaussian of width ``0.8 * 2^(J-1)``. Convolutions are products in the Fourier domain
(``torch.fft``), at full resolution, on the image reflect-padded by ``2^J`` pixels on each side.
Nothing here is learned from data, so the map spends no privacy.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["FilterBank", "filter_bank", "scattering", "scattering_channels"]


def gabor(size: tuple[int, int], sigma: float, theta: float, xi: float, slant: float) -> np.ndarray:
    """A 2-D Gabor filter centred at the origin of a periodic ``size`` grid (5 x 5 periodic copies
    summed), ``exp(-x^T C x / 2) exp(i xi <x, e_theta>) / (2 pi sigma^2 / slant)`` with the
    envelope ``C`` of widths ``sigma`` along ``e_theta`` and ``sigma / slant`` across it."""
    m, n = size
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    curv = rot @ np.diag([1.0, slant**2]) @ rot.T / (2 * sigma**2)
    out = np.zeros(size, dtype=np.complex128)
    for ex in range(-2, 3):
        for ey in range(-2, 3):
            xx, yy = np.mgrid[ex * m : (ex + 1) * m, ey * n : (ey + 1) * n].astype(np.float64)
            quad = curv[0, 0] * xx**2 + 2 * curv[0, 1] * xx * yy + curv[1, 1] * yy**2
            out += np.exp(-quad + 1j * xi * (xx * math.cos(theta) + yy * math.sin(theta)))
    return out / (2 * math.pi * sigma**2 / slant)


def morlet(
    size: tuple[int, int], sigma: float, theta: float, xi: float, slant: float
) -> np.ndarray:
    """Gabor minus its envelope scaled to cancel the mean: a zero-mean (admissible) wavelet."""
    wave = gabor(size, sigma, theta, xi, slant)
    envelope = gabor(size, sigma, theta, 0.0, slant)
    return wave - (wave.sum() / envelope.sum()) * envelope


class FilterBank:
    """Fourier transforms of the wavelets and the low-pass on a padded ``size`` grid."""

    def __init__(self, size: tuple[int, int], J: int, L: int) -> None:
        self.size, self.J, self.L = size, J, L
        self.psi_hat = {}  # (j, t) -> real float tensor (size)
        for j in range(J):
            for t in range(L):
                theta = (int(L - L / 2 - 1) - t) * math.pi / L
                psi = morlet(size, 0.8 * 2**j, theta, 0.75 * math.pi / 2**j, 4.0 / L)
                self.psi_hat[j, t] = torch.from_numpy(np.real(np.fft.fft2(psi)).astype(np.float32))
        phi = gabor(size, 0.8 * 2 ** (J - 1), 0.0, 0.0, 1.0)
        self.phi_hat = torch.from_numpy(np.real(np.fft.fft2(phi)).astype(np.float32))
        self.psi = torch.stack(
            [torch.stack([self.psi_hat[j, t] for t in range(L)]) for j in range(J)]
        )  # (J, L, M, N)


@lru_cache(maxsize=16)
def filter_bank(size: tuple[int, int], J: int = 2, L: int = 8) -> FilterBank:
    """The (cached) filter bank for a padded grid of ``size``."""
    if J < 1 or L < 1:
        raise ValueError(f"scattering needs J >= 1 and L >= 1, got J={J}, L={L}")
    return FilterBank((int(size[0]), int(size[1])), J, L)


def scattering_channels(J: int = 2, L: int = 8) -> int:
    """``1 + J L + L^2 J (J - 1) / 2``: the number of channels per input channel."""
    return 1 + J * L + L * L * J * (J - 1) // 2


def reflect_padding(side: int, J: int) -> tuple[int, int]:
    """Reflect padding of at least ``2^J`` on each side, to a multiple of ``2^J`` (kymatio's rule)."""
    total = ((side + 2**J) // 2**J + 1) * 2**J
    before = (total - side) // 2
    return before, total - side - before


def _fold(u_hat: torch.Tensor, step: int) -> torch.Tensor:
    """Spectrum of the signal subsampled by ``step`` on each axis: the mean of the ``step x step``
    aliased copies (the Poisson summation identity), so one small inverse FFT gives the samples."""
    *lead, m, n = u_hat.shape
    return u_hat.reshape(*lead, step, m // step, step, n // step).mean(dim=(-4, -2))


def scattering(x: torch.Tensor, J: int = 2, L: int = 8) -> torch.Tensor:
    """Scattering coefficients of ``x`` (N x C x H x W, H and W multiples of ``2^J``):
    N x C x K x H/2^J x W/2^J with ``K = scattering_channels(J, L)``, ordered order 0, then
    order 1 by (j1, theta1), then order 2 by (j1, theta1, j2, theta2)."""
    if x.ndim != 4:
        raise ValueError(f"scattering needs N x C x H x W images, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    step = 2**J
    if h % step or w % step or min(h, w) < 2 * step:
        raise ValueError(
            f"scattering with J={J} needs sides that are multiples of {step} and >= {2 * step}, "
            f"got {h}x{w}"
        )
    (top, bottom), (left, right) = reflect_padding(h, J), reflect_padding(w, J)
    padded = torch.nn.functional.pad(
        x.reshape(n * c, 1, h, w).float(), (left, right, top, bottom), mode="reflect"
    )
    padded = padded[:, 0]
    bank = filter_bank(tuple(padded.shape[-2:]), J, L)
    psi = bank.psi.to(padded.device)  # (J, L, M, N)
    phi = bank.phi_hat.to(padded.device)
    r0, c0 = top // step, left // step

    def low_pass(
        u_hat: torch.Tensor,
    ) -> torch.Tensor:  # (..., M, N) spectrum -> subsampled, unpadded
        s = torch.fft.ifft2(_fold(u_hat * phi, step)).real
        return s[..., r0 : r0 + h // step, c0 : c0 + w // step]

    x_hat = torch.fft.fft2(padded)  # (B, M, N)
    u1_hat = torch.fft.fft2(
        torch.fft.ifft2(x_hat[:, None, None] * psi[None]).abs()
    )  # (B, J, L, M, N)
    b = len(padded)
    out = [low_pass(x_hat)[:, None], low_pass(u1_hat).reshape(b, J * L, h // step, w // step)]
    for j1 in range(J - 1):
        u2 = torch.fft.ifft2(
            u1_hat[:, j1, :, None, None] * psi[None, None, j1 + 1 :]
        ).abs()  # (B, L, J-j1-1, L, M, N)
        out.append(low_pass(torch.fft.fft2(u2)).reshape(b, -1, h // step, w // step))
    s = torch.cat(out, dim=1)  # (n*c, K, h/step, w/step)
    return s.reshape(n, c, s.shape[1], s.shape[2], s.shape[3])
