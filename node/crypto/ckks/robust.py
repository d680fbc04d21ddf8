"""Encrypted norms and inner products: what a robust rule needs, computed without a secret key.

The aggregator holds every member's CKKS ciphertext (:mod:`node.crypto.ckks.scheme`, plain layout, chunks of
N reals packed as ``z_j = x_j + i * x_{j + N/2}``). For two updates ``a`` and ``b``,
``Re sum_j z_a,j * conj(z_b,j) = sum_j (x_a,j x_b,j + y_a,j y_b,j) = <a, b>`` over both halves of
every chunk. The aggregator multiplies each chunk of ``a`` by the conjugated chunk of ``b``,
adds the chunk products (one relinearization and one rescale per pair, not per chunk), sums
the N/2 slots with log2(N/2) rotations (rotate by 1, 2, 4, ...: every slot then holds the
total), and adds the result's conjugate, so that every slot holds ``2 <a, b>`` and the
imaginary parts (cross terms of the two halves) cancel. The squared distances follow as
``|a|^2 + |b|^2 - 2 <a, b>``
(:func:`node.consensus.robust_audit.distances_from_gram`). Cost per pair: ``d / N``
ciphertext multiplications and ``log2(N/2) + 1`` Galois automorphisms (Cheon et al. 2017;
the rotate-and-sum is Halevi and Shoup's, CRYPTO 2014).

Keys: the key holder (:class:`RobustKeyHolder`) publishes, besides the public context, its
**evaluation keys** (:func:`evaluation_keys`): a relinearization key and Galois keys for the
conjugation and the power-of-two rotations, bound to the public context's id. They let anyone
multiply and rotate ciphertexts, never decrypt them (a test checks that no secret-key bytes
are in them). Only the **scalars** are decrypted: the key holder opens a Gram blob only if
every slot of every ciphertext holds the same real value, which a rotate-and-sum output does
and an individual update (or any other vector) does not.

Parameters (:data:`ROBUST_PARAMS`): N = 8192, primes (60, 40, 60) = 160 of the 218 bits that
128-bit security allows (HomomorphicEncryption.org table, checked by
:func:`node.crypto.ckks.params.check_security` and by SEAL); scale 2^40. The product of two fresh
ciphertexts (scale 2^80) is rescaled by the 40-bit prime to scale ~2^40 over the remaining
60-bit prime, so a scalar must stay below :func:`scalar_bound` (2^17 = 131072): squared norms
of updates up to norm 362. The key holder publishes a decrypted value between 2^17 and 2^18
(where it would wrap around the modulus) as NaN, and the selection leaves that member out. A
value beyond 2^18 wraps to a value that is out of range about half the time; if it lands in
range and its member is accepted, the consistency check of :mod:`node.consensus.robust_audit`
stops the round when the sum is decrypted (a liveness cost, not a silent one).

Gram blob: ``b"MMGS" | u8 version | u64 round | 32-byte context id | u16 members |
32-byte SHA-256(header || body) | body``, the body holding one ciphertext per pair
``(a, b), a <= b``, row by row (:func:`node.crypto.ckks.format.join_chunks`).
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence

import numpy as np
import tenseal.sealapi as seal

from node.crypto.ckks.format import CipherHeader, Layout, join_chunks, pack, split_chunks
from node.crypto.ckks.params import CKKSError, CKKSParams
from node.crypto.ckks.scheme import CKKSKeyHolder, CKKSPublicContext, EncryptedVector, check_round
from node.crypto.ckks.seal import SealIO, seal_context

__all__ = [
    "ROBUST_PARAMS",
    "GramEvaluator",
    "RobustKeyHolder",
    "galois_elements",
    "evaluation_keys",
    "load_evaluation_keys",
    "frame_gram",
    "encrypted_round",
    "scalar_bound",
    "pair_count",
    "all_pairs",
    "split_pairs",
]

ROBUST_PARAMS = CKKSParams(coeff_mod_bit_sizes=(60, 40, 60), scale_bits=40)
_EK = struct.Struct(">4sB32sI")
_EK_MAGIC, _GS_MAGIC, _VERSION = b"MMEK", b"MMGS", 1
_GS = struct.Struct(">4sBQ32sH")
_DIGEST = 32
_MAX_MEMBERS = 1024
_SLOT_TOLERANCE = 1e-3  # relative spread allowed between the slots of one rotate-and-sum output
_IO = SealIO()


def check_robust(params: CKKSParams) -> None:
    """Raise unless ``params`` have a level to spend on one multiplication and a special prime."""
    bits = params.coeff_mod_bit_sizes
    if len(bits) < 3 or bits[-2] != params.scale_bits:
        raise CKKSError(
            f"coeff_mod_bit_sizes {list(bits)}: encrypted norms need at least two data primes, the "
            f"last of {params.scale_bits} bits (the scale), and a special prime, e.g. (60, 40, 60)"
        )


def scalar_bound(params: CKKSParams) -> float:
    """Largest |inner product| the key holder reads as one. Each slot holds ``2 <a, b>`` at scale
    ~2^scale_bits over the remaining primes ``q``, readable while ``|2 <a, b>| < q / 2^(scale_bits + 1)``;
    the bound is half of that, so a value between the bound and the wrap is seen as out of range."""
    return float(2 ** (sum(params.coeff_mod_bit_sizes[:-2]) - params.scale_bits - 3))


def pair_count(members: int) -> int:
    return members * (members + 1) // 2


def all_pairs(members: int) -> list[tuple[int, int]]:
    """Every pair ``(a, b), a <= b``, row by row: the order of a Gram blob's ciphertexts."""
    return [(a, b) for a in range(members) for b in range(a, members)]


def split_pairs(members: int, parts: int) -> list[list[tuple[int, int]]]:
    """:func:`all_pairs` cut into at most ``parts`` consecutive runs of near-equal length."""
    pairs = all_pairs(members)
    k = max(1, min(parts, len(pairs)))
    bounds = [round(i * len(pairs) / k) for i in range(k + 1)]
    return [pairs[bounds[i] : bounds[i + 1]] for i in range(k)]


def galois_elements(params: CKKSParams) -> list[int]:
    """Rotations by 1, 2, 4, ... N/4 slots (3^step mod 2N) and the conjugation (2N - 1)."""
    two_n = 2 * params.poly_modulus_degree
    return [
        pow(3, 1 << i, two_n) for i in range((params.poly_modulus_degree // 2).bit_length() - 1)
    ] + [two_n - 1]


def _key_bytes_bound(params: CKKSParams, keys: int) -> int:
    k = len(params.coeff_mod_bit_sizes)
    return keys * (k - 1) * 2 * params.poly_modulus_degree * k * 8 + 65536


def evaluation_keys(keygen: seal.KeyGenerator, params: CKKSParams, context_id: bytes) -> bytes:
    """``b"MMEK" | u8 version | context id | u32 relin size | relin key | Galois keys`` (seeded)."""
    relin = _IO.dump(keygen.create_relin_keys())
    galois = _IO.dump(keygen.create_galois_keys(galois_elements(params)))
    return _EK.pack(_EK_MAGIC, _VERSION, context_id, len(relin)) + relin + galois


def load_evaluation_keys(
    data: bytes, public: CKKSPublicContext
) -> tuple[seal.RelinKeys, seal.GaloisKeys]:
    """Parse evaluation keys made for ``public``: bound to its context id, every element present."""
    p = public.params
    check_robust(p)
    if not isinstance(data, (bytes, bytearray)) or len(data) < _EK.size or data[:4] != _EK_MAGIC:
        raise CKKSError(
            "evaluation keys: not a medmesh evaluation-key blob (bad magic or too short)"
        )
    if len(data) > _key_bytes_bound(p, 1 + len(galois_elements(p))):
        raise CKKSError(
            f"evaluation keys: {len(data)} bytes exceeds the bound for ring {p.poly_modulus_degree}"
        )
    _, version, ctx_id, relin_size = _EK.unpack_from(data)
    if version != _VERSION:
        raise CKKSError(
            f"evaluation keys: unsupported format version {version} (this node reads {_VERSION})"
        )
    if ctx_id != public.context_id:
        raise CKKSError(
            f"evaluation keys: made for context {ctx_id.hex()[:16]}, not {public.context_id.hex()[:16]}"
        )
    ctx = seal_context(p)
    try:
        relin = _IO.load(seal.RelinKeys(), ctx, bytes(data[_EK.size : _EK.size + relin_size]))
        galois = _IO.load(seal.GaloisKeys(), ctx, bytes(data[_EK.size + relin_size :]))
    except (ValueError, RuntimeError, TypeError) as exc:
        raise CKKSError(f"evaluation keys: malformed key ({exc})") from None
    missing = [e for e in galois_elements(p) if not galois.has_key(e)]
    if missing or relin.parms_id() != ctx.key_parms_id() or galois.parms_id() != ctx.key_parms_id():
        raise CKKSError(
            f"evaluation keys: not at the key level, or Galois elements {missing} missing"
        )
    return relin, galois


class GramEvaluator:
    """Aggregator side: the encrypted Gram matrix of the members' updates, no secret needed."""

    def __init__(self, public: CKKSPublicContext, eval_keys: bytes) -> None:
        self.public, self.params, self.keys = public, public.params, bytes(eval_keys)
        self._relin, self._galois = load_evaluation_keys(eval_keys, public)
        self._ctx = seal_context(self.params)
        self._ev = seal.Evaluator(self._ctx)
        self._encoder = seal.CKKSEncoder(self._ctx)

    def scaled_sum(
        self, vectors: Sequence[EncryptedVector], factors: Sequence[int], round: int
    ) -> bytes:
        """``sum_a c_a * vector_a`` for public integers ``c_a`` in ``0..2^20`` (norm bounding, Sun et al.
        2019: ``c_a = round(2^20 min(1, M / |u_a|))``, :func:`node.consensus.robust_audit.factor_integers`).
        Each ``c_a`` is a constant plaintext at scale 1, so the product is exact and stays a fresh-level
        ciphertext at scale 2^40: the key holder's ``decrypt_sum`` reads ``2^20 sum_a s_a u_a``."""
        rnd = check_round(round)
        if (
            not vectors
            or len(factors) != len(vectors)
            or not all(0 <= int(c) <= 1 << 20 for c in factors)
        ):
            raise CKKSError(
                f"scaled_sum: need one factor in 0..2^20 per vector, got {len(factors)} for "
                f"{len(vectors)}"
            )
        self._check_same(vectors, rnd)
        first, acc = vectors[0].header, []
        for i, (v, c) in enumerate(zip(vectors, factors, strict=True)):
            pt = seal.Plaintext()
            self._encoder.encode(float(int(c)), 1.0, pt)
            scaled = []
            for ct in v.ciphertexts:
                out = seal.Ciphertext()
                self._ev.multiply_plain(ct, pt, out)
                scaled.append(out)
            if i == 0:
                acc = scaled
            else:
                for a, s in zip(acc, scaled, strict=True):
                    self._ev.add_inplace(a, s)
        return pack(
            CipherHeader(
                Layout.PLAIN, rnd, self.public.context_id, first.length, first.chunks, len(vectors)
            ),
            [_IO.dump(a) for a in acc],
        )

    def gram(self, vectors: Sequence[EncryptedVector], round: int) -> bytes:
        """Encrypted ``<a, b>`` for every pair ``a <= b`` of ``vectors`` (in their given order).
        Deterministic: SEAL's evaluation is exact integer arithmetic, so the same ciphertexts and
        evaluation keys give the same bytes in any process (a test checks it)."""
        rnd = check_round(round)
        out = self.pairs(vectors, all_pairs(len(vectors)), rnd)
        return frame_gram(rnd, self.public.context_id, len(vectors), out)

    def pairs(
        self,
        vectors: Sequence[EncryptedVector | None],
        pairs: Sequence[tuple[int, int]],
        round: int,
    ) -> list[bytes]:
        """The serialized ciphertexts of ``<a, b>`` for the given ``pairs`` of indices into
        ``vectors``, in that order (entries no pair names may be None): a share of :meth:`gram`'s
        work, as :func:`node.crypto.ckks.pool.gram` hands it to a worker process."""
        rnd = check_round(round)
        if not 2 <= len(vectors) <= _MAX_MEMBERS:
            raise CKKSError(f"gram: need 2..{_MAX_MEMBERS} encrypted updates, got {len(vectors)}")
        if not pairs or not all(0 <= a <= b < len(vectors) for a, b in pairs):
            raise CKKSError(f"gram: pairs must be (a, b) with 0 <= a <= b < {len(vectors)}")
        given: dict[int, EncryptedVector] = {}
        for i in sorted({i for pair in pairs for i in pair}):
            v = vectors[i]
            if v is None:
                raise CKKSError(f"gram: a pair names update {i}, which was not given")
            given[i] = v
        self._check_same(list(given.values()), rnd)
        conj: dict[int, list[seal.Ciphertext]] = {}
        out = []
        for a, b in pairs:
            if b not in conj:
                conj[b] = [self._apply(c, self._conjugation) for c in given[b].ciphertexts]
            out.append(_IO.dump(self._inner(given[a].ciphertexts, conj[b])))
        return out

    def _check_same(self, vectors: Sequence[EncryptedVector], rnd: int) -> None:
        first = vectors[0].header
        for i, v in enumerate(vectors):
            h = v.header
            if (h.layout, h.length, h.round, h.context_id, h.summands) != (
                Layout.PLAIN,
                first.length,
                rnd,
                self.public.context_id,
                1,
            ):
                raise CKKSError(
                    f"update {i} is a {h.describe()}; need one member's plain vector of "
                    f"{first.length} values, round {rnd}, this context"
                )

    @property
    def _conjugation(self) -> int:
        return 2 * self.params.poly_modulus_degree - 1

    def _apply(self, ct: seal.Ciphertext, element: int) -> seal.Ciphertext:
        out = seal.Ciphertext()
        self._ev.apply_galois(ct, element, self._galois, out)
        return out

    def _inner(
        self, xs: Sequence[seal.Ciphertext], ys_conj: Sequence[seal.Ciphertext]
    ) -> seal.Ciphertext:
        acc = None
        for x, y in zip(
            xs, ys_conj, strict=True
        ):  # sum the chunk products first: one relinearization per pair
            prod = seal.Ciphertext()
            self._ev.multiply(x, y, prod)
            if acc is None:
                acc = prod
            else:
                self._ev.add_inplace(acc, prod)
        self._ev.relinearize_inplace(acc, self._relin)
        self._ev.rescale_to_next_inplace(acc)
        for element in galois_elements(self.params)[:-1]:  # rotate-and-sum over the N/2 slots
            self._ev.add_inplace(acc, self._apply(acc, element))
        self._ev.add_inplace(
            acc, self._apply(acc, self._conjugation)
        )  # 2 Re: the cross terms cancel
        return acc


def frame_gram(rnd: int, context_id: bytes, members: int, chunks: list[bytes]) -> bytes:
    """The Gram blob around ``chunks`` (serialized ciphertexts, one per pair ``a <= b``)."""
    head = _GS.pack(_GS_MAGIC, _VERSION, rnd, context_id, members)
    body = join_chunks(chunks)
    return head + hashlib.sha256(head + body).digest() + body


class RobustKeyHolder(CKKSKeyHolder):
    """A key holder that also publishes evaluation keys and decrypts Gram blobs (scalars only)."""

    def __init__(self, params: CKKSParams = ROBUST_PARAMS, **kwargs) -> None:
        check_robust(params)
        super().__init__(params, **kwargs)
        keygen = seal.KeyGenerator(seal_context(params), self._secret_key)
        #: published with the public context: relinearization and Galois keys, no secret
        self.evaluation_keys_bytes: bytes = evaluation_keys(keygen, params, self.context_id)

    def decrypt_gram(self, blob: bytes, round: int, members: int) -> np.ndarray:
        """The ``members`` x ``members`` matrix of inner products in a Gram blob; refuses any
        ciphertext whose slots do not all hold one real value (so no vector is ever opened).
        An inner product above :func:`scalar_bound` is NaN: it may have wrapped around, and the
        selection leaves out every member in whose row one stands (an oversized update does not
        stop the round)."""
        rnd, p = check_round(round), self.params
        if (
            not isinstance(blob, (bytes, bytearray))
            or len(blob) < _GS.size + _DIGEST
            or blob[:4] != _GS_MAGIC
        ):
            raise CKKSError("gram: not a medmesh Gram blob (bad magic or too short)")
        _, version, got_round, ctx_id, n = _GS.unpack_from(blob)
        if (version, got_round, ctx_id, n) != (_VERSION, rnd, self.context_id, members):
            raise CKKSError(
                f"gram: version {version}, round {got_round}, {n} members under context "
                f"{ctx_id.hex()[:16]}; expected round {rnd}, {members} members, "
                f"{self.context_id.hex()[:16]}"
            )
        body = memoryview(blob)[_GS.size + _DIGEST :]
        if (
            hashlib.sha256(bytes(blob[: _GS.size]) + bytes(body)).digest()
            != blob[_GS.size : _GS.size + _DIGEST]
        ):
            raise CKKSError(
                "gram: digest mismatch (bytes were changed in transit or tampered with)"
            )
        chunks = split_chunks(body, pair_count(n), p.ciphertext_bytes_bound)
        ctx, bound = seal_context(p), scalar_bound(p)
        last = ctx.last_parms_id()
        gram, pairs = np.zeros((n, n)), all_pairs(n)
        for (a, b), raw in zip(pairs, chunks, strict=True):
            try:
                ct = _IO.load(seal.Ciphertext(), ctx, raw)
            except (ValueError, RuntimeError, TypeError) as exc:
                raise CKKSError(f"gram: pair ({a}, {b}) does not parse ({exc})") from None
            if ct.size() != 2 or ct.parms_id() != last:
                raise CKKSError(
                    f"gram: pair ({a}, {b}) is not a relinearized ciphertext at the last level"
                )
            gram[a, b] = gram[b, a] = self._scalar(ct, bound, (a, b))
        return gram

    def _scalar(self, ct: seal.Ciphertext, bound: float, pair: tuple[int, int]) -> float:
        pt = seal.Plaintext()
        self._decryptor.decrypt(ct, pt)
        slots = np.asarray(self._encoder.decode_complex(pt), dtype=np.complex128)
        value = float(np.mean(slots.real)) / 2.0
        spread = float(max(np.max(np.abs(slots.real / 2.0 - value)), np.max(np.abs(slots.imag))))
        if spread > _SLOT_TOLERANCE * max(1.0, abs(value)):
            raise CKKSError(
                f"gram: pair {pair} does not hold one scalar in every slot (spread {spread:.3g}); "
                f"refusing to decrypt anything but inner products"
            )
        return value if abs(value) <= bound else math.nan  # out of range: its members are left out


def encrypted_round(rule: str, updates: np.ndarray, *, f: int = 1, round: int = 0) -> np.ndarray:
    """One robust ckks round in one process, for benchmarks: fresh keys, every row encrypted, the
    Gram matrix evaluated and decrypted, ``rule`` run on it, the accepted ciphertexts summed and
    decrypted, checked (:func:`~node.consensus.robust_audit.check_sum`); the mean, float32.
    Raises ValueError (a :class:`CKKSError` or a failed check) where the protocol's round fails."""
    from node.consensus.robust_audit import check_sum, select_from_gram

    holder = RobustKeyHolder()
    evaluator = GramEvaluator(holder.public, holder.evaluation_keys_bytes)
    vectors = [
        holder.public.load(holder.public.encrypt(row, round), round) for row in np.asarray(updates)
    ]
    gram = holder.decrypt_gram(evaluator.gram(vectors, round), round, len(vectors))
    chosen = select_from_gram(rule, gram, f=f)
    total = holder.decrypt_sum(
        holder.public.sum([vectors[i] for i in chosen.accepted], round), round, min_summands=1
    ).values
    check_sum(total, gram, chosen)
    return (total / len(chosen.accepted)).astype(np.float32)
