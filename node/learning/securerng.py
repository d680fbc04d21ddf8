"""A cryptographically secure source for DP-SGD's randomness: the Gaussian noise and the
Poisson sampling of each batch.

DP-SGD's guarantee assumes the noise is unpredictable to whoever sees the update. torch's
default generator (a Mersenne Twister) is not: its state can be recovered from its outputs.
Opacus' ``secure_mode`` fixes this with torchcsprng, which has no build for current torch;
this module does the same with the ``cryptography`` package instead:

- **Bits**: the ChaCha20 keystream (RFC 8439) under a fresh 256-bit key from ``os.urandom``
  per :class:`SecureRandom`. There is no seed parameter: nothing can replay it.
- **Uniforms**: the top 53 bits of each 64-bit word, as ``(k + 0.5) / 2^53`` in (0, 1).
- **Gaussians**: Box-Muller (Box & Muller 1958) on pairs of uniforms, then the floating-point
  mitigation Opacus' secure mode uses (Holohan & Braghin 2021, arXiv:2107.10138, section 5.1,
  n = 2): the sum of four draws of N(0, std^2), halved, which is N(0, std^2) again but no
  longer shows the gaps of one floating-point sample (Mironov 2012 for the Laplace case;
  Jin et al. 2021, arXiv:2112.05307, for Opacus' Gaussian).
- **Poisson sampling**: each example is in a batch independently with probability ``q``
  (the subsampling the privacy accountant assumes), decided by a secure uniform.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

__all__ = ["PoissonSampler", "SecureRandom", "secure_noise_optimizer", "SecurePoissonLoader"]

_SCALE = 2.0**-53


class SecureRandom:
    """Uniforms and Gaussians from ChaCha20 under a key no one chose (see the module doc)."""

    def __init__(self) -> None:
        # 16-byte nonce of ``cryptography``'s ChaCha20: a 32-bit block counter then a 96-bit nonce
        self._stream = Cipher(algorithms.ChaCha20(os.urandom(32), bytes(16)), mode=None).encryptor()

    def words(self, n: int) -> np.ndarray:
        """``n`` uniform 64-bit words."""
        return np.frombuffer(self._stream.update(bytes(8 * n)), dtype="<u8")

    def uniform(self, n: int) -> np.ndarray:
        """``n`` uniforms in the open interval (0, 1), float64."""
        return ((self.words(n) >> np.uint64(11)).astype(np.float64) + 0.5) * _SCALE

    def standard_normal(self, n: int) -> np.ndarray:
        """``n`` independent N(0, 1) draws (Box-Muller), float64."""
        pairs = (n + 1) // 2
        u = self.uniform(2 * pairs)
        radius = np.sqrt(-2.0 * np.log(u[:pairs]))
        angle = 2.0 * np.pi * u[pairs:]
        return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:n]

    def noise(self, std: float, reference: torch.Tensor) -> torch.Tensor:
        """N(0, std^2) noise shaped like ``reference``: four draws summed and halved."""
        n = reference.numel()
        if std == 0 or n == 0:
            return torch.zeros_like(reference)
        z = self.standard_normal(4 * n).reshape(4, n).sum(axis=0) * (std / 2.0)
        return (
            torch.from_numpy(z)
            .to(dtype=reference.dtype, device=reference.device)
            .view_as(reference)
        )

    def poisson_mask(self, n: int, rate: float) -> np.ndarray:
        """Indices of the examples in one Poisson-sampled batch: each with probability ``rate``."""
        return np.flatnonzero(self.uniform(n) < rate)


def secure_noise_optimizer(optimizer, rng: SecureRandom):
    """Make an Opacus ``DPOptimizer`` draw its noise from ``rng`` (clipping and scaling as before)."""
    from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

    def add_noise() -> None:  # DPOptimizer.add_noise, with the noise source swapped
        for p in optimizer.params:
            _check_processed_flag(p.summed_grad)
            noise = rng.noise(optimizer.noise_multiplier * optimizer.max_grad_norm, p.summed_grad)
            p.grad = (p.summed_grad + noise).view_as(p)
            _mark_as_processed(p.summed_grad)

    optimizer.add_noise = add_noise
    return optimizer


class PoissonSampler(Protocol):
    """What draws a Poisson-sampled batch: :class:`SecureRandom`, or torch's default RNG when
    ``secure_mode`` is off."""

    def poisson_mask(self, n: int, rate: float) -> np.ndarray:
        """The indexes of ``n`` examples each kept with probability ``rate``."""
        ...


class SecurePoissonLoader:
    """Batches of a tensor dataset, Poisson-sampled at ``rate`` by ``rng``: ``steps`` a pass,
    like Opacus' ``DPDataLoader`` (empty batches included: they still count as steps)."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, rate: float, steps: int, rng: PoissonSampler
    ) -> None:
        if not 0 < rate <= 1:
            raise ValueError(f"sample rate must be in (0, 1], got {rate}")
        self.x, self.y, self.rate, self.steps, self.rng = x, y, rate, steps, rng

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps):
            idx = torch.from_numpy(self.rng.poisson_mask(len(self.x), self.rate))
            yield self.x[idx], self.y[idx]
