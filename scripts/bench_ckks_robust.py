"""Benchmark: a robust ckks round (Multi-Krum over encrypted inner products) against a plain ckks
round (FedAvg sum) and against Multi-Krum in the clear (what every sealed-mode member computes).

    .venv/bin/python scripts/bench_ckks_robust.py            # 5, 8, 16 members x 100k and 1M values
    .venv/bin/python scripts/bench_ckks_robust.py --quick    # 5 and 8 members x 100k; prints only

The cryptographic work of one round, in one process, one thread (SEAL runs each call on one
core), process-CPU seconds (robust to a shared machine; wall times are reported too):

- plain ckks (:func:`bench_ckks.measure`): fresh keys, each member encrypts ``[w delta, w]``, the
  aggregator parses and sums the ciphertexts, the key holder decrypts the weighted mean;
- robust ckks (:mod:`node.crypto.ckks.robust`): fresh keys and evaluation keys, each member encrypts
  its update, the aggregator parses them and computes every pair's encrypted inner product,
  the key holder decrypts the n(n+1)/2 scalars, Multi-Krum selects (f = 1) from them, the
  aggregator sums the accepted ciphertexts and the key holder decrypts that sum;
- sealed Multi-Krum: the rule on the n clear updates (``outcome("multi-krum", ...)``);
- the Gram matrix again on the CKKS worker processes (:func:`node.crypto.ckks.pool.gram`, pairs
  split over one worker per usable CPU, at most 4): wall seconds, and whether it is the same bytes.

"round" is the critical path: the members encrypt in parallel, so one member's encryption
counts once, then the aggregator's and the key holder's steps in sequence. Network transfer
and the chain are not included (bench_protection.py measures whole rounds between peers).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import trio  # noqa: E402
from bench_ckks import measure as measure_plain  # noqa: E402
from bench_ckks import timed, write_results  # noqa: E402

from node.consensus.robust_audit import select_from_gram  # noqa: E402
from node.consensus.rules import make_rule, outcome  # noqa: E402
from node.crypto.ckks import pool as ckks_pool  # noqa: E402
from node.crypto.ckks.robust import ROBUST_PARAMS, GramEvaluator, RobustKeyHolder  # noqa: E402
from node.crypto.ckks.scheme import CKKSPublicContext  # noqa: E402

RULE, F = "multi-krum", 1  # Krum needs n >= 2f + 3: 5 members, not 4, is the smallest grid point


def _cpu(t: dict) -> float:
    return t["cpu"]


def measure_robust(length: int, members: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    deltas = rng.normal(0.0, 1e-2, (members, length))
    deltas[-1] *= -10.0  # one poisoner: the selection must drop it, as in the clear
    holder, keygen = timed(RobustKeyHolder)
    public, load = timed(CKKSPublicContext.from_bytes, holder.public_context_bytes, ROBUST_PARAMS)
    evaluator, load_keys = timed(GramEvaluator, public, holder.evaluation_keys_bytes)
    blobs, enc = [], []
    for d in deltas:
        blob, t = timed(public.encrypt, d, 1)
        blobs.append(blob)
        enc.append(t)
    vectors, parse = timed(lambda: [public.load(b, 1) for b in blobs])
    gram_blob, gram = timed(evaluator.gram, vectors, 1)
    # the same Gram matrix on the CKKS worker processes (what a robust ckks evaluator runs): wall
    # seconds, these being spent in other processes; fresh keys each round, so the workers load them
    pooled, gram_pool = timed(
        trio.run, ckks_pool.gram, public, holder.evaluation_keys_bytes, blobs, 1
    )
    g, dec_gram = timed(holder.decrypt_gram, gram_blob, 1, members)
    chosen, select = timed(lambda: select_from_gram(RULE, g, f=F))
    total, summed = timed(public.sum, [vectors[i] for i in chosen.accepted], 1)
    out, dec_sum = timed(holder.decrypt_sum, total, 1)
    clear = make_rule(RULE, F).select(deltas)
    ref_gram = deltas @ deltas.T
    ref_mean = deltas[clear].mean(axis=0)
    seconds = {
        "keygen_with_evaluation_keys": keygen,
        "load_public_context": load,
        "load_evaluation_keys": load_keys,
        "encrypt_per_member": {k: float(np.mean([e[k] for e in enc])) for k in ("wall", "cpu")},
        "parse_all": parse,
        "gram": gram,
        "decrypt_gram": dec_gram,
        "select": select,
        "sum_accepted": summed,
        "decrypt_sum": dec_sum,
    }
    steps = (
        "keygen_with_evaluation_keys",
        "load_evaluation_keys",
        "encrypt_per_member",
        "parse_all",
        "gram",
        "decrypt_gram",
        "select",
        "sum_accepted",
        "decrypt_sum",
    )
    return {
        "public_context_bytes": len(holder.public_context_bytes),
        "evaluation_keys_bytes": len(holder.evaluation_keys_bytes),
        "ciphertext_bytes_per_member": len(blobs[0]),
        "bytes_per_value": len(blobs[0]) / length,
        "gram_bytes": len(gram_blob),
        "scalars_bytes": 8 * members * members,
        "sum_bytes": len(total),
        "seconds": seconds,
        "round_cpu": sum(_cpu(seconds[s]) for s in steps),
        "selection_equals_clear": chosen.accepted == clear,
        "gram_workers": ckks_pool.workers(),
        "gram_pool_wall": gram_pool["wall"],
        "gram_pool_equals_gram": pooled == gram_blob,
        "gram_rel_error": float(np.max(np.abs(g - ref_gram)) / np.max(np.abs(ref_gram))),
        "mean_rel_error": float(
            np.linalg.norm(out.values / len(chosen.accepted) - ref_mean) / np.linalg.norm(ref_mean)
        ),
    }


def measure_all(length: int, members: int) -> dict:
    plain = measure_plain(length, members)
    t = plain["seconds"]
    plain_round = sum(
        _cpu(t[s]) for s in ("keygen", "load_public_context", "encrypt_per_peer", "sum", "decrypt")
    )
    deltas = np.random.default_rng(1).normal(0.0, 1e-2, (members, length)).astype(np.float32)
    _, sealed = timed(lambda: outcome(RULE, deltas, f=F))
    robust = measure_robust(length, members)
    return {
        "length": length,
        "members": members,
        "params": {
            "poly_modulus_degree": ROBUST_PARAMS.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(ROBUST_PARAMS.coeff_mod_bit_sizes),
            "scale_bits": ROBUST_PARAMS.scale_bits,
        },
        "plain_ckks": {
            "round_cpu": plain_round,
            "ciphertext_bytes_per_member": plain["ciphertext_bytes_per_peer"],
            "public_context_bytes": plain["public_context_bytes"],
            "seconds": t,
        },
        "sealed_multi_krum": {"rule_cpu": sealed["cpu"], "rule_wall": sealed["wall"]},
        "robust_ckks": robust,
        "robust_over_plain": robust["round_cpu"] / plain_round,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="4 and 8 members x 100k values; print only"
    )
    ap.add_argument("--out", default="benchmarks/results/bench_ckks_robust.json")
    args = ap.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    grid = [(d, n) for d in sizes for n in ((5, 8) if args.quick else (5, 8, 16))]
    ckks_pool.warm_up()  # a node starts its CKKS workers once, not per round
    rows = []
    for length, members in grid:
        r = measure_all(length, members)
        rows.append(r)
        rb, s = r["robust_ckks"], r["robust_ckks"]["seconds"]
        print(
            f"{length:>9,} values x {members:>2}: plain ckks {r['plain_ckks']['round_cpu']:.2f} s, robust "
            f"{rb['round_cpu']:.2f} s ({r['robust_over_plain']:.1f}x; gram {s['gram']['cpu']:.2f}, encrypt "
            f"{s['encrypt_per_member']['cpu']:.2f}/member; gram on {rb['gram_workers']} workers "
            f"{rb['gram_pool_wall']:.2f} s wall vs {s['gram']['wall']:.2f} s in one thread, same "
            f"bytes: {rb['gram_pool_equals_gram']}), sealed Multi-Krum "
            f"{r['sealed_multi_krum']['rule_cpu']:.3f} s; selection = clear: {rb['selection_equals_clear']}; "
            f"gram err {rb['gram_rel_error']:.1e}; "
            f"keys {rb['evaluation_keys_bytes'] / 1e6:.1f} MB, gram {rb['gram_bytes'] / 1e6:.1f} MB",
            flush=True,
        )
    if not args.quick:
        write_results(
            args.out,
            "python scripts/bench_ckks_robust.py",
            rows,
            "one thread on a shared machine; process-CPU seconds of the round's critical path "
            "(members encrypt in parallel); no network, no chain",
        )


if __name__ == "__main__":
    main()
