"""How far a decrypted inner product may honestly lie from the true one: the CKKS error, derived.

A member checks its own row of the key holder's Gram matrix against the update it encrypted
(:func:`node.consensus.robust_audit.check_own_row`); the tolerance is this error, not a tuned
constant. Variances follow the usual heuristic of the CKKS noise analyses (Cheon, Han, Kim, Kim and
Song, "A Full RNS Variant of Approximate Homomorphic Encryption", SAC 2018; Costache et al., "On
the precision loss in approximate homomorphic encryption", SAC 2023): a polynomial with
independent coefficients of variance ``V`` puts, in each of the ``N/2`` slots, a complex error of
mean square ``N V`` (slots are uncorrelated; divided by the scale squared in message units). With
SEAL's uniform ternary secret ``s`` (``E s_i^2 = 2/3``) and error ``sigma = 3.2``:

- **fresh encryption** (:attr:`InnerProductNoise.fresh`): SEAL encrypts over the special prime
  ``P`` and divides by it, so what is left is that rounding, ``r0 + r1 s`` with ``r`` uniform in
  ``[-1/2, 1/2]``, plus the encoding's rounding: ``V = (2 + 2N/3) / 12`` at scale ``Delta``;
- **key switching** (the conjugation of the second operand before the product, then the 12
  rotations and the final conjugation): each RNS digit ``d_j`` (uniform below ``q_j``) times the
  key's error, over ``P``, plus the rounding: ``V = N sigma^2 sum_j q_j^2 / (12 P^2) + (1 + 2N/3) / 12``;
- **rescale** by the 40-bit prime after the product: the rounding alone, ``(1 + 2N/3) / 12``.

For ``<a, b>`` (:meth:`GramEvaluator._inner <node.crypto.ckks.robust.GramEvaluator>`) the error is
``Re sum_j (e_a,j conj z_b,j + z_a,j conj (e_b,j + k_b,j))`` over every slot, whose standard
deviation is at most ``fresh (|a| + |b|) + conj max(|a|, |b|)`` (the message part: ``sum_j |z_j|^2
= |a|^2``), plus a floor that does not depend on the values: the rescale rounding summed over
the ``N/2`` slots, each rotation's key-switching error summed over the slots the remaining
rotations add (``N/2 - 1`` in all), the last conjugation's halved (the product of two errors,
below 1e-28, is left out). Standard deviations are added, never their squares, so correlated
terms are covered. Measured (real SEAL, fresh keys,
``tests/unit/crypto/test_ckks_noise.py``): the root mean square of error / sd is 0.6 to 1.6 over
key draws, the largest |error| / sd 3.5 of 180; :data:`TAIL` = 10 sds is the tolerance.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from node.crypto.ckks.params import CKKSParams
from node.crypto.ckks.seal import seal_context

__all__ = ["InnerProductNoise", "inner_product_noise", "SIGMA", "TAIL"]

SIGMA = 3.2  # SEAL's error standard deviation (the HomomorphicEncryption.org standard's)
TAIL = 10.0  # tolerance in standard deviations: 6 of the largest measured, far in the Gaussian tail


class InnerProductNoise(NamedTuple):
    fresh: float  # sd of one encrypted real value's error (real part of a fresh slot)
    conj: float  # sd of the error a conjugation adds to one value, before the product
    floor: float  # sd of a decrypted inner product's error that does not depend on the values

    def sd(self, norm_a: float, norm_b: float) -> float:
        """Standard deviation bound of the error of a decrypted ``<a, b>`` (``|a|``, ``|b|`` given)."""
        return self.fresh * (norm_a + norm_b) + self.conj * max(norm_a, norm_b) + self.floor


def inner_product_noise(params: CKKSParams) -> InnerProductNoise:
    """The error model of :class:`InnerProductNoise` for ``params`` (their actual SEAL primes)."""
    n = params.poly_modulus_degree
    primes = [m.value() for m in seal_context(params).key_context_data().parms().coeff_modulus()]
    data, special = primes[:-1], float(primes[-1])
    delta = 2.0**params.scale_bits
    after = delta * delta / data[-1]  # the scale after the product's rescale
    rounding = (1 + 2 * n / 3) / 12

    def switching(level: list[int]) -> float:
        return n * SIGMA**2 * sum((q / special) ** 2 for q in level) / 12 + rounding

    fresh = n * (rounding + 1 / 12) / delta**2  # mean square of one slot's complex error
    conj = n * switching(data) / delta**2
    rescale = n * rounding / after**2
    rotate = n * switching(data[:-1]) / after**2
    slots = n // 2
    floor = math.sqrt(slots * rescale / 2 + (slots - 1) * rotate / 2 + rotate / 8)
    return InnerProductNoise(math.sqrt(fresh / 2), math.sqrt(conj / 2), floor)
