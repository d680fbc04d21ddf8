"""node.sim.hosts: the open files N real hosts in one process need, raised or refused; the
pairs the hosts dial."""

from __future__ import annotations

import resource

import pytest

from node.sim import hosts


def test_the_soft_limit_is_raised_to_two_sockets_per_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 20_000))
    monkeypatch.setattr(resource, "setrlimit", lambda _which, limits: set_to.append(limits))
    hosts.ensure_fds(64)
    # 64 hosts: 2,016 pairs, both ends in this process (4,032), 4 per host, 256 to spare
    assert set_to == [(4_032 + 256 + 256, 20_000)]


def test_past_the_hard_limit_it_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    with pytest.raises(ValueError) as err:
        hosts.ensure_fds(64)
    assert str(err.value) == (
        "--transport libp2p with 64 members needs about 4544 open files; "
        "this process may open 4096 (ulimit -Hn)"
    )


def test_a_limit_already_high_enough_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (20_000, 20_000))
    monkeypatch.setattr(resource, "setrlimit", lambda *_: pytest.fail("no change was needed"))
    hosts.ensure_fds(64)


def _degrees(n: int, plan: list[tuple[int, int]]) -> list[int]:
    count = [0] * n
    for i, j in plan:
        count[i] += 1
        count[j] += 1
    return count


def _connected(n: int, plan: list[tuple[int, int]]) -> bool:
    reach, todo = {0}, [0]
    while todo:
        i = todo.pop()
        for a, b in plan:
            for x, y in ((a, b), (b, a)):
                if x == i and y not in reach:
                    reach.add(y)
                    todo.append(y)
    return len(reach) == n


def test_small_consortia_dial_every_pair_once() -> None:
    for n in (2, 4, hosts.DIAL_DEGREE + 1):
        plan = hosts.dial_plan(n)
        assert sorted(plan) == [(i, j) for i in range(n) for j in range(i)]


@pytest.mark.parametrize("n", [hosts.DIAL_DEGREE + 2, 16, 64, 256])
def test_larger_consortia_dial_a_connected_graph_of_bounded_degree(n: int) -> None:
    plan = hosts.dial_plan(n)
    assert all(j < i for i, j in plan) and len(set(plan)) == len(plan)
    degrees = _degrees(n, plan)
    assert max(degrees) == hosts.DIAL_DEGREE and min(degrees) >= 2
    assert sum(d == hosts.DIAL_DEGREE for d in degrees) >= n - 2  # a few may end one short
    assert len(plan) <= n * hosts.DIAL_DEGREE // 2 < n * (n - 1) // 2
    assert _connected(n, plan)


def test_the_plan_follows_the_seed() -> None:
    assert hosts.dial_plan(64, seed=1) == hosts.dial_plan(64, seed=1) != hosts.dial_plan(64, seed=2)
    with pytest.raises(ValueError):
        hosts.dial_plan(1)
