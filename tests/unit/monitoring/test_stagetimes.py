"""Stage clocks: inclusive and exclusive wall time, hand-worked on a fake clock; an unknown
stage name fails instead of vanishing from the timings."""

import pytest
import trio

import node.monitoring.stagetimes as st


class FakeTime:
    now = 0.0

    def perf_counter(self):
        return self.now


def run(monkeypatch, exclusive):
    fake = FakeTime()
    monkeypatch.setattr(st, "time", fake)
    clock, totals, seen = st.StageClock(), st.StageTotals(exclusive=exclusive), []
    clock.subscribe(totals)
    clock.subscribe(lambda e: seen.append((e.name, e.seconds)))

    def chain():
        with clock.stage("chain.call"):
            fake.now += 2.0  # a 2 s chain call

    async def finalize():
        with clock.stage("finalize"):
            fake.now += 1.0
            chain()
            await trio.lowlevel.checkpoint()
            fake.now += 0.5

    trio.run(finalize)
    chain()
    return totals, seen


def test_inclusive_counts_nested_calls_twice(monkeypatch):
    totals, seen = run(monkeypatch, exclusive=False)
    assert dict(totals.seconds) == {"chain.call": 4.0, "finalize": 3.5}
    assert dict(totals.calls) == {"chain.call": 2, "finalize": 1}
    # listeners hear each start (seconds None) and each end, nested ones inside
    assert seen == [
        ("finalize", None),
        ("chain.call", None),
        ("chain.call", 2.0),
        ("finalize", 3.5),
        ("chain.call", None),
        ("chain.call", 2.0),
    ]


def test_exclusive_charges_nested_time_to_the_inner_name(monkeypatch):
    totals, _ = run(monkeypatch, exclusive=True)
    assert dict(totals.seconds) == {"chain.call": 4.0, "finalize": 1.5}
    assert totals.reset() == {"chain.call": 4.0, "finalize": 1.5} and not totals.seconds


def test_a_renamed_stage_fails_loudly():
    clock = st.StageClock()
    with pytest.raises(KeyError, match="unknown stage '_train'"):
        with clock.stage("_train"):
            pass
    assert len(set(st.STAGES + st.PHASES)) == len(st.STAGES) + len(st.PHASES)


def test_the_pipeline_marks_every_stage_in_order():
    """Every name of STAGES appears in the round pipeline as ``clock.stage("name")``, in the
    order of STAGES: a stage renamed in one place and not the other fails here. The pipeline
    runs this member's part (:class:`~node.peer.contribute.Contribution`) first, then the rest
    of :class:`~node.peer.pipeline.HospitalPeer`'s stages."""
    import ast
    import inspect
    import textwrap

    from node.peer.contribute import Contribution
    from node.peer.pipeline import HospitalPeer

    def marks(cls: type) -> list[str]:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        calls = sorted(
            (
                node
                for node in ast.walk(tree)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "stage"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ),
            key=lambda n: (n.lineno, n.col_offset),
        )
        return [node.args[0].value for node in calls]

    marked = marks(Contribution) + marks(HospitalPeer)
    assert [m for m in marked if m in st.STAGES] == list(st.STAGES)


def test_public_names():
    assert sorted(st.__all__) == ["PHASES", "STAGES", "StageClock", "StageEvent", "StageTotals"]
