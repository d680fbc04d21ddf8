"""The seam between the round pipeline and a protection mode.

:class:`~node.peer.pipeline.HospitalPeer` runs ``train -> protect -> commit -> gossip -> verify ->
aggregate -> attest``; the three middle stages ask the consortium's mode what to do:

* :meth:`ProtectionMode.protect` turns this peer's update into the blob it commits and sends
  (a mode may first talk to the other peers, e.g. secagg's key and share exchange);
* :meth:`ProtectionMode.open` checks one committed blob and returns what the mode aggregates
  (a whole update for sealed, a masked vector for secagg, a ciphertext for ckks);
* :meth:`ProtectionMode.aggregate` turns the opened set into the new global parameters and
  the accepted senders (secagg and ckks need one more exchange for that).

Modes that reveal only the sum (``sum_only``) work with FedAvg and nothing else: the robust
rules need every individual update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import trio

from node.crypto.sealing import Recipient, SealContext, SealError, open_sealed, peek_context, seal
from node.errors import MedmeshError

if TYPE_CHECKING:
    from ledger import Commitment, Identity
    from node.consensus.update import ModelUpdate
    from node.protection.context import ModeContext

__all__ = ["Rejected", "Aggregate", "ProtectionMode", "Mailbox"]


class Rejected(MedmeshError):
    """A committed update this peer refuses; ``reason`` is a name from
    :data:`ledger.records.REJECTION_REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Aggregate:
    params: np.ndarray  # the new global parameters, float32
    accepted: list[str]  # senders whose updates are in it


class Mailbox:
    """Side-channel messages of one mode (kind -> round -> sender -> payload), with a wakeup."""

    def __init__(self) -> None:
        self._box: dict[tuple[str, int], dict[str, Any]] = {}
        self._changed = trio.Event()

    def put(self, kind: str, round_: int, sender: str, payload: Any) -> None:
        box = self._box.setdefault((kind, round_), {})
        if sender in box:
            raise SealError(f"a {kind} message for round {round_} was already received from you")
        box[sender] = payload
        self._changed.set()
        self._changed = trio.Event()

    def get(self, kind: str, round_: int) -> dict[str, Any]:
        return self._box.get((kind, round_), {})

    async def wait_for(
        self, kind: str, round_: int, senders: set[str], timeout: float
    ) -> dict[str, Any]:
        """Wait (bounded) until every one of ``senders`` has sent ``kind``; return what came."""
        with trio.move_on_after(timeout):
            while not senders <= set(self.get(kind, round_)):
                await self._changed.wait()
        return dict(self.get(kind, round_))

    async def wait_until(
        self, kind: str, round_: int, done: Callable[[dict[str, Any]], bool]
    ) -> None:
        """Wait until ``done`` holds for the ``kind`` messages of ``round_`` (the caller bounds it)."""
        while not done(dict(self.get(kind, round_))):
            await self._changed.wait()

    def drop_round(self, round_: int) -> None:
        for key in [k for k in self._box if k[1] <= round_]:
            del self._box[key]


class ProtectionMode:
    """One protection mode; subclasses set ``name``, ``code`` (recorded on chain with each
    commit) and ``sum_only``, and implement the three stages."""

    name = ""
    code = 0
    sum_only = False
    opens_off_loop = False
    """Whether :meth:`open` may run in a worker thread: it touches no trio object and no state
    that another task changes meanwhile, and its heavy part is C code that releases the GIL."""
    relays_updates = True
    uses_beacon = False
    """Whether the mode draws from the round's beacon (:mod:`node.peer.roundbeacon`): its peers then
    commit and reveal beacon secrets every round."""
    """Whether a peer holding another's committed update blob may relay it to a peer that
    missed it (:mod:`node.peer.relay`): true when the blob is sealed to every peer that waits for it."""

    def __init__(self, ctx: ModeContext) -> None:
        self.ctx = ctx
        self.mailbox = Mailbox()

    # -- stages --------------------------------------------------------------------------
    async def protect(self, update: ModelUpdate) -> bytes:
        raise NotImplementedError

    def own(self, update: ModelUpdate) -> Any:
        """What :meth:`open` would return for this peer's own update."""
        raise NotImplementedError

    def open(
        self, round_: int, sender: str, blob: bytes, commitment: Commitment, member: Identity
    ) -> Any:
        raise NotImplementedError

    async def aggregate(self, round_: int, opened: dict[str, Any]) -> Aggregate:
        raise NotImplementedError

    def update_recipients(self, round_: int) -> list[Identity]:
        """Who this peer sends its committed blob to."""
        return self.ctx.others()

    def expected_update_senders(self, round_: int) -> set[str]:
        """Whose committed blobs this peer waits for in the verify stage."""
        return {i.address for i in self.ctx.others()}

    async def on_message(self, sender: Identity, kind: str, data: bytes) -> None:
        """A side-channel blob (any kind but ``update``); raise to reject it."""
        raise SealError(f"protection mode {self.name} takes no {kind!r} messages")

    def end_round(self, round_: int) -> None:
        self.mailbox.drop_round(round_)

    def peek(self, blob: bytes) -> SealContext:
        """The round and sender a received blob claims, read before it is checked (for the
        sealed envelope every mode uses, :func:`node.crypto.sealing.peek_context`); raises SealError."""
        return peek_context(blob)

    # -- helpers for modes ---------------------------------------------------------------
    def context(self, round_: int, sender: str) -> SealContext:
        return self.ctx.seal_context(round_, sender)

    def seal_for(self, round_: int, plaintext: bytes, recipients: list[Identity]) -> bytes:
        return seal(
            plaintext,
            self.context(round_, self.ctx.address),
            self.ctx.identity.sign_private,
            [Recipient(i.address, i.seal_key) for i in recipients],
        )

    def unseal(self, round_: int, sender: Identity, blob: bytes) -> bytes:
        """Open an envelope from ``sender`` for this round; raises SealError."""
        return open_sealed(
            blob,
            self.context(round_, sender.address),
            sender_sign_key=sender.sign_key,
            my_address=self.ctx.address,
            my_seal_key=self.ctx.identity.seal_private,
        )

    async def send_to(
        self, round_: int, kind: str, blob: bytes, recipients: list[Identity]
    ) -> None:
        """Deliver ``blob`` to each recipient (best effort, in parallel)."""

        async def one(ident: Identity) -> None:
            try:
                await self.ctx.send(ident, blob, kind)
            except Exception as exc:  # one unreachable peer must not stop the others
                self.ctx.log.warning(
                    "could not deliver %s to %s: %s", kind, ident.address, exc, round=round_
                )

        async with trio.open_nursery() as nursery:
            for ident in recipients:
                nursery.start_soon(one, ident)
