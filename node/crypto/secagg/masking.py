"""Pairwise-masked secure aggregation (Bonawitz et al. 2017, "Practical Secure Aggregation for
Privacy-Preserving Machine Learning", CCS), the arithmetic: no network, no chain.

Each participant ``u`` of a round holds a vector ``x_u`` of fixed-point integers in the ring
Z_(2^ring_bits) and sends only

    y_u = x_u + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)      (mod 2^ring_bits)

where ``b_u`` is a fresh self-mask seed and ``s_uv`` the pairwise seed both ends derive from
X25519(s_u, S_v) between per-round *ephemeral* mask keys (never the long-term seal key: a
dropped peer's mask key is reconstructed in the open). ``v > u`` compares lower-case
addresses. The pairwise masks cancel in the sum over the survivors ``U2``; the self masks are
removed with the ``b_u`` the survivors reconstruct from Shamir shares; for every peer ``d``
that shared its secrets but dropped before sending ``y_d``, the survivors reconstruct ``s_d``
instead and strip the masks ``PRG(s_ud)`` that were left in their own inputs. A peer's
``b_u`` and ``s_u`` are never both revealed: survivors reveal ``b``, dropped peers ``s``. That
holds across peers only if every peer reveals for the same survivor set, which the protocol
layer enforces (:mod:`node.protection.secagg_consistency`, Bonawitz et al. 2017 section 6).

PRG: the ChaCha20 keystream (from ``cryptography``) under a seed that is used exactly once.
Seeds come from HKDF-SHA256 over the X25519 output, bound to the round context and the pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from node.crypto.secagg import shamir
from node.errors import MedmeshError

__all__ = [
    "RingParams",
    "SecAggError",
    "MaskSecrets",
    "default_threshold",
    "encode_fixed",
    "decode_fixed",
    "prg",
    "pair_seed",
    "self_mask_seed",
    "mask_input",
    "share_secrets",
    "unmask_sum",
]

_ZERO_NONCE = bytes(16)


class SecAggError(MedmeshError, ValueError):
    """A secure-aggregation step cannot go on; the message says why."""


@dataclass(frozen=True)
class RingParams:
    """Fixed-point encoding: ``round(x * 2^frac_bits)`` in Z_(2^ring_bits), two's complement."""

    ring_bits: int = 32
    frac_bits: int = 16

    def __post_init__(self) -> None:
        if self.ring_bits not in (32, 64):
            raise SecAggError(f"ring_bits must be 32 or 64, got {self.ring_bits}")
        if not 0 <= self.frac_bits < self.ring_bits - 2:
            raise SecAggError(
                f"frac_bits must be in [0, {self.ring_bits - 2}), got {self.frac_bits}"
            )

    @property
    def dtype(self) -> type:
        return np.uint32 if self.ring_bits == 32 else np.uint64

    def bound(self, parties: int) -> float:
        """The largest |x| one party may encode so that a sum over ``parties`` cannot wrap."""
        return 2.0 ** (self.ring_bits - 1 - self.frac_bits) / max(parties, 1)


@dataclass(frozen=True)
class MaskSecrets:
    """One participant's secrets for one round: the self-mask seed and the mask key."""

    self_seed: bytes  # 32 bytes, b_u
    mask_key: X25519PrivateKey  # s_u, ephemeral

    @classmethod
    def generate(cls) -> MaskSecrets:
        import os

        return cls(os.urandom(32), X25519PrivateKey.generate())

    def mask_public(self) -> bytes:
        return _raw_public(self.mask_key)

    def mask_private(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        return self.mask_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _raw_public(key: X25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def default_threshold(n: int) -> int:
    """Shares needed to reconstruct: a strict majority (Bonawitz et al. need t > n/2 so that
    no two disjoint groups can each unmask); tolerates ``n - t`` dropouts."""
    return n // 2 + 1


def encode_fixed(x: np.ndarray, params: RingParams, parties: int) -> np.ndarray:
    """float -> ring; refuses values whose sum over ``parties`` could wrap around."""
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise SecAggError("cannot encode NaN or infinite values")
    bound = params.bound(parties)
    peak = float(np.abs(x).max(initial=0.0))
    if peak >= bound:
        raise SecAggError(
            f"value {peak:.4g} is outside the fixed-point range +-{bound:.4g} for {parties} "
            f"parties (ring 2^{params.ring_bits}, {params.frac_bits} fractional bits): clip the "
            f"update or lower frac_bits"
        )
    signed = np.rint(x * 2.0**params.frac_bits).astype(np.int64)
    return signed.astype(params.dtype)  # two's complement wrap into the ring


def decode_fixed(total: np.ndarray, params: RingParams) -> np.ndarray:
    """ring -> float64, reading the top half of the ring as negative."""
    signed = total.astype(np.int32 if params.ring_bits == 32 else np.int64).astype(np.float64)
    return signed / 2.0**params.frac_bits


def prg(seed: bytes, count: int, params: RingParams) -> np.ndarray:
    """``count`` ring elements from the ChaCha20 keystream under the 32-byte ``seed``."""
    if len(seed) != 32:
        raise SecAggError(f"a PRG seed is 32 bytes, got {len(seed)}")
    width = params.ring_bits // 8
    stream = (
        Cipher(algorithms.ChaCha20(seed, _ZERO_NONCE), mode=None)
        .encryptor()
        .update(bytes(count * width))
    )
    return np.frombuffer(stream, dtype=np.dtype(params.dtype).newbyteorder("<")).astype(
        params.dtype
    )


def pair_seed(
    my_key: X25519PrivateKey, their_public: bytes, me: str, them: str, context: bytes
) -> bytes:
    """The seed ``s_uv`` both ends of a pair derive (symmetric in the two addresses)."""
    try:
        shared = my_key.exchange(X25519PublicKey.from_public_bytes(their_public))
    except ValueError as exc:
        raise SecAggError(f"bad mask key from {them}: {exc}") from None
    a, b = sorted((me.lower(), them.lower()))
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"medmesh/secagg/v1/pair|" + context + f"|{a}|{b}".encode(),
    ).derive(shared)


def self_mask_seed(seed: bytes, context: bytes) -> bytes:
    """The PRG seed of a member's self-mask for this context, from its self-mask ``seed``."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"medmesh/secagg/v1/self|" + context
    ).derive(seed)


def _sign(me: str, other: str) -> int:
    return 1 if other.lower() > me.lower() else -1


def mask_input(
    x: np.ndarray,
    me: str,
    secrets: MaskSecrets,
    mask_keys: dict[str, bytes],
    context: bytes,
    params: RingParams,
) -> np.ndarray:
    """``y_u`` for the ring vector ``x``; ``mask_keys`` maps every participant of the round
    (``me`` included or not) to its public mask key."""
    x = np.asarray(x)
    if x.dtype != params.dtype:
        raise SecAggError(
            f"input must be {np.dtype(params.dtype).name} ring elements, got {x.dtype}"
        )
    y = x + prg(self_mask_seed(secrets.self_seed, context), x.size, params)
    for other in sorted(mask_keys, key=str.lower):
        if other.lower() == me.lower():
            continue
        mask = prg(
            pair_seed(secrets.mask_key, mask_keys[other], me, other, context), x.size, params
        )
        y = y + mask if _sign(me, other) > 0 else y - mask
    return y


def share_secrets(
    secrets: MaskSecrets, participants: list[str], threshold: int
) -> dict[str, tuple[int, int, int]]:
    """Shamir shares of (b_u, s_u) for each participant: address -> (x, y_b, y_s), x = 1-based
    position in ascending lower-case address order."""
    order = sorted(participants, key=str.lower)
    if threshold <= len(order) // 2:
        raise SecAggError(f"threshold {threshold} of {len(order)} is not a strict majority")
    b = shamir.split(secrets.self_seed, len(order), threshold)
    s = shamir.split(secrets.mask_private(), len(order), threshold)
    return {addr: (b[i][0], b[i][1], s[i][1]) for i, addr in enumerate(order)}


def unmask_sum(
    masked: dict[str, np.ndarray],
    mask_keys: dict[str, bytes],
    self_seeds: dict[str, bytes],
    dropped_keys: dict[str, bytes],
    context: bytes,
    params: RingParams,
) -> np.ndarray:
    """Sum of the survivors' ``x_u`` (ring elements).

    ``masked``: survivor -> y_u; ``mask_keys``: every participant's public mask key;
    ``self_seeds``: survivor -> reconstructed b_u; ``dropped_keys``: participant that dropped
    after sharing -> reconstructed raw private mask key s_d.
    """
    survivors = sorted(masked, key=str.lower)
    if set(self_seeds) != set(survivors):
        raise SecAggError("need the self-mask seed of every survivor, and only theirs")
    if set(dropped_keys) & set(survivors):
        raise SecAggError("a survivor's mask key must never be reconstructed")
    missing = set(mask_keys) - set(survivors) - set(dropped_keys)
    if missing:
        raise SecAggError(f"no reconstructed mask key for dropped participants {sorted(missing)}")
    size = masked[survivors[0]].size
    total: np.ndarray = np.zeros(size, dtype=params.dtype)
    for u in survivors:  # fixed order; ring addition is exact anyway
        if masked[u].dtype != params.dtype or masked[u].size != size:
            raise SecAggError(f"masked input from {u} has the wrong type or length")
        total = total + masked[u] - prg(self_mask_seed(self_seeds[u], context), size, params)
    for d in sorted(dropped_keys, key=str.lower):
        key = X25519PrivateKey.from_private_bytes(dropped_keys[d])
        if _raw_public(key) != mask_keys[d]:
            raise SecAggError(
                f"reconstructed mask key of {d} does not match its advertised key (bad shares?)"
            )
        for u in survivors:
            mask = prg(pair_seed(key, mask_keys[u], d, u, context), size, params)
            # u added sign(u, d) * PRG(s_ud): take it out
            total = total - mask if _sign(u, d) > 0 else total + mask
    return total
