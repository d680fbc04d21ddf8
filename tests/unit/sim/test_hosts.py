"""node.sim.hosts: the open files N real hosts in one process need, raised or refused."""

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
