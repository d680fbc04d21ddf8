"""Shamir secret sharing (Shamir 1979, "How to Share a Secret") over GF(2^521 - 1).

A secret is an integer below 2^512 (a 32- or 64-byte string read big-endian). ``split``
draws a random polynomial of degree ``threshold - 1`` with the secret as its constant term
and hands out its values at x = 1..n; any ``threshold`` of them give the secret back by
Lagrange interpolation at 0 (:func:`reconstruct`); fewer reveal nothing about it.

Used by :mod:`node.crypto.secagg.masking` to share each peer's per-round mask secrets (Bonawitz et al. 2017).
"""

from __future__ import annotations

import secrets as _random

from node.errors import MedmeshError

__all__ = [
    "PRIME",
    "Share",
    "ShamirError",
    "split",
    "reconstruct",
    "secret_to_int",
    "int_to_secret",
]

PRIME = 2**521 - 1  # a Mersenne prime: every 64-byte secret fits below it

Share = tuple[int, int]  # (x, y)


class ShamirError(MedmeshError, ValueError):
    """Bad sharing parameters or too few / inconsistent shares."""


def secret_to_int(secret: bytes) -> int:
    if len(secret) > 64:
        raise ShamirError(f"a secret is at most 64 bytes, got {len(secret)}")
    return int.from_bytes(secret, "big")


def int_to_secret(value: int, length: int) -> bytes:
    if not 0 <= value < 256**length:
        raise ShamirError(f"reconstructed value does not fit in {length} bytes (wrong shares?)")
    return value.to_bytes(length, "big")


def split(secret: bytes, n: int, threshold: int) -> list[Share]:
    """Shares ``(x, y)`` for x = 1..n; any ``threshold`` of them recover ``secret``."""
    if not 1 <= threshold <= n:
        raise ShamirError(f"threshold must be between 1 and n={n}, got {threshold}")
    coeffs = [secret_to_int(secret)] + [_random.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, n + 1):
        y = 0
        for c in reversed(coeffs):  # Horner
            y = (y * x + c) % PRIME
        shares.append((x, y))
    return shares


def reconstruct(shares: list[Share], threshold: int, length: int) -> bytes:
    """The secret from at least ``threshold`` shares with distinct x (the first ``threshold``
    in ascending x are used, so every peer interpolates the same points)."""
    distinct = dict(sorted(shares))
    if len(distinct) != len(shares):
        raise ShamirError("two shares with the same x")
    if len(distinct) < threshold:
        raise ShamirError(f"need {threshold} shares to reconstruct, have {len(distinct)}")
    points = list(distinct.items())[:threshold]
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = num * (-xj) % PRIME
                den = den * (xi - xj) % PRIME
        total = (total + yi * num * pow(den, -1, PRIME)) % PRIME
    return int_to_secret(total, length)
