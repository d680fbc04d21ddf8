"""CKKS encryption in worker processes (node/crypto/ckks/pool.py): the ciphertexts decrypt to the float64
numpy reference, errors come back as the same CKKSError, and a dead worker is replaced; the
Gram matrix split over the workers is the single evaluator's, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from node.crypto.ckks import pool as ckks_pool
from node.crypto.ckks.robust import ROBUST_PARAMS, GramEvaluator, RobustKeyHolder, split_pairs
from node.crypto.ckks.scheme import CKKSError, CKKSKeyHolder, CKKSParams, CKKSPublicContext

ROUND = 3


def _encrypt_one(*args):
    return trio.run(ckks_pool.encrypt_weighted, *args)


def _encrypt_all(jobs):
    async def main():
        out = [None] * len(jobs)

        async def one(i, args):
            out[i] = await ckks_pool.encrypt_weighted(*args)

        async with trio.open_nursery() as nursery:
            for i, args in enumerate(jobs):
                nursery.start_soon(one, i, args)
        return out

    return trio.run(main)


def test_pool_ciphertexts_decrypt_to_the_weighted_mean():
    rng = np.random.default_rng(0)
    holders = [CKKSKeyHolder(), CKKSKeyHolder()]  # two rounds' contexts: each worker caches both
    deltas = [rng.normal(0, 0.01, 20_000) for _ in range(6)]
    weights = [30.0, 7.0, 120.0, 55.0, 1.0, 64.0]
    jobs = [
        (holders[i % 2].public, d, w, ROUND + i % 2)
        for i, (d, w) in enumerate(zip(deltas, weights, strict=False))
    ]
    blobs = _encrypt_all(jobs)  # more jobs than workers: they queue
    for k, holder in enumerate(holders):
        mine = [i for i in range(len(jobs)) if i % 2 == k]
        mean = holder.decrypt_weighted_mean(
            holder.public.sum([blobs[i] for i in mine], ROUND + k),
            ROUND + k,
            expected_weight=sum(weights[i] for i in mine),
        )
        ref = sum(weights[i] * deltas[i] for i in mine) / sum(
            weights[i] for i in mine
        )  # FedAvg in float64
        assert np.linalg.norm(mean.mean - ref) / np.linalg.norm(ref) < 1e-6
        assert holder.public.check(blobs[mine[0]], ROUND + k).context_id == holder.context_id


def test_pool_errors_are_the_same_ckks_errors():
    pub = CKKSKeyHolder().public
    with pytest.raises(CKKSError, match="weight 0.0: must be a positive finite number"):
        _encrypt_one(pub, np.ones(4), 0.0, ROUND)
    with pytest.raises(CKKSError, match="exceeds the bound"):
        _encrypt_one(pub, np.ones(4), 2 * CKKSParams().value_bound, ROUND)
    with pytest.raises(CKKSError, match="round -1"):
        _encrypt_one(pub, np.ones(4), 1.0, -1)


def test_a_dead_worker_is_replaced():
    holder = CKKSKeyHolder()
    pool = ckks_pool._get_pool()
    assert len(pool._all) == ckks_pool.workers()
    dead = list(pool._all)
    for w in dead:
        w.proc.kill()
        w.proc.wait()
    blobs = _encrypt_all([(holder.public, np.full(5, 0.5), 2.0, ROUND)] * (2 * len(dead)))
    mean = holder.decrypt_weighted_mean(
        holder.public.sum(blobs, ROUND), ROUND, expected_weight=4.0 * len(dead)
    )
    assert np.allclose(mean.mean, 0.5, atol=1e-6)
    assert not set(pool._all) & set(dead) and len(pool._all) == len(dead)


def test_module_exports():
    assert sorted(ckks_pool.__all__) == [
        "encrypt",
        "encrypt_weighted",
        "gram",
        "warm_up",
        "workers",
    ]


def test_gram_is_the_same_bytes_in_any_evaluator_and_process():
    """The determinism robust ckks's verifiers rest on: two evaluators built apart from the exported
    keys, and the worker processes (each loading the keys, each computing its own share of the
    pairs), give the same Gram blob to the bit; and it decrypts to numpy's inner products."""
    holder = RobustKeyHolder()
    rng = np.random.default_rng(5)
    updates = [rng.normal(0, 0.05, 9_000) for _ in range(5)]  # 2 chunks, the last one partial
    blobs = [holder.public.encrypt(u, ROUND) for u in updates]

    def in_thread() -> bytes:
        public = CKKSPublicContext.from_bytes(holder.public_context_bytes, ROBUST_PARAMS)
        evaluator = GramEvaluator(public, holder.evaluation_keys_bytes)
        return evaluator.gram([public.load(b, ROUND) for b in blobs], ROUND)

    first, second = in_thread(), in_thread()
    pooled = trio.run(ckks_pool.gram, holder.public, holder.evaluation_keys_bytes, blobs, ROUND)
    assert first == second == pooled
    gram = holder.decrypt_gram(pooled, ROUND, len(blobs))
    want = np.stack(updates) @ np.stack(updates).T
    assert np.max(np.abs(gram - want)) <= 1e-7 * np.max(np.abs(want))


def test_pairs_split_over_workers_cover_the_gram_once_in_order():
    for n, parts in [(2, 4), (5, 2), (8, 3), (16, 4)]:
        shares = split_pairs(n, parts)
        flat = [p for share in shares for p in share]
        assert flat == [(a, b) for a in range(n) for b in range(a, n)]
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
