"""Where a peer's time goes: the pipeline marks its stages on a :class:`StageClock`
(``with clock.stage("train"): ...``) and listeners subscribe to it.

The stage names are fixed here, once: :data:`STAGES` (the round pipeline, in order) and
:data:`PHASES` (work nested inside a stage: checking a blob and the protection mode's ``open``,
the chain client's calls). :meth:`StageClock.stage` refuses any other name, so a stage renamed in the
pipeline fails loudly instead of dropping out of every benchmark and dashboard.

Each finished stage is reported with its inclusive seconds and its exclusive ones (less the
time spent in stages nested inside it, such as a chain call inside ``finalize``).
:class:`StageTotals` adds them up per name: the live node (:mod:`node.service.runner`) logs
inclusive stage times, ``scripts/bench_cost.py`` splits a round into training, protection,
network and chain with exclusive ones, and the monitor shows the stage a round is in.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["PHASES", "STAGES", "StageClock", "StageEvent", "StageTotals"]

#: the round pipeline's stages, in the order a round runs them (node.peer.pipeline); "hold" is the wait
#: between this peer's commit and the release of its blob (commit before reveal, node.peer.reveal)
STAGES = (
    "train",
    "protect",
    "commit",
    "hold",
    "send",
    "verify",
    "aggregate",
    "record_rejections",
    "finalize",
)
#: work nested inside the stages: re-reading the registry, checking one committed blob (its hash,
#: then the mode's ``open``), and the chain client's transactions and reads
PHASES = ("directory", "check", "open", "chain.send", "chain.call")


@dataclass(frozen=True)
class StageEvent:
    """A stage started (``seconds`` None) or finished (inclusive and exclusive seconds)."""

    name: str
    seconds: float | None = None
    exclusive: float | None = None


class StageClock:
    """The clock one peer's pipeline reads. One clock per peer: a peer's round runs its stages
    one after another in one task (a blob checked in a worker thread is awaited before the
    next), so one stack of open stages tells which stage nests in which."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[StageEvent], None]] = []
        self._stack: list[float] = []  # per open stage: seconds spent in stages nested in it

    def subscribe(self, listener: Callable[[StageEvent], None]) -> None:
        """Call ``listener(event)`` when a stage starts and when it finishes."""
        self._listeners.append(listener)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block under ``name`` (one of :data:`STAGES` or :data:`PHASES`)."""
        if name not in STAGES and name not in PHASES:
            raise KeyError(f"unknown stage {name!r}; stages are {', '.join(STAGES + PHASES)}")
        stack = self._stack
        self._emit(StageEvent(name))
        stack.append(0.0)  # time spent in stages nested in this one
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            nested = stack.pop()
            if stack:
                stack[-1] += elapsed
            self._emit(StageEvent(name, elapsed, elapsed - nested))

    def _emit(self, event: StageEvent) -> None:
        for listener in self._listeners:
            listener(event)


class StageTotals:
    """A listener: seconds per stage name, accumulated over calls (inclusive, or exclusive
    of nested stages), for the stages in ``names`` (default: all)."""

    def __init__(self, *, exclusive: bool = False, names: tuple[str, ...] | None = None) -> None:
        self.exclusive = exclusive
        self.names = names  # the stage names to count (None: all)
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)

    def __call__(self, event: StageEvent) -> None:
        if (
            event.seconds is None
            or event.exclusive is None
            or (self.names and event.name not in self.names)
        ):
            return
        self.seconds[event.name] += event.exclusive if self.exclusive else event.seconds
        self.calls[event.name] += 1

    def reset(self) -> dict[str, float]:
        """The totals so far, and start again from zero."""
        out = dict(self.seconds)
        self.seconds.clear()
        self.calls.clear()
        return out
