"""Stage clocks: inclusive and exclusive wall time, hand-worked on a fake clock."""

import trio

import node.stagetimes as st


class FakeTime:
    now = 0.0

    def perf_counter(self):
        return self.now


class Peer:
    def __init__(self, t):
        self.t = t

    def chain(self):
        self.t.now += 2.0  # a 2 s chain call

    async def stage(self):
        self.t.now += 1.0
        self.chain()
        await trio.lowlevel.checkpoint()
        self.t.now += 0.5


def run(monkeypatch, exclusive):
    fake = FakeTime()
    monkeypatch.setattr(st, "time", fake)
    peer, clock = Peer(fake), st.StageClock(exclusive=exclusive)
    st.time_methods(peer, ("stage", "chain", "absent"), clock)
    trio.run(peer.stage)
    peer.chain()
    return clock


def test_inclusive_counts_nested_calls_twice(monkeypatch):
    clock = run(monkeypatch, exclusive=False)
    assert dict(clock.seconds) == {"chain": 4.0, "stage": 3.5}
    assert dict(clock.calls) == {"chain": 2, "stage": 1}


def test_exclusive_charges_nested_time_to_the_inner_name(monkeypatch):
    clock = run(monkeypatch, exclusive=True)
    assert dict(clock.seconds) == {"chain": 4.0, "stage": 1.5}
    assert clock.reset() == {"chain": 4.0, "stage": 1.5} and not clock.seconds


def test_public_names():
    assert sorted(st.__all__) == ["StageClock", "time_methods"]
