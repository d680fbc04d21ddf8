"""The "ckks" protection mode: peers encrypt, an aggregator adds, only the key holder decrypts the sum.

CKKS (Cheon, Kim, Kim and Song, ASIACRYPT 2017) through TenSEAL 0.3.18 / Microsoft SEAL.
Three roles, one class each side of the secret key:

- :class:`CKKSKeyHolder` (the round's key holder) makes the context, exports the public part
  (checked to hold no secret key), and decrypts only a sum of at least ``min_summands`` updates;
- :class:`CKKSPublicContext` (every other peer, and the aggregator) loads that export from bytes,
  checks it against the consortium's :class:`~node.ckks_params.CKKSParams`, encrypts a vector of
  any length in chunks of ``slots`` values, and sums encrypted vectors without any secret.

Weighted FedAvg (McMahan et al., AISTATS 2017): a peer encrypts ``w * delta`` followed by one
slot holding ``w`` (:meth:`CKKSPublicContext.encrypt_weighted`); the slots add up to
``sum_i w_i delta_i`` and ``sum_i w_i``, so the key holder recovers the weighted mean
(:meth:`CKKSKeyHolder.decrypt_weighted_mean`) without seeing any single ``w_i`` or ``delta_i``.
``w`` is the sample count, or the count divided by a pre-agreed constant to stay under
:attr:`~node.ckks_params.CKKSParams.value_bound`; the constant cancels in the mean.

Ciphertexts travel in the framing of :mod:`node.ckks_format`, bound to (round, context).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tenseal as ts
import tenseal.sealapi  # noqa: F401  (registers seal::Modulus, so a loaded context's primes can be read)

from node.ckks_format import CipherHeader, Layout, pack, unpack
from node.ckks_params import CKKSError, CKKSParams

__all__ = ["CKKSError", "CKKSParams", "CKKSKeyHolder", "CKKSPublicContext", "DecryptedSum", "WeightedMean",
           "context_id", "DEFAULT_MAX_LENGTH"]

DEFAULT_MAX_LENGTH = 1 << 25  # values per encrypted vector (33.5M; a ResNet-50 has 23.5M parameters)
_CONTEXT_DOMAIN = b"medmesh/ckks/context/v1"
_TS_ERRORS = (ValueError, RuntimeError, TypeError)


@dataclass(frozen=True)
class DecryptedSum:
    values: np.ndarray  # float64, sum over the summands
    summands: int


@dataclass(frozen=True)
class WeightedMean:
    mean: np.ndarray  # float64, sum_i w_i delta_i / sum_i w_i
    total_weight: float
    summands: int


def context_id(public_context: bytes) -> bytes:
    """The 32-byte id ciphertexts carry: SHA-256 of the exported public context."""
    return hashlib.sha256(_CONTEXT_DOMAIN + bytes(public_context)).digest()


def _check_round(rnd: int) -> int:
    if isinstance(rnd, bool) or not isinstance(rnd, int) or not 0 <= rnd < 2**64:
        raise CKKSError(f"round {rnd!r}: must be an integer in 0..2^64-1")
    return rnd


def _as_vector(values, bound: float, max_length: int, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or not 1 <= x.size <= max_length:
        raise CKKSError(f"{what}: need a 1-D vector of 1..{max_length} values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise CKKSError(f"{what}: contains NaN or infinity")
    peak = float(np.max(np.abs(x)))
    if peak > bound:
        raise CKKSError(f"{what}: |value| {peak:.6g} exceeds the bound {bound:.6g} that keeps the sum exact "
                        f"(scale the weights down or raise the ciphertext modulus)")
    return x


def _check_context(ctx: ts.Context, params: CKKSParams) -> None:
    """Refuse a loaded context whose scheme, ring, primes or scale differ from ``params``."""
    parms = ctx.seal_context().data.key_context_data().parms()
    n = parms.poly_modulus_degree()
    bits = tuple(m.bit_count() for m in parms.coeff_modulus())
    if n != params.poly_modulus_degree or bits != params.coeff_mod_bit_sizes:
        raise CKKSError(f"public context: ring {n} with primes {list(bits)} differs from the consortium's "
                        f"{params.poly_modulus_degree} with {list(params.coeff_mod_bit_sizes)}")
    if ctx.global_scale != params.global_scale:
        raise CKKSError(f"public context: scale {ctx.global_scale!r} differs from 2^{params.scale_bits}")


class CKKSPublicContext:
    """Peer and aggregator side: encrypt and add under the key holder's public key."""

    def __init__(self, ctx: ts.Context, params: CKKSParams, cid: bytes, max_length: int) -> None:
        self._ctx, self.params, self.context_id, self.max_length = ctx, params, cid, max_length

    @classmethod
    def from_bytes(cls, data: bytes, params: CKKSParams, *, max_length: int = DEFAULT_MAX_LENGTH,
                   n_threads: int = 1) -> CKKSPublicContext:
        """Load a key holder's export; size-bounded, checked against ``params``, refused if it holds a secret key."""
        if not isinstance(data, (bytes, bytearray)):
            raise CKKSError(f"public context: expected bytes, got {type(data).__name__}")
        if len(data) > params.public_context_bytes_bound:
            raise CKKSError(f"public context: {len(data)} bytes exceeds the {params.public_context_bytes_bound}-byte "
                            f"bound for ring {params.poly_modulus_degree}")
        try:
            ctx = ts.context_from(bytes(data), n_threads=n_threads)
            if ctx.seal_context().data.key_context_data().parms().scheme() != ts.SCHEME_TYPE.CKKS.value:
                raise ValueError("not a CKKS context")
        except _TS_ERRORS as exc:
            raise CKKSError(f"public context: malformed ({exc})") from None
        _check_context(ctx, params)
        if ctx.has_secret_key() or ctx.is_private():
            raise CKKSError("public context: carries a secret key; a key holder must publish only its public key")
        if not ctx.has_public_key():
            raise CKKSError("public context: has no public key to encrypt with")
        return cls(ctx, params, context_id(data), max_length)

    def encrypt(self, values, round: int) -> bytes:
        """Encrypt a float vector for ``round``; each |value| must be at most ``params.value_bound``."""
        x = _as_vector(values, self.params.value_bound, self.max_length, "values")
        return self._encrypt(x, Layout.PLAIN, round)

    def encrypt_weighted(self, delta, weight: float, round: int) -> bytes:
        """Encrypt ``weight * delta`` and then ``weight`` itself, for a weighted mean at the key holder."""
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight <= 0:
            raise CKKSError(f"weight {weight!r}: must be a positive finite number")
        x = _as_vector(delta, math.inf, self.max_length - 1, "delta")
        scaled = _as_vector(np.append(x * float(weight), float(weight)), self.params.value_bound,
                            self.max_length, "weight * delta")
        return self._encrypt(scaled, Layout.WEIGHTED, round)

    def sum(self, blobs: Sequence[bytes], round: int) -> bytes:
        """Add encrypted vectors of one round, context, layout and length; no secret key needed."""
        if not blobs:
            raise CKKSError("sum: no ciphertexts to add")
        loaded = [self._load(b, round, self._ctx) for b in blobs]
        first = loaded[0][0]
        for i, (h, _) in enumerate(loaded[1:], start=1):
            if (h.layout, h.length) != (first.layout, first.length):
                raise CKKSError(f"sum: ciphertext {i} is a {h.describe()}, ciphertext 0 a {first.describe()}")
        summands = sum(h.summands for h, _ in loaded)
        if summands > self.params.max_summands:
            raise CKKSError(f"sum: {summands} summands exceed max_summands {self.params.max_summands} "
                            f"(the sum could overflow the ciphertext modulus)")
        acc = loaded[0][1]
        for _, vecs in loaded[1:]:
            for a, v in zip(acc, vecs):
                a.add_(v)
        header = CipherHeader(first.layout, round, self.context_id, first.length, first.chunks, summands)
        return pack(header, [a.serialize() for a in acc])

    def _encrypt(self, x: np.ndarray, layout: int, rnd: int) -> bytes:
        _check_round(rnd)
        s = self.params.slots
        chunks = [ts.ckks_vector(self._ctx, x[i:i + s].tolist()).serialize() for i in range(0, x.size, s)]
        return pack(CipherHeader(layout, rnd, self.context_id, int(x.size), len(chunks), 1), chunks)

    def _load(self, blob: bytes, rnd: int, ctx: ts.Context) -> tuple[CipherHeader, list[ts.CKKSVector]]:
        _check_round(rnd)
        p = self.params
        header, chunks = unpack(blob, slots=p.slots, max_length=self.max_length,
                                max_chunk_bytes=p.ciphertext_bytes_bound)
        if header.context_id != self.context_id:
            raise CKKSError(f"ciphertext: made under context {header.context_id.hex()[:16]}, not this round's "
                            f"{self.context_id.hex()[:16]} (another key holder or round?)")
        if header.round != rnd:
            raise CKKSError(f"ciphertext: bound to round {header.round}, expected round {rnd} (replay?)")
        vecs = []
        for i, c in enumerate(chunks):
            want = min(p.slots, header.length - i * p.slots)
            try:
                v = ts.ckks_vector_from(ctx, c)
                cts = v.ciphertext()
                ok = (v.size() == want and len(cts) == 1 and cts[0].size() == 2 and cts[0].scale == p.global_scale
                      and cts[0].coeff_modulus_size() == len(p.coeff_mod_bit_sizes) - 1)
            except _TS_ERRORS as exc:
                raise CKKSError(f"ciphertext: chunk {i} does not parse ({exc})") from None
            if not ok:
                raise CKKSError(f"ciphertext: chunk {i} is not a fresh {want}-value ciphertext at scale "
                                f"2^{p.scale_bits}")
            vecs.append(v)
        return header, vecs


class CKKSKeyHolder:
    """The round's key holder: owns the secret key, publishes the public context, decrypts sums only."""

    def __init__(self, params: CKKSParams | None = None, *, max_length: int = DEFAULT_MAX_LENGTH,
                 n_threads: int = 1) -> None:
        params = params or CKKSParams()
        self._ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                               coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes), n_threads=n_threads)
        self._ctx.global_scale = params.global_scale
        public = self._ctx.copy()
        public.make_context_public()
        self.public_context_bytes: bytes = public.serialize(save_public_key=True, save_secret_key=False,
                                                            save_galois_keys=False, save_relin_keys=False)
        # from_bytes re-parses the export and refuses it if a secret key survived make_context_public
        self.public = CKKSPublicContext.from_bytes(self.public_context_bytes, params, max_length=max_length,
                                                   n_threads=n_threads)
        self.params = params

    @property
    def context_id(self) -> bytes:
        return self.public.context_id

    def decrypt_sum(self, blob: bytes, round: int, *, min_summands: int = 2) -> DecryptedSum:
        """Decrypt a sum of at least ``min_summands`` plain-layout vectors bound to ``round``."""
        header, values = self._decrypt(blob, round, min_summands)
        if header.layout != Layout.PLAIN:
            raise CKKSError(f"decrypt_sum: got a {header.describe()}; use decrypt_weighted_mean")
        return DecryptedSum(values, header.summands)

    def decrypt_weighted_mean(self, blob: bytes, round: int, *, min_summands: int = 2) -> WeightedMean:
        """Decrypt a sum of weighted vectors and divide by the summed weight."""
        header, values = self._decrypt(blob, round, min_summands)
        if header.layout != Layout.WEIGHTED:
            raise CKKSError(f"decrypt_weighted_mean: got a {header.describe()}; peers must use encrypt_weighted")
        total = float(values[-1])
        if not total > 0:
            raise CKKSError(f"decrypt_weighted_mean: summed weight {total:.6g} is not positive")
        return WeightedMean(values[:-1] / total, total, header.summands)

    def _decrypt(self, blob: bytes, rnd: int, min_summands: int) -> tuple[CipherHeader, np.ndarray]:
        header, vecs = self.public._load(blob, rnd, self._ctx)
        if header.summands < min_summands:
            raise CKKSError(f"decrypt: refusing a sum of {header.summands} update(s); the key holder decrypts "
                            f"only sums of at least {min_summands}")
        return header, np.concatenate([np.asarray(v.decrypt(), dtype=np.float64) for v in vecs])
