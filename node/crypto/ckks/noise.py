"""How far a decrypted inner product may honestly lie from the true one: the CKKS error, derived.

A member checks its own row of the key holder's Gram matrix against the update it encrypted
(:func:`node.consensus.robust_audit.check_own_row`); the tolerance is this error, not a tuned
constant. It follows the CKKS noise analyses (Cheon, Han, Kim, Kim and Song, "A Full RNS Variant
of Approximate Homomorphic Encryption", SAC 2018; Costache et al., "On the precision loss in
approximate homomorphic encryption", SAC 2023), with SEAL's uniform ternary secret ``s``
(``E s_i^2 = 2/3``) and error ``sigma = 3.2``. Each step adds a noise polynomial ``k``:

- **fresh encryption**: SEAL encrypts over the special prime ``P`` and divides by it, so what is
  left is that rounding, ``r0 + r1 s`` (``r`` uniform in ``[-1/2, 1/2]``), and the encoding's:
  coefficient variance ``V = (2 + 2N/3) / 12``, at scale ``Delta``;
- **key switching** (the conjugation of the second operand before the product, then the 12
  rotations and the last conjugation): each RNS digit ``d_j < q_j`` times the key's error, over
  ``P``, plus the rounding: ``V <= N sigma^2 sum_j q_j^2 / P^2 + (1 + 2N/3) / 12`` (SEAL does not
  center the digits, so ``q_j^2`` bounds their square; their mean puts most of the error into the
  few slots whose root is near 1: measured, an update with one large value there saw 70 times
  the error a white-noise model gives);
- **rescale** by the 40-bit prime after the product: the rounding, ``(1 + 2N/3) / 12``.

Errors that multiply an update (``e_a`` against ``b``, the conjugation's ``k_b`` against ``a``) are
bounded whatever the update's layout, by Cauchy-Schwarz over the slots: ``|sum_j z_j conj k(zeta_j)|
<= |a| sqrt(N/2) |k|`` per chunk (``sum_j |z_j|^2 = |a|^2``, Parseval), ``sqrt(chunks)`` over the
chunks, with ``|k| <= 2 sqrt(N V)`` (a sum of ``N`` squares: far in its tail). The error that
does not depend on the values (the rescale's rounding summed over the ``N/2`` slots, each
rotation's key switching over the slots the remaining rotations add, ``N/2 - 1`` in all, and
half the last conjugation's) is a standard deviation, :attr:`InnerProductNoise.floor`, taken
:data:`TAIL` times; products of two errors (below 1e-20) are left out. Measured against real SEAL
(``tests/unit/crypto/test_ckks_noise.py``): every error within the bound, spiked layouts included.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from node.crypto.ckks.params import CKKSParams
from node.crypto.ckks.seal import seal_context

__all__ = ["InnerProductNoise", "inner_product_noise", "SIGMA", "TAIL"]

SIGMA = 3.2  # SEAL's error standard deviation (the HomomorphicEncryption.org standard's)
TAIL = 10.0  # the value-independent error is allowed this many standard deviations


class InnerProductNoise(NamedTuple):
    fresh: float  # bound, per unit norm and chunk, of a fresh ciphertext's error against a vector
    conj: float  # the same for the error a conjugation adds before the product
    floor: float  # standard deviation of the error that does not depend on the values
    per_chunk: int  # values per ciphertext chunk

    def _chunks(self, length: int) -> float:
        return math.sqrt(max(1, math.ceil(length / self.per_chunk)))

    def bound(self, norm_a: float, norm_b: float, length: int, tail: float) -> float:
        """Largest honest error of a decrypted ``<a, b>`` of ``length`` values."""
        c = self._chunks(length)
        return (
            c * (self.fresh * (norm_a + norm_b) + self.conj * max(norm_a, norm_b))
            + tail * self.floor
        )

    def sum_term(self, norm: float, length: int) -> float:
        """Largest ``|<u, e>|`` for ``e`` one ciphertext's error in a decrypted sum, ``|u| = norm``."""
        return self._chunks(length) * self.fresh * norm


def inner_product_noise(params: CKKSParams) -> InnerProductNoise:
    """:class:`InnerProductNoise` for ``params`` (their actual SEAL primes)."""
    n = params.poly_modulus_degree
    primes = [m.value() for m in seal_context(params).key_context_data().parms().coeff_modulus()]
    data, special = primes[:-1], float(primes[-1])
    delta = 2.0**params.scale_bits
    after = delta * delta / data[-1]  # the scale after the product's rescale
    rounding = (1 + 2 * n / 3) / 12

    def switching(level: list[int]) -> float:  # coefficient variance of a key switch's error
        return n * SIGMA**2 * sum((q / special) ** 2 for q in level) + rounding

    def against_values(variance: float, scale: float) -> float:
        return math.sqrt(n / 2) * 2 * math.sqrt(n * variance) / scale

    slots = n // 2
    rescale, rotate = n * rounding / after**2, n * switching(data[:-1]) / after**2
    floor = math.sqrt(slots * rescale / 2 + (slots - 1) * rotate / 2 + rotate / 8)
    return InnerProductNoise(
        against_values(rounding + 1 / 12, delta),
        against_values(switching(data), delta),
        floor,
        params.values_per_ciphertext,
    )
