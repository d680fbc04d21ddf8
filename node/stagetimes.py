"""Where a peer's time goes: wall time per method, inclusive or exclusive of nested timed calls.

:func:`time_methods` wraps named methods of an object (sync or async) in place. Every wrapper of
one :class:`StageClock` shares a stack, so a timed call made inside another timed call (a chain
call inside the ``_finalize`` stage) is charged to the inner name only when the clock is
``exclusive``. One clock per peer: a peer's round runs its stages one after another in one task.
The live node (:mod:`node.service.runner`) logs inclusive stage times; ``scripts/bench_cost.py`` splits
a round into training, protection, network and chain with exclusive ones.
"""

from __future__ import annotations

import inspect
import time
from collections import defaultdict
from collections.abc import Iterable
from functools import wraps

__all__ = ["StageClock", "time_methods"]


class StageClock:
    """Seconds per name, accumulated over calls."""

    def __init__(self, *, exclusive: bool = False) -> None:
        self.exclusive = exclusive
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []  # per open call: [time spent in nested timed calls]

    def _enter(self) -> float:
        self._stack.append([0.0])
        return time.perf_counter()

    def _leave(self, name: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        nested = self._stack.pop()[0]
        if self._stack:
            self._stack[-1][0] += elapsed
        self.seconds[name] += elapsed - nested if self.exclusive else elapsed
        self.calls[name] += 1

    def reset(self) -> dict[str, float]:
        """The totals so far, and start again from zero."""
        out = dict(self.seconds)
        self.seconds.clear()
        self.calls.clear()
        return out


def time_methods(obj: object, names: Iterable[str], clock: StageClock, *, label=lambda name: name) -> None:
    """Replace each existing method ``obj.NAME`` by a wrapper charging its wall time to
    ``clock`` under ``label(NAME)``; names the object lacks are skipped."""
    for name in names:
        method = getattr(obj, name, None)
        if method is None:
            continue
        key = label(name)
        if inspect.iscoroutinefunction(method):
            async def timed(*args, _m=method, _k=key, **kwargs):
                start = clock._enter()
                try:
                    return await _m(*args, **kwargs)
                finally:
                    clock._leave(_k, start)
        else:
            def timed(*args, _m=method, _k=key, **kwargs):
                start = clock._enter()
                try:
                    return _m(*args, **kwargs)
                finally:
                    clock._leave(_k, start)
        setattr(obj, name, wraps(method)(timed))
