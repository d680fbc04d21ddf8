"""node.sim.engine: a study's campaigns run here or as Ray tasks, with the same results."""

from __future__ import annotations

import sys

import pytest

from node.consensus.committee import committee_size
from node.sim.engine import EngineError, run_all

# Two tiny campaigns: the default committee for (N, f), whose values docs/committee.md's table
# gives from the hypergeometric tail (N = 64, f = 1: k = 4; N = 256, f = 25: k = 40).
JOBS = [(64, 1), (256, 25)]
EXPECTED = [4, 40]


def test_local_runs_every_job_in_order_and_reports_each_as_it_ends() -> None:
    seen: list[tuple[int, int]] = []
    out = run_all(committee_size, JOBS, on_result=lambda i, r: seen.append((i, r)))
    assert out == EXPECTED
    assert seen == [(0, 4), (1, 40)]


def test_an_unknown_engine_or_an_address_without_ray_is_refused_in_one_line() -> None:
    with pytest.raises(EngineError, match="engine must be one of local, ray, got 'dask'"):
        run_all(committee_size, JOBS, engine="dask")
    with pytest.raises(EngineError, match="--ray-address needs --engine ray"):
        run_all(committee_size, JOBS, address="auto")


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(EngineError) as err:
        run_all(committee_size, JOBS, engine="ray")
    assert str(err.value) == "--engine ray needs Ray, an optional extra: pip install -e '.[scale]'"


@pytest.mark.slow
def test_two_tiny_tasks_on_a_local_ray_give_the_local_results() -> None:
    ray = pytest.importorskip(
        "ray", reason="ray is not installed (optional extra: pip install -e '.[scale]')"
    )
    seen: list[int] = []
    out = run_all(
        committee_size, JOBS, engine="ray", cpus_per_job=0.5, on_result=lambda i, _r: seen.append(i)
    )
    assert out == EXPECTED
    assert sorted(seen) == [0, 1]
    assert not ray.is_initialized()  # the local Ray started for the study is stopped again
