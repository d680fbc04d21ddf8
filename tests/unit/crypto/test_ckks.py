"""CKKS mode (node/crypto/ckks/scheme.py): precision against float64 numpy, the 128-bit rule against SEAL's own
table, the public export's content, and rejection of tampered, replayed and oversized input."""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tenseal.sealapi as seal

from node.crypto.ckks.format import pack
from node.crypto.ckks.params import MAX_COEFF_BITS_128
from node.crypto.ckks.scheme import (
    DEFAULT_MAX_LENGTH,
    CKKSError,
    CKKSKeyHolder,
    CKKSParams,
    CKKSPublicContext,
)
from node.crypto.ckks.seal import SealIO, pack_complex, seal_context, unpack_complex

ROUND = 7


@pytest.fixture(scope="module")
def holder() -> CKKSKeyHolder:
    return CKKSKeyHolder()


@pytest.fixture(scope="module")
def peer(holder: CKKSKeyHolder) -> CKKSPublicContext:
    # a peer sees only the exported bytes, never the key holder's objects
    return CKKSPublicContext.from_bytes(holder.public_context_bytes, CKKSParams())


def _updates(k: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """Update-like vectors: mostly small, a few large coordinates, various scales per peer."""
    rng = np.random.default_rng(seed)
    return [rng.standard_t(3, n) * 10.0 ** rng.uniform(-3, -1) for _ in range(k)]


def _rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(got - ref) / np.linalg.norm(ref))


# ---- precision -----------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [4, 16])
def test_decrypted_sum_matches_float64_sum(holder, peer, k):
    xs = _updates(k, 100_000, seed=k)
    blobs = [peer.encrypt(x, ROUND) for x in xs]
    total = holder.decrypt_sum(peer.sum(blobs, ROUND), ROUND)
    ref = np.sum(np.stack(xs), axis=0, dtype=np.float64)
    assert total.summands == k and total.values.shape == ref.shape
    assert _rel_err(total.values, ref) < 1e-4
    assert np.max(np.abs(total.values - ref)) < 1e-4 * np.max(np.abs(ref))


def test_weighted_fedavg_of_16_updates(holder, peer):
    xs = _updates(16, 100_000, seed=3)
    samples = [155, 130, 91, 80, 12, 400, 77, 300, 5, 64, 210, 99, 150, 33, 48, 260]
    blobs = [peer.encrypt_weighted(x, float(n), ROUND) for x, n in zip(xs, samples, strict=False)]
    mean = holder.decrypt_weighted_mean(peer.sum(blobs, ROUND), ROUND, expected_weight=sum(samples))
    ref = sum(n * x for n, x in zip(samples, xs, strict=False)) / sum(
        samples
    )  # FedAvg, McMahan et al. 2017, eq. in Alg. 1
    assert mean.summands == 16
    assert mean.total_weight == pytest.approx(sum(samples), rel=1e-9)
    assert _rel_err(mean.mean, ref) < 1e-4


def test_two_primes_data_and_special_work_too():
    p = CKKSParams(coeff_mod_bit_sizes=(60, 60))  # the special prime is dropped at encryption
    assert p.data_bits == 60 and p.value_bound == CKKSParams().value_bound
    holder = CKKSKeyHolder(p)
    xs = _updates(4, 10_000, seed=2)
    blobs = [holder.public.encrypt(x, ROUND) for x in xs]
    total = holder.decrypt_sum(holder.public.sum(blobs, ROUND), ROUND)
    assert _rel_err(total.values, np.sum(np.stack(xs), axis=0, dtype=np.float64)) < 1e-6


def test_sums_can_be_summed_again_and_odd_lengths_survive(holder, peer):
    n = 2 * 8192 + 3  # three chunks, the last with 3 values
    xs = _updates(4, n, seed=9)
    partial = [
        peer.sum([peer.encrypt(a, ROUND), peer.encrypt(b, ROUND)], ROUND)
        for a, b in (xs[:2], xs[2:])
    ]
    total = holder.decrypt_sum(peer.sum(partial, ROUND), ROUND)
    assert total.summands == 4
    assert _rel_err(total.values, np.sum(xs, axis=0)) < 1e-6


def test_threads_encrypt_and_add_independently(holder, peer):
    xs = _updates(6, 20_000, seed=5)
    with ThreadPoolExecutor(max_workers=3) as pool:  # each thread has its own in-memory SEAL file
        blobs = list(pool.map(lambda x: peer.encrypt(x, ROUND), xs))
        halves = list(pool.map(lambda bs: peer.sum(bs, ROUND), [blobs[:3], blobs[3:]]))
    total = holder.decrypt_sum(peer.sum(halves, ROUND), ROUND)
    assert _rel_err(total.values, np.sum(xs, axis=0)) < 1e-6


def test_complex_packing_is_two_reals_per_slot():
    x = np.arange(1.0, 8.0)  # 7 reals into 4 slots (n = 8)
    z = pack_complex(x, 8)
    assert z == [1 + 5j, 2 + 6j, 3 + 7j, 4 + 0j]
    assert unpack_complex(z, 7).tolist() == x.tolist()


# ---- security parameters -------------------------------------------------------------------------


def test_128_bit_table_matches_seal():
    for n, bits in MAX_COEFF_BITS_128.items():
        assert seal.CoeffModulus.MaxBitCount(n, seal.SEC_LEVEL_TYPE.TC128) == bits


def test_security_check_accepts_defaults_and_refuses_weak_parameters():
    p = CKKSParams()
    assert sum(p.coeff_mod_bit_sizes) <= 218 and p.poly_modulus_degree == 8192
    assert seal_context(p).parameters_set()
    # one prime: SEAL needs no special prime, since only additions are done (no key switching)
    assert p.coeff_mod_bit_sizes == (60,) and not seal_context(p).using_keyswitching()
    assert seal_context(CKKSParams(coeff_mod_bit_sizes=(60, 60))).using_keyswitching()
    with pytest.raises(
        CKKSError, match=r"coeff_mod_bit_sizes: 250 bits in total exceed 218, the 128-bit"
    ):
        CKKSParams(8192, (60, 50, 50, 30, 60))
    with pytest.raises(CKKSError, match="exceed 109"):
        CKKSParams(4096, (60, 50))
    CKKSParams(4096, (60, 49))  # exactly at the limit
    with pytest.raises(CKKSError, match="poly_modulus_degree 2048"):
        CKKSParams(2048, (30, 24), scale_bits=20, max_summands=1)
    with pytest.raises(CKKSError, match="poly_modulus_degree 5000"):
        CKKSParams(5000)
    with pytest.raises(CKKSError, match="coeff_mod_bit_sizes"):
        CKKSParams(8192, (61, 60))
    with pytest.raises(CKKSError, match="coeff_mod_bit_sizes"):
        CKKSParams(8192, ())
    with pytest.raises(CKKSError, match="scale_bits 55: leaves no headroom"):
        CKKSParams(scale_bits=55)


def test_value_bound_guards_against_wraparound(peer):
    bound = peer.params.value_bound
    assert bound == 2.0 ** (60 - 40 - 2) / 64
    with pytest.raises(CKKSError, match="exceeds the bound"):
        peer.encrypt(np.array([0.0, bound * 1.01]), ROUND)
    with pytest.raises(CKKSError, match="exceeds the bound"):
        peer.encrypt_weighted(np.array([1.0]), bound * 2, ROUND)
    with pytest.raises(CKKSError, match="NaN"):
        peer.encrypt(np.array([1.0, np.nan]), ROUND)
    with pytest.raises(CKKSError, match="weight"):
        peer.encrypt_weighted(np.array([1.0]), 0.0, ROUND)


def test_more_summands_than_allowed_is_refused(holder):
    p = CKKSParams(max_summands=2)
    small = CKKSKeyHolder(p)
    blobs = [small.public.encrypt(np.ones(3), ROUND) for _ in range(3)]
    with pytest.raises(CKKSError, match="3 summands exceed max_summands 2"):
        small.public.sum(blobs, ROUND)


# ---- the public export ---------------------------------------------------------------------------


def test_public_context_holds_no_secret_key(holder, tmp_path):
    export = holder.public_context_bytes
    p = holder.params
    n, k = p.poly_modulus_degree, len(p.coeff_mod_bit_sizes)
    # a SEAL public key is 2 polynomials over all k primes; our framing adds 4+1+4+1+k+1 bytes
    pk_path = tmp_path / "pk"
    pk_path.write_bytes(export[11 + k :])
    pk = seal.PublicKey()
    pk.load(seal_context(p), str(pk_path))  # the whole remainder is one valid public key
    assert len(export) - (11 + k) - 2 * n * k * 8 < 256
    # and no piece of the secret key is in it
    sk_path = tmp_path / "sk"
    holder._secret_key.save(str(sk_path))
    coeffs = sk_path.read_bytes()[-n * k * 8 :]
    for start in range(0, len(coeffs), len(coeffs) // 16):
        assert coeffs[start : start + 32] not in export


def test_public_context_cannot_decrypt(holder, peer, tmp_path):
    # the export's key material does not load as a SEAL secret key
    k = len(holder.params.coeff_mod_bit_sizes)
    path = tmp_path / "key"
    path.write_bytes(holder.public_context_bytes[11 + k :])
    with pytest.raises((ValueError, RuntimeError)):
        seal.SecretKey().load(seal_context(holder.params), str(path))
    assert not hasattr(peer, "decrypt_sum")
    # another key holder with the same parameters cannot open this context's ciphertexts
    other = CKKSKeyHolder()
    blobs = [peer.encrypt(np.ones(10), ROUND) for _ in range(2)]
    with pytest.raises(CKKSError, match="made under context"):
        other.decrypt_sum(peer.sum(blobs, ROUND), ROUND)


def test_malformed_or_mismatched_public_context_is_refused(holder):
    p = CKKSParams()
    export = holder.public_context_bytes
    for bad, why in [
        (b"", "bad magic"),
        (b"garbage" * 10, "bad magic"),
        (export[:5000], "malformed public key"),
        (export[:-1], "malformed public key"),
        # the prime's bit size (byte 10) set to 0
        (export[:10] + b"\x00" + export[11:], r"^public context: ring 8192, primes \[0\].* differ"),
        (export + b"\x00" * (p.public_context_bytes_bound), "exceeds the"),
    ]:
        with pytest.raises(CKKSError, match=why):
            CKKSPublicContext.from_bytes(bad, p)
    for other, why in [
        (CKKSParams(4096, (60, 49)), "^public context: ring 4096, primes \\[60, 49\\]"),
        (CKKSParams(scale_bits=30), "scale 2\\^30 differ"),
        (CKKSParams(16384, (60, 60)), "exceeds the 196608-byte bound"),
    ]:
        with pytest.raises(CKKSError, match=why):
            CKKSPublicContext.from_bytes(CKKSKeyHolder(other).public_context_bytes, p)


# ---- ciphertexts: binding, tampering, size --------------------------------------------------------


def test_ciphertext_from_another_round_is_rejected(holder, peer):
    old = [peer.encrypt(np.ones(5), ROUND - 1) for _ in range(2)]
    with pytest.raises(
        CKKSError, match=rf"bound to round {ROUND - 1}, expected round {ROUND} \(replay\?\)"
    ):
        peer.sum(old + [peer.encrypt(np.ones(5), ROUND)], ROUND)
    with pytest.raises(CKKSError, match="bound to round"):
        holder.decrypt_sum(peer.sum(old, ROUND - 1), ROUND)


def test_tampered_ciphertext_is_rejected(holder, peer):
    blob = peer.encrypt(np.linspace(-1, 1, 10_000), ROUND)
    rng = np.random.default_rng(1)
    positions = [0, 5, 6, 20, 60, 70, 100, 94 + 4 + 50] + rng.integers(0, len(blob), 24).tolist()
    for pos in positions:
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(CKKSError, match="ciphertext"):
            peer.sum([bytes(bad), blob], ROUND)
    with pytest.raises(CKKSError, match="digest mismatch"):
        peer.sum([blob[:-1] + bytes([blob[-1] ^ 1]), blob], ROUND)


def test_reframed_chunks_are_checked_by_seal(peer):
    """An adversary who rewrites a chunk and recomputes the digest still meets SEAL's checks."""
    blob = peer.encrypt(np.ones(10), ROUND)
    header = peer.check(blob, ROUND)
    assert (header.round, header.length, header.chunks, header.summands) == (ROUND, 10, 1, 1)
    with pytest.raises(CKKSError, match="chunk 0 does not parse"):
        peer.check(pack(header, [b"\x5e" * 1000]), ROUND)
    ctx = seal_context(peer.params)  # a fresh ciphertext, encoded at another scale
    pt, ct = seal.Plaintext(), seal.Ciphertext()
    seal.CKKSEncoder(ctx).encode(pack_complex(np.ones(10), 8192), 2.0**30, pt)
    peer._encryptor.encrypt(pt, ct)
    with pytest.raises(CKKSError, match="chunk 0 is not a fresh ciphertext at scale 2\\^40"):
        peer.check(pack(header, [SealIO().dump(ct)]), ROUND)


def test_a_sum_missing_or_repeating_a_peer_fails_the_weight_check(holder, peer):
    blobs = [peer.encrypt_weighted(np.ones(4), float(n), ROUND) for n in (155, 130, 91)]
    with pytest.raises(CKKSError, match="summed weight 285 differs from the expected 376"):
        holder.decrypt_weighted_mean(peer.sum(blobs[:2], ROUND), ROUND, expected_weight=376)
    with pytest.raises(CKKSError, match="summed weight 440 differs"):
        holder.decrypt_weighted_mean(
            peer.sum([blobs[0], blobs[0], blobs[1]], ROUND), ROUND, expected_weight=376
        )


def test_module_exports():
    import node.crypto.ckks.scheme

    assert sorted(node.crypto.ckks.scheme.__all__) == sorted(
        [
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
    )


def test_numpy_scalars_are_accepted(holder, peer):
    blobs = [peer.encrypt_weighted(np.ones(3), np.int64(2), np.int64(ROUND)) for _ in range(2)]
    assert holder.decrypt_weighted_mean(
        peer.sum(blobs, ROUND), ROUND
    ).total_weight == pytest.approx(4.0)


def test_mismatched_vectors_are_not_added(peer):
    with pytest.raises(CKKSError, match="ciphertext 1 is a plain vector of 6 values"):
        peer.sum([peer.encrypt(np.ones(5), ROUND), peer.encrypt(np.ones(6), ROUND)], ROUND)
    with pytest.raises(CKKSError, match="weighted vector"):
        peer.sum(
            [peer.encrypt(np.ones(6), ROUND), peer.encrypt_weighted(np.ones(5), 2.0, ROUND)], ROUND
        )


def test_key_holder_decrypts_only_sums(holder, peer):
    one = peer.encrypt(np.ones(5), ROUND)
    with pytest.raises(CKKSError, match="refusing a sum of 1 update"):
        holder.decrypt_sum(one, ROUND)
    with pytest.raises(CKKSError, match="use decrypt_weighted_mean"):
        holder.decrypt_sum(
            peer.sum([peer.encrypt_weighted(np.ones(2), 1.0, ROUND)] * 2, ROUND), ROUND
        )


def test_oversized_input_is_rejected(holder, peer):
    blob = peer.encrypt(np.ones(100), ROUND)
    with pytest.raises(CKKSError, match="exceeds the .*-byte bound"):
        peer.sum([blob + b"\x00" * peer.params.ciphertext_bytes_bound], ROUND)
    with pytest.raises(CKKSError, match="trailing bytes|digest"):
        peer.sum([blob + b"\x00"], ROUND)
    # a header claiming a huge vector is refused before anything is parsed
    huge = bytearray(blob)
    struct.pack_into(">Q", huge, 46, DEFAULT_MAX_LENGTH + 1)
    with pytest.raises(CKKSError, match="outside 1"):
        peer.sum([bytes(huge)], ROUND)
    small = CKKSPublicContext.from_bytes(holder.public_context_bytes, peer.params, max_length=1000)
    with pytest.raises(CKKSError, match="1-D vector of 1..1000 values"):
        small.encrypt(np.ones(1001), ROUND)
    with pytest.raises(CKKSError, match="1-D vector"):
        peer.encrypt(np.ones((3, 3)), ROUND)


def test_loaded_vectors_add_like_blobs_and_stay_unchanged(holder, peer):
    xs = _updates(3, 2 * 8192 + 5, seed=11)
    blobs = [peer.encrypt(x, ROUND) for x in xs]
    loaded = [peer.load(b, ROUND) for b in blobs]
    assert loaded[0].header == peer.check(blobs[0], ROUND)
    ref = np.sum(np.stack(xs), axis=0, dtype=np.float64)
    for items in (loaded, [blobs[0], loaded[1], blobs[2]]):  # parsed once, or a mix of both
        total = holder.decrypt_sum(peer.sum(items, ROUND), ROUND)
        assert total.summands == 3 and _rel_err(total.values, ref) < 1e-6
    # adding did not change the loaded summands: each alone still decrypts to its own vector
    alone = holder.decrypt_sum(peer.sum([loaded[0], loaded[0]], ROUND), ROUND)
    assert _rel_err(alone.values, 2 * xs[0]) < 1e-6


def test_loaded_vector_from_another_round_or_context_is_not_added(holder, peer):
    blob = peer.encrypt(np.ones(4), ROUND)
    with pytest.raises(
        CKKSError, match=rf"ciphertext 1 was loaded for round {ROUND}.* not round {ROUND + 1}"
    ):
        peer.sum([peer.encrypt(np.ones(4), ROUND + 1), peer.load(blob, ROUND)], ROUND + 1)
    other = CKKSKeyHolder().public
    with pytest.raises(CKKSError, match="ciphertext 0 was loaded for round .* under context"):
        peer.sum([other.load(other.encrypt(np.ones(4), ROUND), ROUND)], ROUND)


def test_key_holder_adds_its_own_update_in_the_clear(holder, peer):
    xs = _updates(3, 10_000, seed=21)
    samples = [40, 90, 25]  # the last one is the key holder's own: never encrypted
    blobs = [
        peer.encrypt_weighted(x, float(n), ROUND) for x, n in zip(xs[:2], samples[:2], strict=False)
    ]
    mean = holder.decrypt_weighted_mean(
        peer.sum(blobs, ROUND), ROUND, expected_weight=130.0, own=(xs[2], float(samples[2]))
    )
    ref = sum(n * x for n, x in zip(samples, xs, strict=False)) / sum(
        samples
    )  # FedAvg over all three, float64
    assert mean.summands == 2 and mean.total_weight == pytest.approx(155.0, rel=1e-9)
    assert _rel_err(mean.mean, ref) < 1e-6
    # one other update plus its own is a sum of two: decrypted; one alone is not
    one = peer.sum(blobs[:1], ROUND)
    assert holder.decrypt_weighted_mean(one, ROUND, own=(xs[2], 25.0)).summands == 1
    with pytest.raises(CKKSError, match="refusing a sum of 1 update"):
        holder.decrypt_weighted_mean(one, ROUND)
    with pytest.raises(
        CKKSError, match=r"refusing a sum of 1 update\(s\) plus its own; .* at least 3"
    ):
        holder.decrypt_weighted_mean(one, ROUND, min_summands=3, own=(xs[2], 25.0))
    with pytest.raises(CKKSError, match="own delta has 9999 values, the sum 10000"):
        holder.decrypt_weighted_mean(one, ROUND, own=(xs[2][1:], 25.0))
    with pytest.raises(CKKSError, match="own weight 0.0"):
        holder.decrypt_weighted_mean(one, ROUND, own=(xs[2], 0.0))
