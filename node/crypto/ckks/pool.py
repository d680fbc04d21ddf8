"""CKKS encryption and Gram evaluation in worker processes, beside the event loop, not under its GIL.

TenSEAL's ``sealapi`` calls hold the GIL for their whole duration (measured: two threads
encrypting 1M values each take 2.2x as long as one, on 2 idle cores), so a ``trio.to_thread``
worker lets nothing else in the process run meanwhile. :func:`encrypt_weighted` ships the job
to a worker process instead: the vector and the key holder's *public* export go in, the framed
ciphertext comes out. Only public material crosses the process boundary; the secret key stays
with :class:`~node.crypto.ckks.scheme.CKKSKeyHolder`. :func:`gram` splits a robust round's
encrypted Gram matrix (:class:`~node.crypto.ckks.robust.GramEvaluator`) over the workers: the
ciphertexts and the evaluation keys go in, each worker's share of the pairs comes out, framed here
in the same bytes a single evaluator gives (evaluation is deterministic).

Workers are plain subprocesses (``python -m node.crypto.ckks.pool``), not ``multiprocessing``: a fork
would copy this process's sockets and any lock another thread holds, and ``spawn``/``forkserver``
re-import the caller's ``__main__``. One pool per process, shared by every peer in it (the
in-process benchmark runs several), one worker per usable CPU (at most 4), started on first
use. Jobs and results travel as length-prefixed pickles over the worker's stdin/stdout, between
this process and the children it started. A worker exits when its stdin closes, i.e. with this
process.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
import trio

from node.crypto.ckks.robust import GramEvaluator, frame_gram, split_pairs
from node.crypto.ckks.scheme import CKKSError, CKKSParams, CKKSPublicContext, context_id

__all__ = ["encrypt", "encrypt_weighted", "gram", "warm_up", "workers"]

_LEN = struct.Struct(">Q")
_KEEP_CONTEXTS = 4
_MAX_WORKERS = 4
_ROOT = Path(__file__).resolve().parents[3]


def workers() -> int:
    """Worker processes in the pool: one per CPU this process may use, 1 to ``_MAX_WORKERS``
    (each holds SEAL and numpy, 45-100 MB; a peer encrypts one update per round)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_WORKERS))


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream):
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError("stream closed")
    (size,) = _LEN.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("stream closed mid-message")
    return pickle.loads(data)


# -- the parent side -----------------------------------------------------------------------
class _Worker:
    def __init__(self) -> None:
        path = os.environ.get("PYTHONPATH")
        env = dict(os.environ, PYTHONPATH=str(_ROOT) + (os.pathsep + path if path else ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.crypto.ckks.pool"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_ROOT,
            env=env,
        )
        if self.proc.stdin is None or self.proc.stdout is None:  # both are PIPE above
            raise CKKSError("the CKKS worker process was started without its pipes")
        self.jobs: IO[bytes] = self.proc.stdin
        self.results: IO[bytes] = self.proc.stdout

    def call(self, job: str, *args):
        _send(self.jobs, (job, args))
        ok, value = _receive(self.results)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        try:
            self.jobs.close()  # the worker's read ends: it exits
        except OSError:
            pass


class _Pool:
    def __init__(self, size: int) -> None:
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all = [_Worker() for _ in range(size)]
        for w in self._all:
            self._idle.put(w)
        self._lock = threading.Lock()

    def run(self, job: str, *args):
        """(blocking) Run ``job`` on the next idle worker; a worker found dead is replaced and the
        job tried once more on its replacement."""
        worker = self._idle.get()
        try:
            for attempt in (1, 2):
                try:
                    return worker.call(job, *args)
                except (EOFError, OSError, pickle.UnpicklingError) as exc:
                    worker = self._replace(worker)
                    if attempt == 2:
                        raise CKKSError(f"the CKKS worker process failed twice ({exc})") from None
        finally:
            self._idle.put(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        worker.close()
        fresh = _Worker()
        with self._lock:
            self._all[self._all.index(worker)] = fresh
        return fresh

    def close(self) -> None:
        for w in self._all:
            w.close()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool(workers())
            atexit.register(_pool.close)
        return _pool


def warm_up() -> None:
    """Start the worker processes now (each imports SEAL, which takes a moment), without waiting."""
    _get_pool()


async def encrypt_weighted(
    public: CKKSPublicContext, delta: np.ndarray, weight: float, round: int
) -> bytes:
    """:meth:`CKKSPublicContext.encrypt_weighted` in a worker process: same bytes format, same errors."""
    pool = _get_pool()
    return await trio.to_thread.run_sync(
        pool.run,
        "encrypt_weighted",
        public.params,
        public.export,
        public.max_length,
        np.ascontiguousarray(delta),
        weight,
        round,
    )


async def encrypt(public: CKKSPublicContext, values: np.ndarray, round: int) -> bytes:
    """:meth:`CKKSPublicContext.encrypt` (plain layout) in a worker process."""
    pool = _get_pool()
    return await trio.to_thread.run_sync(
        pool.run,
        "encrypt",
        public.params,
        public.export,
        public.max_length,
        np.ascontiguousarray(values),
        round,
    )


async def gram(
    public: CKKSPublicContext, eval_keys: bytes, blobs: list[bytes], round: int
) -> bytes:
    """:meth:`GramEvaluator.gram <node.crypto.ckks.robust.GramEvaluator.gram>` over the framed
    ciphertexts ``blobs``, its pairs split over the worker processes; the same bytes."""
    pool, shares = _get_pool(), split_pairs(len(blobs), workers())
    results: list[list[bytes]] = [[] for _ in shares]

    async def one(i: int, pairs: list[tuple[int, int]]) -> None:
        used = {k for pair in pairs for k in pair}  # only the updates this share multiplies
        given = [b if k in used else None for k, b in enumerate(blobs)]
        results[i] = await trio.to_thread.run_sync(
            pool.run,
            "gram_pairs",
            public.params,
            public.export,
            public.max_length,
            eval_keys,
            given,
            pairs,
            round,
        )

    async with trio.open_nursery() as nursery:
        for i, pairs in enumerate(shares):
            nursery.start_soon(one, i, pairs)
    return frame_gram(round, public.context_id, len(blobs), [c for share in results for c in share])


# -- the worker side -----------------------------------------------------------------------
_contexts: OrderedDict[bytes, CKKSPublicContext] = OrderedDict()
_evaluators: OrderedDict[bytes, GramEvaluator] = OrderedDict()


def _context(params: CKKSParams, export: bytes, max_length: int) -> CKKSPublicContext:
    """The loaded public context for ``export``, from the cache when seen before."""
    cid = context_id(export)
    pub = _contexts.get(cid)
    if pub is None or (pub.params, pub.max_length) != (params, max_length):
        pub = _contexts[cid] = CKKSPublicContext.from_bytes(export, params, max_length=max_length)
        while len(_contexts) > _KEEP_CONTEXTS:
            _contexts.popitem(last=False)
    _contexts.move_to_end(cid)
    return pub


def _encrypt_weighted(
    params: CKKSParams, export: bytes, max_length: int, delta: np.ndarray, weight: float, rnd: int
) -> bytes:
    return _context(params, export, max_length).encrypt_weighted(delta, weight, rnd)


def _encrypt(
    params: CKKSParams, export: bytes, max_length: int, values: np.ndarray, rnd: int
) -> bytes:
    return _context(params, export, max_length).encrypt(values, rnd)


def _gram_pairs(
    params: CKKSParams,
    export: bytes,
    max_length: int,
    eval_keys: bytes,
    blobs: list[bytes | None],
    pairs: list[tuple[int, int]],
    rnd: int,
) -> list[bytes]:
    pub = _context(params, export, max_length)
    key = context_id(export) + hashlib.sha256(eval_keys).digest()
    evaluator = _evaluators.get(key)
    if evaluator is None:  # loading 13 Galois keys: once per round and worker
        evaluator = _evaluators[key] = GramEvaluator(pub, eval_keys)
        while len(_evaluators) > _KEEP_CONTEXTS:
            _evaluators.popitem(last=False)
    _evaluators.move_to_end(key)
    vectors = [None if b is None else pub.load(b, rnd) for b in blobs]
    return evaluator.pairs(vectors, pairs, rnd)


_JOBS: dict[str, Callable[..., object]] = {
    "encrypt_weighted": _encrypt_weighted,
    "encrypt": _encrypt,
    "gram_pairs": _gram_pairs,
}


def _serve() -> None:
    jobs, out = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the result stream
    while True:
        try:
            name, args = _receive(jobs)
        except EOFError:
            return
        try:
            result = (True, _JOBS[name](*args))
        except Exception as exc:  # sent back and raised in the parent
            result = (
                False,
                exc if isinstance(exc, CKKSError) else CKKSError(f"{type(exc).__name__}: {exc}"),
            )
        _send(out, result)


if __name__ == "__main__":
    _serve()
