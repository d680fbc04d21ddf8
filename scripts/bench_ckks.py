"""Benchmark: cost of the CKKS mode's building block (node/crypto/ckks/scheme.py) on this machine.

    .venv/bin/python scripts/bench_ckks.py            # 100k and 1M values, 4 and 16 peers
    .venv/bin/python scripts/bench_ckks.py --quick    # 100k values, 4 peers; prints, writes nothing

For each (length, peers): a fresh key holder; every peer loads the exported public context and
encrypts its own vector (``encrypt_weighted``, weight = a sample count); one aggregator sums the
ciphertexts; the key holder decrypts the weighted mean. Reported: ciphertext bytes per value and
relative to the raw float32 update, wall and process-CPU seconds per step, and the relative
error against numpy float64. One process, one thread (SEAL runs each call on one core).
Other benchmarks can call :func:`measure` directly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from node.crypto.ckks.scheme import CKKSKeyHolder, CKKSParams, CKKSPublicContext  # noqa: E402


def timed(fn, *args):
    """(result, {"wall": s, "cpu": s}): CPU time of this process is robust on a shared machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}


def measure(length: int, peers: int, params: CKKSParams | None = None, seed: int = 0) -> dict:
    """Encrypt ``peers`` vectors of ``length`` values, sum them, decrypt: bytes, seconds, error."""
    params = params or CKKSParams()
    rng = np.random.default_rng(seed)
    deltas = [rng.normal(0.0, 1e-2, length) for _ in range(peers)]
    weights = [float(w) for w in rng.integers(50, 500, peers)]
    holder, keygen = timed(CKKSKeyHolder, params)
    public, load = timed(CKKSPublicContext.from_bytes, holder.public_context_bytes, params)
    blobs, enc = [], []
    for d, w in zip(deltas, weights, strict=False):
        blob, t = timed(public.encrypt_weighted, d, w, 1)
        blobs.append(blob)
        enc.append(t)
    total, summed = timed(public.sum, blobs, 1)
    mean, dec = timed(holder.decrypt_weighted_mean, total, 1)
    ref, plain = timed(lambda: np.average(np.stack(deltas), axis=0, weights=weights))
    blob_bytes = len(blobs[0])
    return {
        "length": length,
        "peers": peers,
        "params": {
            "poly_modulus_degree": params.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
            "scale_bits": params.scale_bits,
        },
        "public_context_bytes": len(holder.public_context_bytes),
        "ciphertext_bytes_per_peer": blob_bytes,
        "bytes_per_value": blob_bytes / length,
        "ratio_to_float32": blob_bytes / (4 * length),
        "sum_bytes": len(total),
        "seconds": {
            "keygen": keygen,
            "load_public_context": load,
            "encrypt_per_peer": {k: float(np.mean([e[k] for e in enc])) for k in ("wall", "cpu")},
            "sum": summed,
            "decrypt": dec,
            "plaintext_weighted_mean": plain,
        },
        "rel_error": float(np.linalg.norm(mean.mean - ref) / np.linalg.norm(ref)),
        "max_abs_error": float(np.max(np.abs(mean.mean - ref))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100k values, 4 peers; print only")
    ap.add_argument("--out", default="benchmarks/results/bench_ckks.json")
    args = ap.parse_args()
    grid = (
        [(100_000, 4)]
        if args.quick
        else [(100_000, 4), (100_000, 16), (1_000_000, 4), (1_000_000, 16)]
    )
    rows = []
    for length, peers in grid:
        r = measure(length, peers)
        rows.append(r)
        t = r["seconds"]
        print(
            f"{length:>9,} values x {peers:>2} peers: {r['bytes_per_value']:.2f} B/value "
            f"({r['ratio_to_float32']:.2f}x float32); CPU s: encrypt {t['encrypt_per_peer']['cpu']:.3f}/peer, "
            f"sum {t['sum']['cpu']:.3f}, decrypt {t['decrypt']['cpu']:.3f} "
            f"(wall {t['encrypt_per_peer']['wall']:.3f}, {t['sum']['wall']:.3f}, {t['decrypt']['wall']:.3f}); "
            f"rel err {r['rel_error']:.1e}",
            flush=True,
        )
    if not args.quick:
        write_results(
            args.out,
            "python scripts/bench_ckks.py",
            rows,
            "one thread; wall times are upper bounds when the machine is shared, CPU times are not",
        )


def write_results(path: str | Path, command: str, rows: list[dict], note: str) -> None:
    """``{"meta": {command, machine, python, note}, "results": rows}`` as JSON at ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "note": note,
    }
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
