"""The scattering transform against independent references: the Morlet's defining properties,
the Littlewood-Paley bound checked by direct circular convolution, scipy's Gaussian blur for
order 0, a loop-by-loop transcription of the cascade, and translation invariance."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

import node.learning.scatternet
from node.learning.scatternet import (
    filter_bank,
    gabor,
    morlet,
    reflect_padding,
    scattering,
    scattering_channels,
)


def test_exports():
    assert sorted(node.learning.scatternet.__all__) == [
        "FilterBank",
        "filter_bank",
        "scattering",
        "scattering_channels",
    ]


def test_channel_count_is_one_plus_jl_plus_l2_j_choose_2():
    assert scattering_channels(2, 8) == 81  # 1 + 16 + 64
    assert scattering_channels(3, 8) == 1 + 24 + 64 * 3
    assert scattering(torch.rand(2, 1, 16, 16), J=2, L=8).shape == (2, 1, 81, 4, 4)


def test_morlet_has_zero_mean_and_peaks_at_its_centre_frequency():
    m = 64
    for j in (0, 1):
        for theta in (0.0, math.pi / 4, math.pi / 2):
            psi = morlet((m, m), 0.8 * 2**j, theta, 0.75 * math.pi / 2**j, 0.5)
            assert abs(psi.sum()) < 1e-9 * np.abs(psi).sum()  # admissible: psi_hat(0) = 0
            spectrum = np.abs(np.fft.fft2(psi))
            k1, k2 = np.unravel_index(spectrum.argmax(), spectrum.shape)
            w = (
                2 * math.pi * (np.array([k1, k2]) - m * (np.array([k1, k2]) > m // 2)) / m
            )  # signed frequency
            xi = 0.75 * math.pi / 2**j
            # the peak lies near xi * (cos theta, sin theta): the envelope subtraction moves it a little outwards
            assert np.linalg.norm(w - xi * np.array([math.cos(theta), math.sin(theta)])) < 0.25 * xi


def _circular(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(x conv k)[n] = sum_m x[m] k[(n - m) mod M], written out (no FFT)."""
    m, n = x.shape
    i1 = (np.arange(m)[:, None] - np.arange(m)[None, :]) % m
    i2 = (np.arange(n)[:, None] - np.arange(n)[None, :]) % n
    return np.einsum("iajb,ab->ij", k[i1[:, :, None, None], i2[None, None, :, :]], x)


def test_littlewood_paley_bound_makes_the_wavelet_transform_non_expansive_and_stable():
    size = (16, 16)
    bank = filter_bank(size, J=2, L=8)
    # LP(w) = |phi_hat(w)|^2 + 1/2 sum_{j,theta} (|psi_hat(w)|^2 + |psi_hat(-w)|^2): the orientations in [0, pi)
    # and their mirror images cover the circle for a real signal

    def flip(a: torch.Tensor) -> torch.Tensor:  # a(-w) on the FFT grid
        return torch.roll(torch.flip(a, (0, 1)), (1, 1), (0, 1))

    lp = bank.phi_hat**2 + 0.5 * sum(p**2 + flip(p) ** 2 for p in bank.psi_hat.values())
    upper, lower = float(lp.max()), float(lp.min())
    assert upper <= 1.0 + 1e-5 and lower > 0.05
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=size)
        energy = np.sum(_circular(x, np.real(gabor(size, 0.8 * 2, 0.0, 0.0, 1.0))) ** 2)
        for j in range(2):
            for t in range(8):
                theta = (int(8 - 8 / 2 - 1) - t) * math.pi / 8
                psi = morlet(size, 0.8 * 2**j, theta, 0.75 * math.pi / 2**j, 0.5)
                # the bank keeps Re(psi_hat), i.e. the filter (psi(x) + conj(psi(-x))) / 2
                sym = 0.5 * (psi + np.conj(np.roll(np.flip(psi, (0, 1)), (1, 1), (0, 1))))
                energy += np.sum(np.abs(_circular(x, sym)) ** 2)
        assert lower * np.sum(x**2) - 1e-9 <= energy <= upper * np.sum(x**2) + 1e-9


def test_order_zero_is_a_gaussian_blur():
    rng = np.random.default_rng(1)
    x = rng.random((1, 1, 32, 32))
    s0 = scattering(torch.from_numpy(x).float(), J=2)[0, 0, 0].numpy()
    ref = gaussian_filter(x[0, 0], 0.8 * 2, mode="mirror", truncate=6.0)[::4, ::4]
    np.testing.assert_allclose(
        s0[1:-1, 1:-1], ref[1:-1, 1:-1], atol=2e-3
    )  # borders: padding differs


def test_a_flat_image_has_only_order_zero():
    s = scattering(torch.full((1, 1, 32, 32), 0.4), J=2)[0, 0]
    np.testing.assert_allclose(s[0].numpy(), 0.4, atol=1e-5)
    np.testing.assert_allclose(s[1:].numpy(), 0.0, atol=1e-5)


def _cascade(x: torch.Tensor, J: int, L: int) -> torch.Tensor:
    """The definition, loop by loop, at full resolution, subsampled in space at the end."""
    n, c, h, w = x.shape
    (top, bottom), (left, right) = reflect_padding(h, J), reflect_padding(w, J)
    p = torch.nn.functional.pad(
        x.reshape(n * c, 1, h, w), (left, right, top, bottom), mode="reflect"
    )[:, 0]
    bank = filter_bank(tuple(p.shape[-2:]), J, L)

    def conv(u, f_hat):
        return torch.fft.ifft2(torch.fft.fft2(u) * f_hat)

    def low(u):
        return conv(u, bank.phi_hat).real[:, top : top + h : 2**J, left : left + w : 2**J]

    out, first = [low(p)], {}
    for j1 in range(J):
        for t1 in range(L):
            first[j1, t1] = conv(p, bank.psi_hat[j1, t1]).abs()
            out.append(low(first[j1, t1]))
    for j1 in range(J):
        for t1 in range(L):
            for j2 in range(j1 + 1, J):
                for t2 in range(L):
                    out.append(low(conv(first[j1, t1], bank.psi_hat[j2, t2]).abs()))
    return torch.stack(out, 1)


@pytest.mark.parametrize("J", [2, 3])
def test_the_batched_transform_equals_the_cascade_written_out(J):
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(J))
    np.testing.assert_allclose(
        scattering(x, J=J, L=4)[:, 0].numpy(), _cascade(x, J, 4).numpy(), atol=1e-5
    )


def test_pooled_coefficients_are_translation_invariant():
    yy, xx = np.mgrid[0:32, 0:32]

    def disc(cy, cx):
        return torch.from_numpy(0.3 + 0.4 * ((yy - cy) ** 2 + (xx - cx) ** 2 <= 9)).float()[
            None, None
        ]

    a, b = disc(12, 12), disc(16, 20)  # moved by multiples of 2^J, away from the border
    pa, pb = (scattering(v, J=2)[0, 0].sum(dim=(1, 2)) for v in (a, b))
    assert float((a - b).norm() / (a - 0.3).norm()) > 1.4  # the discs do not overlap: sqrt(2)
    # the pooled scattering does not: every coefficient within 1% (what is left is the reflect padding)
    np.testing.assert_allclose(pb.numpy(), pa.numpy(), rtol=1e-2)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="N x C x H x W"):
        scattering(torch.zeros(32, 32))
    with pytest.raises(ValueError, match="multiples of 4"):
        scattering(torch.zeros(1, 1, 30, 32), J=2)
    with pytest.raises(ValueError, match="J >= 1"):
        filter_bank((16, 16), J=0)
