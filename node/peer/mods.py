"""Hooks around one peer's round, in the spirit of Flower's client mods: a :class:`PeerMod`
wraps or watches a stage of :meth:`node.peer.pipeline.HospitalPeer.run_round` without reaching into
the peer. Every default is the honest pass-through, so a mod overrides only what it changes.

The misbehaviour tests and the benchmarks play their members through mods (an equivocator
wraps ``protect`` and rewrites ``outgoing``; a poisoner wraps ``train``; a deaf peer drops
``incoming`` blobs), and the monitor watches ``aggregated``. A peer runs its mods in the
order given (``HospitalPeer(..., mods=[...])``): the first wraps the outermost.

==============  =======================================================================
hook            when, and what it may change
==============  =======================================================================
train           wraps training: ``await call_next(round_)`` gives the honest update
protect         wraps protection: ``await call_next(update)`` gives the blob committed
hold            wraps the commit-before-reveal hold (:mod:`node.peer.reveal`):
                ``await call_next(round_)`` gives (why released, seconds held)
outgoing        each blob this peer sends (updates and the mode's side-channel
                messages), one recipient at a time; return other bytes, or None to drop
incoming        each blob an active member sent, before the peer files it; False drops it
verifying       before the verify stage waits for the members' blobs
verified        the opened updates and the rejections, before aggregation (may edit them)
aggregated      after the aggregate stage, whether it succeeded or not (``params`` None)
==============  =======================================================================

A hook that raises :class:`LeaveRound` takes the peer out of the round there and then (a
member that goes offline mid-round): ``run_round`` returns with the reason as its error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ledger import Identity
    from node.consensus.update import ModelUpdate

__all__ = ["LeaveRound", "ModChain", "PeerMod"]


class LeaveRound(Exception):  # noqa: N818 (a signal, not an error: no stage may catch it as one)
    """Raised by a hook: this peer stops taking part in the round now (the message says why).
    Not a :class:`~node.errors.MedmeshError`, so no stage's error handling swallows it."""


class PeerMod:
    """One set of hooks; ``peer`` is the :class:`~node.peer.pipeline.HospitalPeer` running the round."""

    async def train(
        self, peer: Any, round_: int, call_next: Callable[[int], Awaitable[ModelUpdate]]
    ) -> ModelUpdate:
        return await call_next(round_)

    async def protect(
        self, peer: Any, update: ModelUpdate, call_next: Callable[[ModelUpdate], Awaitable[bytes]]
    ) -> bytes:
        return await call_next(update)

    async def hold(
        self, peer: Any, round_: int, call_next: Callable[[int], Awaitable[tuple[str, float]]]
    ) -> tuple[str, float]:
        return await call_next(round_)

    async def outgoing(
        self, peer: Any, recipient: Identity, kind: str, blob: bytes
    ) -> bytes | None:
        return blob

    async def incoming(self, peer: Any, sender: Identity, kind: str, data: bytes) -> bool:
        return True

    async def verifying(self, peer: Any, round_: int) -> None:
        return None

    def verified(
        self, peer: Any, round_: int, opened: dict[str, object], rejected: dict[str, str]
    ) -> None:
        return None

    async def aggregated(
        self, peer: Any, round_: int, opened: dict[str, object], params: np.ndarray | None
    ) -> None:
        return None


class ModChain:
    """A peer's mods, applied in order (the first wraps the outermost)."""

    def __init__(self, peer: Any, mods: Sequence[PeerMod] = ()) -> None:
        self.peer = peer
        self.mods = list(mods)

    def add(self, mod: PeerMod) -> None:
        self.mods.append(mod)

    async def train(
        self, round_: int, inner: Callable[[int], Awaitable[ModelUpdate]]
    ) -> ModelUpdate:
        call = inner
        for mod in reversed(self.mods):
            call = _bind(mod.train, self.peer, call)
        return await call(round_)

    async def protect(
        self, update: ModelUpdate, inner: Callable[[ModelUpdate], Awaitable[bytes]]
    ) -> bytes:
        call = inner
        for mod in reversed(self.mods):
            call = _bind(mod.protect, self.peer, call)
        return await call(update)

    async def hold(
        self, round_: int, inner: Callable[[int], Awaitable[tuple[str, float]]]
    ) -> tuple[str, float]:
        call = inner
        for mod in reversed(self.mods):
            call = _bind(mod.hold, self.peer, call)
        return await call(round_)

    async def outgoing(self, recipient: Identity, kind: str, blob: bytes) -> bytes | None:
        out: bytes | None = blob
        for mod in self.mods:
            if out is None:
                return None
            out = await mod.outgoing(self.peer, recipient, kind, out)
        return out

    async def incoming(self, sender: Identity, kind: str, data: bytes) -> bool:
        for mod in self.mods:
            if not await mod.incoming(self.peer, sender, kind, data):
                return False
        return True

    async def verifying(self, round_: int) -> None:
        for mod in self.mods:
            await mod.verifying(self.peer, round_)

    def verified(self, round_: int, opened: dict[str, object], rejected: dict[str, str]) -> None:
        for mod in self.mods:
            mod.verified(self.peer, round_, opened, rejected)

    async def aggregated(
        self, round_: int, opened: dict[str, object], params: np.ndarray | None
    ) -> None:
        for mod in self.mods:
            await mod.aggregated(self.peer, round_, opened, params)


def _bind(
    hook: Callable[..., Awaitable[Any]], peer: Any, call_next: Callable[[Any], Awaitable[Any]]
):
    async def call(arg: Any) -> Any:
        return await hook(peer, arg, call_next)

    return call
