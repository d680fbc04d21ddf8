"""CKKS parameters for the "ckks" protection mode, refused below 128-bit security.

The security rule is the HomomorphicEncryption.org standard (Albrecht et al., "Homomorphic
Encryption Security Standard", 2018, Table 1: classical 128-bit security, ternary secret,
error sigma 3.2): for ring degree N the whole coefficient modulus may have at most
27 / 54 / 109 / 218 / 438 / 881 bits for N = 1024 ... 32768. Microsoft SEAL's
``CoeffModulus::MaxBitCount(N, sec_level_type::tc128)`` uses the same numbers. CKKS itself is
Cheon, Kim, Kim and Song, "Homomorphic Encryption for Arithmetic of Approximate Numbers",
ASIACRYPT 2017.

medmesh only *adds* ciphertexts, so no level is ever consumed and no key is ever switched.
With ``k >= 2`` primes the first ``k - 1`` are the ciphertext modulus ``q`` and the last one is
SEAL's special (key-switching) prime; with a single prime (the default) SEAL uses no special
prime, that prime is ``q``, and public-key encryption runs at that one level instead of
encrypting over two primes and dropping one (measured: 1.8x faster; the special prime only
serves relinearization and rotation keys, which additions never need). A slot
holding ``x`` is stored as ``round(x * 2^scale_bits)`` modulo ``q``; a sum whose magnitude reaches
``q / 2`` silently wraps around. :attr:`CKKSParams.value_bound` is therefore the largest ``|x|``
one peer may encrypt so that the sum of ``max_summands`` such vectors stays below ``q / 4``:
a spare bit, which covers the factor ``sqrt(2)`` of packing two reals into one complex slot
(:mod:`node.crypto.ckks.seal`) and the encryption noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import MedmeshError

__all__ = ["CKKSError", "CKKSParams", "MAX_COEFF_BITS_128", "check_security"]

MAX_COEFF_BITS_128: dict[int, int] = {
    1024: 27,
    2048: 54,
    4096: 109,
    8192: 218,
    16384: 438,
    32768: 881,
}
_MIN_CKKS_DEGREE = 4096  # below this not even one 60-bit prime fits (54 bits at most for N = 2048)
_PRIME_BITS = (
    20,
    60,
)  # SEAL's NTT-friendly primes: at most 60 bits; below 20 the precision is gone
_MIN_SCALE_BITS = 20


class CKKSError(MedmeshError, ValueError):
    """A CKKS parameter, context or ciphertext failed a check; the message names which one."""


@dataclass(frozen=True)
class CKKSParams:
    """Ring degree, coefficient-modulus prime sizes and the encoding scale ``2^scale_bits``.

    The defaults (N = 8192, one 60-bit prime of the 218 bits allowed, scale 2^40) give the
    smallest ciphertext SEAL makes (one 60-bit prime, two polynomials), 8192 values per
    ciphertext and an absolute error around 1e-7 per value after summing 16 updates, whatever
    their magnitude (fresh public-key noise, not divided down by a special prime).
    """

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60,)
    scale_bits: int = 40
    max_summands: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "coeff_mod_bit_sizes", tuple(self.coeff_mod_bit_sizes))
        check_security(self)

    @property
    def values_per_ciphertext(self) -> int:
        """Reals packed in one ciphertext: N/2 complex slots, two reals each."""
        return self.poly_modulus_degree

    @property
    def global_scale(self) -> float:
        return float(2**self.scale_bits)

    @property
    def data_bits(self) -> int:
        """Bits of the ciphertext modulus q (every prime but the special one, if there is one)."""
        bits = self.coeff_mod_bit_sizes
        return sum(bits[:-1]) if len(bits) > 1 else bits[0]

    @property
    def value_bound(self) -> float:
        """Largest |x| one peer may encrypt: max_summands of them sum below q / 4 after scaling."""
        return float(2 ** (self.data_bits - self.scale_bits - 2)) / self.max_summands

    @property
    def ciphertext_bytes_bound(self) -> int:
        """Upper bound on one serialized ciphertext (2 polynomials of 64-bit words, plus framing)."""
        return 2 * self.poly_modulus_degree * max(1, len(self.coeff_mod_bit_sizes) - 1) * 8 + 4096

    @property
    def public_context_bytes_bound(self) -> int:
        """Upper bound on a serialized public context (public key over all primes, plus framing)."""
        return 2 * self.poly_modulus_degree * len(self.coeff_mod_bit_sizes) * 8 + 65536


def check_security(p: CKKSParams) -> None:
    """Raise :class:`CKKSError` unless ``p`` reaches 128-bit security and can hold the sums."""
    n, bits = p.poly_modulus_degree, p.coeff_mod_bit_sizes
    if not isinstance(n, int) or n not in MAX_COEFF_BITS_128 or n < _MIN_CKKS_DEGREE:
        allowed = ", ".join(str(d) for d in MAX_COEFF_BITS_128 if d >= _MIN_CKKS_DEGREE)
        raise CKKSError(f"poly_modulus_degree {n!r}: must be one of {allowed}")
    if len(bits) < 1 or not all(
        isinstance(b, int) and _PRIME_BITS[0] <= b <= _PRIME_BITS[1] for b in bits
    ):
        raise CKKSError(
            f"coeff_mod_bit_sizes {list(bits)!r}: need one prime, or data primes and a special prime, "
            f"of {_PRIME_BITS[0]}-{_PRIME_BITS[1]} bits each"
        )
    limit = MAX_COEFF_BITS_128[n]
    if sum(bits) > limit:
        raise CKKSError(
            f"coeff_mod_bit_sizes: {sum(bits)} bits in total exceed {limit}, the 128-bit security "
            f"maximum for poly_modulus_degree {n} (HomomorphicEncryption.org standard)"
        )
    if not isinstance(p.max_summands, int) or p.max_summands < 1:
        raise CKKSError(f"max_summands {p.max_summands!r}: must be a positive integer")
    if not isinstance(p.scale_bits, int) or p.scale_bits < _MIN_SCALE_BITS:
        raise CKKSError(f"scale_bits {p.scale_bits!r}: must be an integer >= {_MIN_SCALE_BITS}")
    if p.value_bound < 1.0:
        raise CKKSError(
            f"scale_bits {p.scale_bits}: leaves no headroom for {p.max_summands} summands under "
            f"a {p.data_bits}-bit ciphertext modulus (need scale_bits <= "
            f"{p.data_bits - 2 - (p.max_summands - 1).bit_length()})"
        )
