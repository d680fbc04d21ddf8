"""Where a study's independent campaigns run: in this process, or as Ray tasks.

A study (``scripts/bench_simulate.py``'s sizes and committees, a set of seeds) is a list of
campaigns that share nothing: each builds its own chain and its own members. ``local`` runs
them one after the other here. ``ray`` hands each to Ray (Moritz et al., "Ray: A Distributed
Framework for Emerging AI Applications", OSDI 2018), the engine behind Flower's simulation, as
one ``ray.remote`` task: a local Ray started for the study by default, or the cluster at
``address`` (``ray://host:10001`` or ``auto``). Ray schedules, places and retries; nothing
here does. Each campaign still runs in one worker process, whose members share its in-memory
transport: Ray spreads campaigns over machines, not one consortium's members.

Ray is an optional extra (``pip install -e '.[scale]'``); without it ``ray`` is refused in one
line. On a cluster every worker must import this package (installed there, or on the path given
to the workers through ``PYTHONPATH``, which a local Ray gets from this process).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["ENGINES", "EngineError", "run_all"]

ENGINES = ("local", "ray")
R = TypeVar("R")


class EngineError(RuntimeError):
    """An engine that cannot run here (one readable line)."""


def run_all(
    fn: Callable[..., R],
    jobs: Sequence[tuple[Any, ...]],
    *,
    engine: str = "local",
    address: str | None = None,
    cpus_per_job: float = 1.0,
    on_result: Callable[[int, R], None] = lambda _i, _r: None,
) -> list[R]:
    """``[fn(*job) for job in jobs]``, in order, run by ``engine``; ``on_result(i, result)``
    is called here as each job ends (a long study can write what it has).

    ``address`` (ray only) joins an existing cluster; None starts a local Ray for this call
    and stops it afterwards. ``cpus_per_job`` is the CPU share Ray reserves per campaign.
    """
    if engine not in ENGINES:
        raise EngineError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "local":
        if address is not None:
            raise EngineError("--ray-address needs --engine ray")
        in_order: list[R] = []
        for i, job in enumerate(jobs):
            in_order.append(fn(*job))
            on_result(i, in_order[-1])
        return in_order
    try:
        import ray
    except ImportError:
        raise EngineError(
            "--engine ray needs Ray, an optional extra: pip install -e '.[scale]'"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        local = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env=local if address is None else None,
        )
    try:
        task = ray.remote(num_cpus=cpus_per_job)(fn)
        pending = {task.remote(*job): i for i, job in enumerate(jobs)}
        results: dict[int, R] = {}
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done)
            results[i] = ray.get(done)
            on_result(i, results[i])
        return [results[i] for i in range(len(jobs))]
    finally:
        if started_here:
            ray.shutdown()
