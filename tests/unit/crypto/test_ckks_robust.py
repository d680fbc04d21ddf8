"""Encrypted norms and inner products (node/crypto/ckks/robust.py) against float64 numpy, the evaluation
keys' content, and the key holder's refusal to open anything but rotate-and-sum scalars."""

from __future__ import annotations

import numpy as np
import pytest
import tenseal.sealapi as seal

from node.consensus.robust_audit import (
    FACTOR_BITS,
    check_sum,
    distances_from_gram,
    factor_integers,
    select_from_gram,
)
from node.consensus.rules import make_rule
from node.crypto.ckks.params import MAX_COEFF_BITS_128
from node.crypto.ckks.robust import (
    ROBUST_PARAMS,
    GramEvaluator,
    RobustKeyHolder,
    encrypted_round,
    frame_gram,
    galois_elements,
    load_evaluation_keys,
    scalar_bound,
)
from node.crypto.ckks.scheme import CKKSError, CKKSKeyHolder, CKKSParams, CKKSPublicContext
from node.crypto.ckks.seal import SealIO, seal_context

ROUND = 11
IO = SealIO()  # bytes of SEAL objects (the format node.crypto.ckks.scheme uses)
# Relative error bound of a decrypted inner product, against the largest |<a, b>|: fresh noise
# ~2^-40 relative per value, grown by the product, the rescale and 13 key switches; measured
# 1e-10 .. 1e-9, bounded here at 1e-7 (a wrong slot sum or a missed half is off by O(1)).
REL_ERR = 1e-7


@pytest.fixture(scope="module")
def holder() -> RobustKeyHolder:
    return RobustKeyHolder()


@pytest.fixture(scope="module")
def evaluator(holder: RobustKeyHolder) -> GramEvaluator:
    # the aggregator sees the exported bytes only
    public = CKKSPublicContext.from_bytes(holder.public_context_bytes, ROBUST_PARAMS)
    return GramEvaluator(public, holder.evaluation_keys_bytes)


def _updates(n: int, d: int, seed: int) -> np.ndarray:
    """Update-like rows of different scales; d spans several chunks and a partial last one."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.standard_t(3, d) * 10.0 ** rng.uniform(-3, -1) for _ in range(n)])


def test_parameters_reach_128_bits_with_one_multiplication():
    bits = ROBUST_PARAMS.coeff_mod_bit_sizes
    assert ROBUST_PARAMS.poly_modulus_degree == 8192 and sum(bits) <= MAX_COEFF_BITS_128[8192]
    assert seal.CoeffModulus.MaxBitCount(8192, seal.SEC_LEVEL_TYPE.TC128) == 218
    # 60-bit prime left, scale 2^40: slots hold 2<a, b>, signed, readable below 2^19; half of that
    assert scalar_bound(ROBUST_PARAMS) == 2.0**17
    with pytest.raises(CKKSError, match="two data primes"):
        RobustKeyHolder(CKKSParams())  # the sum-only default has no level to spend


def test_gram_matches_numpy(holder, evaluator):
    x = _updates(4, 2 * 8192 + 300, seed=1)
    blobs = [evaluator.public.load(evaluator.public.encrypt(v, ROUND), ROUND) for v in x]
    gram = holder.decrypt_gram(evaluator.gram(blobs, ROUND), ROUND, members=4)
    ref = x @ x.T  # float64 BLAS: an independent reference
    assert np.max(np.abs(gram - ref)) <= REL_ERR * np.max(np.abs(ref))
    # distances from the Gram matrix against direct differences
    direct = np.array([[np.sum((a - b) ** 2) for b in x] for a in x])
    assert np.max(np.abs(distances_from_gram(gram) - direct)) <= 4 * REL_ERR * np.max(np.abs(ref))


def test_inner_product_reads_both_halves_of_each_slot(holder, evaluator):
    # values only in the imaginary halves (indices 4096..8191): a real-part-only product reads 0
    a, b = np.zeros(8192), np.zeros(8192)
    a[5000], b[5000], a[7], b[7] = 3.0, 2.0, 1.5, -4.0
    blobs = [evaluator.public.load(evaluator.public.encrypt(v, ROUND), ROUND) for v in (a, b)]
    gram = holder.decrypt_gram(evaluator.gram(blobs, ROUND), ROUND, members=2)
    assert gram == pytest.approx(np.array([[11.25, 0.0], [0.0, 20.0]]), abs=1e-5)


def test_evaluation_keys_hold_no_secret_key(holder, tmp_path):
    keys = holder.evaluation_keys_bytes
    n, k = ROBUST_PARAMS.poly_modulus_degree, len(ROBUST_PARAMS.coeff_mod_bit_sizes)
    path = tmp_path / "sk"
    holder._secret_key.save(str(path))
    coeffs = path.read_bytes()[-n * k * 8 :]  # SEAL compresses the file: this is all of it
    for start in range(0, len(coeffs) - 32, len(coeffs) // 16):  # 16 full 32-byte pieces
        assert coeffs[start : start + 32] not in keys
        assert coeffs[start : start + 32] not in holder.public_context_bytes
    # the Galois part carries every rotation and the conjugation, and no SecretKey loads from it
    public = CKKSPublicContext.from_bytes(holder.public_context_bytes, ROBUST_PARAMS)
    relin, galois = load_evaluation_keys(keys, public)
    assert all(galois.has_key(e) for e in galois_elements(ROBUST_PARAMS)) and galois.size() == 13
    path.write_bytes(keys[41:])
    with pytest.raises((ValueError, RuntimeError)):
        seal.SecretKey().load(seal_context(ROBUST_PARAMS), str(path))


def test_evaluation_keys_are_bound_to_their_context(holder):
    other = RobustKeyHolder()
    with pytest.raises(CKKSError, match="made for context"):
        load_evaluation_keys(other.evaluation_keys_bytes, holder.public)
    with pytest.raises(CKKSError, match="not a medmesh"):
        load_evaluation_keys(b"MMCP" + bytes(100), holder.public)


def test_key_holder_refuses_to_open_a_vector(holder, evaluator):
    # a cheating aggregator frames one member's ciphertext, switched down to the scalars' level,
    # as a "pair": the key holder would read the update, so it refuses (slots differ)
    x = _updates(2, 8192, seed=2)
    blobs = [evaluator.public.load(evaluator.public.encrypt(v, ROUND), ROUND) for v in x]
    honest = evaluator.gram(blobs, ROUND)
    ev, ct = seal.Evaluator(seal_context(ROBUST_PARAMS)), seal.Ciphertext()
    ev.mod_switch_to_next(blobs[0].ciphertexts[0], ct)
    chunks = [IO.dump(ct)] * 3
    with pytest.raises(CKKSError, match="one scalar in every slot"):
        holder.decrypt_gram(frame_gram(ROUND, holder.context_id, 2, chunks), ROUND, members=2)
    with pytest.raises(CKKSError, match="not a relinearized ciphertext at the last level"):
        holder.decrypt_gram(
            frame_gram(ROUND, holder.context_id, 2, [IO.dump(blobs[0].ciphertexts[0])] * 3),
            ROUND,
            members=2,
        )
    with pytest.raises(CKKSError, match="expected round"):
        holder.decrypt_gram(honest, ROUND + 1, members=2)
    with pytest.raises(CKKSError, match="digest mismatch"):
        holder.decrypt_gram(honest[:-5] + bytes(5), ROUND, members=2)


def test_gram_refuses_sums_and_foreign_rounds(evaluator):
    pub = evaluator.public
    a = pub.load(pub.encrypt(np.ones(10), ROUND), ROUND)
    summed = pub.load(pub.sum([pub.encrypt(np.ones(10), ROUND)] * 2, ROUND), ROUND)
    with pytest.raises(CKKSError, match="one member's plain vector"):
        evaluator.gram([a, summed], ROUND)
    with pytest.raises(CKKSError, match="need 2"):
        evaluator.gram([a], ROUND)


def test_plain_key_holder_is_unchanged():
    # the sum-only mode keeps its one-prime default and publishes no evaluation keys
    assert not hasattr(CKKSKeyHolder(), "evaluation_keys_bytes")


def test_norm_bounding_scales_ciphertexts_by_public_factors(holder, evaluator):
    # Sun et al. 2019 over ciphertexts: the factors come from the decrypted norms alone, the
    # aggregator multiplies each ciphertext by round(2^20 s), the key holder decrypts the sum
    x = _updates(5, 9000, seed=3)
    x[4] *= 50.0  # an oversized update: clipped to the median norm
    blobs = [evaluator.public.load(evaluator.public.encrypt(v, ROUND), ROUND) for v in x]
    gram = holder.decrypt_gram(evaluator.gram(blobs, ROUND), ROUND, members=5)
    chosen = select_from_gram("multi-krum", gram, f=1, clip=True)
    factors = factor_integers(chosen.scales)
    norms = np.linalg.norm(x, axis=1)
    assert factors == pytest.approx(
        np.round(2**20 * np.minimum(1, np.median(norms) / norms)), abs=1
    )
    total = evaluator.scaled_sum(
        [blobs[i] for i in chosen.accepted], factors[chosen.accepted], ROUND
    )
    got = holder.decrypt_sum(total, ROUND).values / 2.0**FACTOR_BITS
    want = (x[chosen.accepted] * (factors[chosen.accepted, None] / 2.0**20)).sum(axis=0)
    assert np.linalg.norm(got - want) <= 1e-6 * np.linalg.norm(want)
    check_sum(got, gram, chosen)
    with pytest.raises(CKKSError, match="one factor in 0..2\\^20"):
        evaluator.scaled_sum(blobs[:2], [1 << 21, 1], ROUND)


def test_encrypted_round_matches_the_clear_rule():
    # the benchmarks' one-process robust ckks round: same accepted rows, same mean as sealed's rule
    x = _updates(7, 500, seed=4)
    x[2] *= -30.0
    for rule in ("krum", "multi-krum"):
        clear = make_rule(rule, 1).aggregate(x).params.astype(np.float64)
        got = encrypted_round(rule, x, f=1, round=ROUND).astype(np.float64)
        assert np.linalg.norm(got - clear) <= 1e-6 * np.linalg.norm(clear)
