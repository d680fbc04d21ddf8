"""The "ckks" protection mode: peers encrypt, an aggregator adds, only the key holder decrypts the sum.

CKKS (Cheon, Kim, Kim and Song, ASIACRYPT 2017) on Microsoft SEAL through TenSEAL 0.3.18's
``sealapi`` (:mod:`node.crypto.ckks.seal` packs two reals per complex slot). Two sides of the secret key:

- :class:`CKKSKeyHolder` (the round's key holder) makes fresh keys, exports a public context
  holding only the public key, and decrypts only a sum of at least ``min_summands`` updates;
- :class:`CKKSPublicContext` (every other peer, and the aggregator) loads that export from bytes,
  checks it against the consortium's :class:`~node.crypto.ckks.params.CKKSParams`, encrypts a vector of
  any length in chunks of ``N`` values, and adds encrypted vectors without any secret.

Weighted FedAvg (McMahan et al., AISTATS 2017): a peer encrypts ``w * delta`` followed by one
value ``w`` (:meth:`CKKSPublicContext.encrypt_weighted`); the values add up to
``sum_i w_i delta_i`` and ``sum_i w_i``, so the key holder recovers the weighted mean
(:meth:`CKKSKeyHolder.decrypt_weighted_mean`) without seeing any single ``w_i`` or ``delta_i``.
``w`` is the sample count, or the count divided by a pre-agreed constant to stay under
:attr:`~node.crypto.ckks.params.CKKSParams.value_bound`; the constant cancels in the mean.

Public context: ``b"MMCP" | u8 version | u32 N | u8 k | k x u8 prime bits | u8 scale bits |
SEAL public key`` (:mod:`node.crypto.ckks.publicexport`). Ciphertexts travel in the framing of
:mod:`node.crypto.ckks.format`, bound to (round, SHA-256 of the public context).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tenseal.sealapi as seal

from node.crypto.ckks.format import CipherHeader, Layout, pack, unpack
from node.crypto.ckks.params import CKKSError, CKKSParams
from node.crypto.ckks.publicexport import context_id, export_context, parse_export
from node.crypto.ckks.seal import SealIO, pack_complex, seal_context, unpack_complex

__all__ = [
    "CKKSError",
    "CKKSParams",
    "CKKSKeyHolder",
    "CKKSPublicContext",
    "CipherHeader",
    "DecryptedSum",
    "EncryptedVector",
    "WeightedMean",
    "context_id",
    "DEFAULT_MAX_LENGTH",
]

DEFAULT_MAX_LENGTH = (
    1 << 25
)  # values per encrypted vector (33.5M; a ResNet-50 has 23.5M parameters)
_SEAL_ERRORS = (ValueError, RuntimeError, TypeError)
_IO = SealIO()


@dataclass(frozen=True)
class DecryptedSum:
    values: np.ndarray  # float64, sum over the summands
    summands: int


@dataclass(frozen=True)
class EncryptedVector:
    """A received ciphertext blob, checked and parsed once (:meth:`CKKSPublicContext.load`)."""

    header: CipherHeader
    ciphertexts: tuple[seal.Ciphertext, ...]  # one per chunk; never changed in place


@dataclass(frozen=True)
class WeightedMean:
    mean: np.ndarray  # float64, sum_i w_i delta_i / sum_i w_i
    total_weight: float
    summands: int


def check_round(rnd: int) -> int:
    """``rnd`` as an int, if it is a round a ciphertext can be bound to (0..2^64-1)."""
    if isinstance(rnd, bool) or not isinstance(rnd, numbers.Integral) or not 0 <= rnd < 2**64:
        raise CKKSError(f"round {rnd!r}: must be an integer in 0..2^64-1")
    return int(rnd)


def _as_vector(values, bound: float, max_length: int, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or not 1 <= x.size <= max_length:
        raise CKKSError(f"{what}: need a 1-D vector of 1..{max_length} values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise CKKSError(f"{what}: contains NaN or infinity")
    peak = float(np.max(np.abs(x)))
    if peak > bound:
        raise CKKSError(
            f"{what}: |value| {peak:.6g} exceeds the bound {bound:.6g} that keeps the sum exact "
            f"(scale the weights down or raise the ciphertext modulus)"
        )
    return x


class CKKSPublicContext:
    """Peer and aggregator side: encrypt and add under the key holder's public key."""

    def __init__(
        self, params: CKKSParams, public_key: seal.PublicKey, export: bytes, max_length: int
    ) -> None:
        self.params, self.max_length = params, max_length
        self.export = export  #: the key holder's exported bytes this context was loaded from
        self.context_id = context_id(export)
        self._ctx = seal_context(params)
        self._encryptor = seal.Encryptor(self._ctx, public_key)
        self._encoder = seal.CKKSEncoder(self._ctx)
        self._evaluator = seal.Evaluator(self._ctx)

    @classmethod
    def from_bytes(
        cls, data: bytes, params: CKKSParams, *, max_length: int = DEFAULT_MAX_LENGTH
    ) -> CKKSPublicContext:
        """Load a key holder's export: size-bounded, checked against ``params``, public key only."""
        if not isinstance(data, (bytes, bytearray)):
            raise CKKSError(f"public context: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > params.public_context_bytes_bound:
            raise CKKSError(
                f"public context: {len(data)} bytes exceeds the {params.public_context_bytes_bound}-byte "
                f"bound for ring {params.poly_modulus_degree}"
            )
        ctx, key_bytes = seal_context(params), parse_export(data, params)
        try:
            pk = _IO.load(seal.PublicKey(), ctx, key_bytes)
        except _SEAL_ERRORS as exc:
            raise CKKSError(f"public context: malformed public key ({exc})") from None
        if pk.parms_id() != ctx.key_parms_id():
            raise CKKSError(
                "public context: public key is not at the key level of these parameters"
            )
        return cls(params, pk, data, max_length)

    def encrypt(self, values, round: int) -> bytes:
        """Encrypt a float vector for ``round``; each |value| must be at most ``params.value_bound``."""
        x = _as_vector(values, self.params.value_bound, self.max_length, "values")
        return self._encrypt(x, Layout.PLAIN, round)

    def encrypt_weighted(self, delta, weight: float, round: int) -> bytes:
        """Encrypt ``weight * delta`` and then ``weight`` itself, for a weighted mean at the key holder."""
        if (
            isinstance(weight, bool)
            or not isinstance(weight, numbers.Real)
            or not math.isfinite(weight)
            or weight <= 0
        ):
            raise CKKSError(f"weight {weight!r}: must be a positive finite number")
        x = _as_vector(delta, math.inf, self.max_length - 1, "delta")
        scaled = _as_vector(
            np.append(x * float(weight), float(weight)),
            self.params.value_bound,
            self.max_length,
            "weight * delta",
        )
        return self._encrypt(scaled, Layout.WEIGHTED, round)

    def check(self, blob: bytes, round: int) -> CipherHeader:
        """Fully validate one received ciphertext (framing, binding, every chunk) without adding it."""
        return self._load(blob, round)[0]

    def load(self, blob: bytes, round: int) -> EncryptedVector:
        """Validate one received ciphertext as :meth:`check` does and keep it parsed for :meth:`sum`."""
        header, cts = self._load(blob, round)
        return EncryptedVector(header, tuple(cts))

    def sum(self, blobs: Sequence[bytes | EncryptedVector], round: int) -> bytes:
        """Add encrypted vectors of one round, context, layout and length; no secret key needed.

        Each item is a framed blob (checked and parsed here, one at a time) or an
        :class:`EncryptedVector` this context loaded for the same round (parsed once already)."""
        if not blobs:
            raise CKKSError("sum: no ciphertexts to add")
        rnd = check_round(round)
        first, acc, summands = None, [], 0
        for i, blob in enumerate(blobs):
            header, cts = self._parsed(blob, rnd, i)
            if first is None:
                first, acc = (
                    header,
                    list(cts),
                )  # the first summand's objects: replaced, never changed
            elif (header.layout, header.length) != (first.layout, first.length):
                raise CKKSError(
                    f"sum: ciphertext {i} is a {header.describe()}, ciphertext 0 a {first.describe()}"
                )
            else:
                for j, c in enumerate(cts):
                    if i == 1:  # a fresh accumulator, so that no caller's ciphertext is changed
                        total = seal.Ciphertext()
                        self._evaluator.add(acc[j], c, total)
                        acc[j] = total
                    else:
                        self._evaluator.add_inplace(acc[j], c)
            summands += header.summands
            if summands > self.params.max_summands:
                raise CKKSError(
                    f"sum: {summands} summands exceed max_summands {self.params.max_summands} "
                    f"(the sum could overflow the ciphertext modulus)"
                )
        if first is None:  # not reached: blobs is not empty
            raise CKKSError("sum: no ciphertexts to add")
        header = CipherHeader(
            first.layout, rnd, self.context_id, first.length, first.chunks, summands
        )
        return pack(header, [_IO.dump(a) for a in acc])

    def _parsed(
        self, item: bytes | EncryptedVector, rnd: int, i: int
    ) -> tuple[CipherHeader, Sequence]:
        if not isinstance(item, EncryptedVector):
            return self._load(item, rnd)
        h = item.header
        if (h.context_id, h.round) != (self.context_id, rnd):
            raise CKKSError(
                f"sum: ciphertext {i} was loaded for round {h.round} under context "
                f"{h.context_id.hex()[:16]}, not round {rnd} under {self.context_id.hex()[:16]}"
            )
        return h, item.ciphertexts

    def _encrypt(self, x: np.ndarray, layout: int, rnd: int) -> bytes:
        rnd = check_round(rnd)
        n, scale = self.params.values_per_ciphertext, self.params.global_scale
        chunks = []
        for i in range(0, x.size, n):
            pt, ct = seal.Plaintext(), seal.Ciphertext()
            self._encoder.encode(pack_complex(x[i : i + n], n), scale, pt)
            self._encryptor.encrypt(pt, ct)
            chunks.append(_IO.dump(ct))
        return pack(CipherHeader(layout, rnd, self.context_id, int(x.size), len(chunks), 1), chunks)

    def _load(self, blob: bytes, rnd: int) -> tuple[CipherHeader, list[seal.Ciphertext]]:
        rnd = check_round(rnd)
        p = self.params
        header, chunks = unpack(
            blob,
            per_chunk=p.values_per_ciphertext,
            max_length=self.max_length,
            max_chunk_bytes=p.ciphertext_bytes_bound,
        )
        if header.context_id != self.context_id:
            raise CKKSError(
                f"ciphertext: made under context {header.context_id.hex()[:16]}, not this round's "
                f"{self.context_id.hex()[:16]} (another key holder or round?)"
            )
        if header.round != rnd:
            raise CKKSError(
                f"ciphertext: bound to round {header.round}, expected round {rnd} (replay?)"
            )
        cts = []
        for i, c in enumerate(chunks):
            try:
                ct = _IO.load(seal.Ciphertext(), self._ctx, c)
            except _SEAL_ERRORS as exc:
                raise CKKSError(f"ciphertext: chunk {i} does not parse ({exc})") from None
            if (
                ct.size() != 2
                or ct.parms_id() != self._ctx.first_parms_id()
                or ct.scale != p.global_scale
                or not ct.is_ntt_form()
            ):
                raise CKKSError(
                    f"ciphertext: chunk {i} is not a fresh ciphertext at scale 2^{p.scale_bits}"
                )
            cts.append(ct)
        return header, cts


class CKKSKeyHolder:
    """The round's key holder: fresh keys, publishes the public context, decrypts sums only."""

    def __init__(
        self, params: CKKSParams | None = None, *, max_length: int = DEFAULT_MAX_LENGTH
    ) -> None:
        self.params = params = params or CKKSParams()
        ctx = seal_context(params)
        keygen = seal.KeyGenerator(ctx)
        public_key = seal.PublicKey()
        keygen.create_public_key(public_key)
        self._secret_key = keygen.secret_key()  # stays in this object: never serialized
        self._decryptor = seal.Decryptor(ctx, self._secret_key)
        self._encoder = seal.CKKSEncoder(ctx)
        #: what the key holder publishes: parameters and the public key, no field for anything else
        self.public_context_bytes: bytes = export_context(params, _IO.dump(public_key))
        self.public = CKKSPublicContext.from_bytes(
            self.public_context_bytes, params, max_length=max_length
        )

    @property
    def context_id(self) -> bytes:
        return self.public.context_id

    def decrypt_sum(self, blob: bytes, round: int, *, min_summands: int = 2) -> DecryptedSum:
        """Decrypt a sum of at least ``min_summands`` plain-layout vectors bound to ``round``."""
        header, values = self._decrypt(blob, round, min_summands)
        if header.layout != Layout.PLAIN:
            raise CKKSError(f"decrypt_sum: got a {header.describe()}; use decrypt_weighted_mean")
        return DecryptedSum(values, header.summands)

    def decrypt_weighted_mean(
        self,
        blob: bytes,
        round: int,
        *,
        min_summands: int = 2,
        expected_weight: float | None = None,
        own: tuple[np.ndarray, float] | None = None,
    ) -> WeightedMean:
        """Decrypt a sum of weighted vectors and divide by the summed weight.

        ``expected_weight`` (e.g. the sum of the accepted peers' sample counts committed on chain)
        must match the decrypted weight to 1e-6: a sum that leaves peers out, or repeats one, is
        refused before its mean leaves the key holder. The aggregator writes the header's summand
        count, so this weight is the stronger check, though not a proof: repeats whose weights
        happen to add up to the expected total still pass.

        ``own = (delta, weight)`` is the key holder's own update, added in the clear after
        decryption and counted as one of the ``min_summands``: encrypting it would hide nothing
        from the key holder, who can subtract it from any sum it decrypts.
        ``WeightedMean.summands`` still counts the encrypted summands only.
        """
        extra = None
        if own is not None:
            delta, weight = own
            if (
                isinstance(weight, bool)
                or not isinstance(weight, numbers.Real)
                or not math.isfinite(weight)
                or weight <= 0
            ):
                raise CKKSError(f"own weight {weight!r}: must be a positive finite number")
            extra = np.append(
                _as_vector(delta, math.inf, self.public.max_length - 1, "own delta")
                * float(weight),
                float(weight),
            )
        header, values = self._decrypt(blob, round, min_summands, own=extra is not None)
        if header.layout != Layout.WEIGHTED:
            raise CKKSError(
                f"decrypt_weighted_mean: got a {header.describe()}; peers must use encrypt_weighted"
            )
        total = float(values[-1])
        if not total > 0:
            raise CKKSError(f"decrypt_weighted_mean: summed weight {total:.6g} is not positive")
        if expected_weight is not None and not math.isclose(total, expected_weight, rel_tol=1e-6):
            raise CKKSError(
                f"decrypt_weighted_mean: summed weight {total:.6g} differs from the expected "
                f"{expected_weight:.6g} (the sum does not cover exactly the accepted updates)"
            )
        if extra is not None:
            if extra.size != values.size:
                raise CKKSError(
                    f"decrypt_weighted_mean: own delta has {extra.size - 1} values, the sum "
                    f"{values.size - 1}"
                )
            values = values + extra
            total = float(values[-1])
        return WeightedMean(values[:-1] / total, total, header.summands)

    def _decrypt(
        self, blob: bytes, rnd: int, min_summands: int, own: bool = False
    ) -> tuple[CipherHeader, np.ndarray]:
        header, cts = self.public._load(blob, rnd)
        if header.summands + own < min_summands:
            mine = " plus its own" if own else ""
            raise CKKSError(
                f"decrypt: refusing a sum of {header.summands} update(s){mine}; the key holder "
                f"decrypts only sums of at least {min_summands}"
            )
        n, parts = self.params.values_per_ciphertext, []
        for i, ct in enumerate(cts):
            pt = seal.Plaintext()
            self._decryptor.decrypt(ct, pt)
            parts.append(
                unpack_complex(self._encoder.decode_complex(pt), min(n, header.length - i * n))
            )
        return header, np.concatenate(parts)
