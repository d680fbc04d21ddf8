"""The "ckks" mode: TenSEAL CKKS (:mod:`node.crypto.ckks.scheme`) with roles drawn from the chain.

For round ``r``, the **key holder** and the **aggregator** are two different members drawn
from the round's **beacon** (:mod:`ledger.beacon`, :func:`draw_roles`): each member committed a
secret before ``r`` opened and revealed it after; the draw is uniform over ordered pairs of the
members that revealed, from ``round_seed(..., beacon=True)``. The pair is fixed by the reveals,
before anyone makes its update, and no single member can steer it: not the opener (its
transaction no longer enters the draw), not a member grinding its reveal (its secret was
committed before the round opened). What is left is each withholding committer's one bit (it
sees the others' reveals and chooses to reveal or not; a withholder cannot hold a role), and a
coalition holding every reveal. A beacon with too few reveals (below the round's quorum) makes
no draw: the round goes on without ckks roles and fails; the next round draws afresh.

1. ``ckks-context``: the key holder makes fresh keys and sends its public context (public key
   and parameters only, refused below 128-bit security) to every member;
2. ``update`` (committed on chain): each other peer encrypts ``[w * delta, w]`` (``w`` its
   committed samples capped by its cohort and the median cohort: :func:`node.consensus.rules.cohort_weight`)
   under that context, bound to the round and the context's hash, and sends it to the
   aggregator only. The key holder encrypts nothing: it could subtract its own update from any
   sum it decrypts, so a ciphertext of it would hide nothing from the one peer able to open
   it. It commits the hash of its plain update (encoded as :mod:`node.consensus.update`), which stays
   with it, and adds that update after decryption;
3. ``ckks-sum``: the aggregator checks and adds the committed ciphertexts (no secret needed)
   and sends the encrypted sum, naming whose it added, to the key holder;
4. ``ckks-result``: the key holder decrypts only that sum, and only if it holds at least
   ``min_contributors`` (default 3) members with a ckks commitment on chain, its own counted
   (the chain's count, not the ciphertext header's, which the aggregator could rewrite);
   it checks the decrypted weight total against the chain and registry, adds its own weighted update, and
   sends the new global parameters to every member; each attests their hash on chain.

With an aggregation committee (docs/secagg.md, "ckks with a committee") the pair is drawn among
the round's seats that revealed (:meth:`CkksMode._eligible`), the key holder sends the result
to the other seats only, the seats attest, and the followers fetch the finalized aggregate
(:mod:`node.peer.committee`).

Every peer sees only the sum. What it cannot check is the key holder's arithmetic: an honest
key holder is trusted for the decryption (the others attest what it published, and a key
holder that publishes different results to different peers splits the vote and fails the
round). A missing key holder or aggregator fails the round; the next round draws a new pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import trio

from ledger.beacon import revealed_secrets
from ledger.errors import LedgerError
from ledger.randomness import draw_distinct, draw_pair, round_seed
from node.consensus.committee import CommitteeError
from node.consensus.rules import clip_norms
from node.consensus.update import ModelUpdate, UpdateFormatError, encode_update
from node.crypto.ckks import pool as ckks_pool
from node.crypto.ckks.scheme import (
    CKKSError,
    CKKSKeyHolder,
    CKKSParams,
    CKKSPublicContext,
    EncryptedVector,
)
from node.crypto.sealing import SealError, peek_context
from node.protection import ckks_wire as wire
from node.protection.base import Aggregate, ProtectionMode, Rejected

if TYPE_CHECKING:
    from ledger import Commitment, Identity
    from node.protection.context import ModeContext

__all__ = ["CkksMode", "draw_roles"]


def draw_roles(seed: bytes, members: list[Identity]) -> tuple[Identity, Identity]:
    """(key holder, aggregator): two different members, uniform over ordered pairs, read from
    a 32-byte ``seed`` (:func:`ledger.randomness.draw_pair`, which an audit runs too)."""
    if len(members) < 2:
        raise CKKSError(
            "ckks needs at least two members that revealed their beacon secret "
            "(a key holder and an aggregator)"
        )
    by_address = {m.address.lower(): m for m in members}
    holder, aggregator = draw_pair(seed, [m.address for m in members])
    return by_address[holder.lower()], by_address[aggregator.lower()]


class CkksMode(ProtectionMode):
    name = "ckks"
    code = 3
    sum_only = True
    # ciphertexts go to the round's evaluators alone (the aggregator; with a robust rule, also the
    # verifiers): no other peer holds one, so none relays one
    relays_updates = False
    uses_beacon = True
    kinds = {
        "ckks-context": "context",
        "ckks-sum": "sum",
        "ckks-result": "result",
    }  # message kind -> phase
    # phases an evaluator (:meth:`evaluators`) sends; the key holder sends the others
    from_aggregator = frozenset({"sum"})
    holder_encrypts = False  # the key holder's own update is added in the clear after decryption

    def __init__(self, ctx: ModeContext, params: CKKSParams | None = None) -> None:
        super().__init__(ctx)
        ckks_pool.warm_up()
        self.params = params or CKKSParams()
        self._holders: dict[int, CKKSKeyHolder] = {}
        self._public: dict[int, CKKSPublicContext] = {}
        self._own: dict[int, bytes] = {}
        self._plain: dict[
            int, tuple[np.ndarray, float]
        ] = {}  # the key holder's own (delta, weight)
        self._roles: dict[int, list[Identity]] = {}

    def roles(self, round_: int) -> tuple[Identity, Identity]:
        """(key holder, aggregator) for ``round_``, drawn from the round's beacon among the
        members that revealed their secret (raises until the beacon is ready)."""
        holder, aggregator, *_ = self._drawn(round_)
        return holder, aggregator

    def evaluators(self, round_: int) -> list[Identity]:
        """The members that receive the ciphertexts and evaluate on them: here the aggregator."""
        return [self.roles(round_)[1]]

    def _extra_roles(self) -> int:
        """How many more members a variant draws after the pair (:meth:`_drawn`)."""
        return 0

    def _drawn(self, round_: int) -> list[Identity]:
        """(key holder, aggregator, then :meth:`_extra_roles` more while members last), one draw
        from the beacon: the first two are :func:`draw_roles`'s."""
        if round_ not in self._roles:
            ledger = self.ctx.ledger
            try:
                seed = round_seed(ledger, round_, "ckks-roles", beacon=True)
                revealed = {a.lower() for a in revealed_secrets(ledger, round_)}
            except LedgerError as exc:
                raise CKKSError(f"no role draw for round {round_}: {exc}") from None
            members = [m for m in self._eligible(round_) if m.address.lower() in revealed]
            pair = draw_roles(seed, members)  # raises below two members
            by_address = {m.address.lower(): m for m in members}
            drawn = draw_distinct(seed, [m.address for m in members], 2 + self._extra_roles())
            self._roles[round_] = [*pair, *(by_address[a.lower()] for a in drawn[2:])]
        return self._roles[round_]

    def _eligible(self, round_: int) -> list[Identity]:
        """Whom the roles are drawn from: the round's committee seats (docs/secagg.md), or
        every member without one."""
        draw = self.ctx.draw_committee or self.ctx.committee
        try:
            seats = draw(round_) if draw is not None else None
        except CommitteeError as exc:
            raise CKKSError(f"no role draw for round {round_}: {exc}") from None
        return [m for m in self.ctx.members() if seats is None or m.address.lower() in seats]

    def _is(self, ident: Identity) -> bool:
        return ident.address.lower() == self.ctx.address.lower()

    async def on_message(self, sender: Identity, kind: str, data: bytes) -> None:
        phase = self.kinds.get(kind)
        if phase is None:
            raise SealError(f"ckks takes no {kind!r} messages")
        round_ = peek_context(data).round
        try:
            holder, _ = self.roles(round_)
        except CKKSError as exc:
            raise SealError(str(exc)) from None
        allowed = self.evaluators(round_) if phase in self.from_aggregator else [holder]
        if sender.address.lower() not in {a.address.lower() for a in allowed}:
            raise SealError(
                f"a ckks {phase} message for round {round_} must come from "
                f"{' or '.join(a.address for a in allowed)}"
            )
        try:
            msg = wire.decode(self.unseal(round_, sender, data), phase)
        except UpdateFormatError as exc:
            raise SealError(str(exc)) from None
        if msg.round != round_ or msg.sender != sender.address.lower():
            raise SealError(
                f"ckks {phase} message names round {msg.round} / sender {msg.sender}, its envelope "
                f"round {round_} / sender {sender.address}"
            )
        self.mailbox.put(phase, round_, sender.address, msg)

    async def _await(self, phase: str, round_: int, sender: Identity) -> wire.CkksMessage:
        got = await self.mailbox.wait_for(
            phase, round_, {sender.address}, self.ctx.settings.round_timeout
        )
        if sender.address not in got:
            raise CKKSError(
                f"no ckks {phase} from {sender.address} within {self.ctx.settings.round_timeout:g} s"
            )
        return got[sender.address]

    # -- protect -------------------------------------------------------------------------
    async def protect(self, update: ModelUpdate) -> bytes:
        r = update.round
        beacon = self.ctx.beacon
        if beacon is None:  # uses_beacon: the peer hands every such mode its beacon secrets
            raise CKKSError("ckks draws its roles from the round's beacon; this peer holds none")
        await beacon.ready(r)  # the draw is final before any update is made
        holder, _ = self.roles(r)
        evaluators, others = self.evaluators(r), self.ctx.others()
        if self._is(holder):
            self._holders[r] = self._new_holder()
            self._public[r] = self._holders[r].public
            msg = wire.CkksMessage(
                "context", r, self.ctx.address, (), self._holders[r].public_context_bytes
            )
            sealed = self.seal_for(r, wire.encode(msg), others)
            # the senders first: their ciphertexts must travel, the aggregator's own waits for them anyway,
            # so where peers share CPUs (or CKKS workers) the aggregator's encryption queues last
            senders = [i for i in others if not _among(i.address, evaluators)]
            await self.send_to(r, "ckks-context", sealed, senders)
            await self.send_to(
                r, "ckks-context", self._aggregator_context(r, sealed, evaluators), evaluators
            )
        else:
            ctx = await self._await("context", r, holder)
            self._load_context(r, ctx.body)
        delta = update.delta.astype(np.float64)
        if self.ctx.settings.clip_norm is not None:
            delta = clip_norms(delta[None, :], self.ctx.settings.clip_norm)[0]
        weight = self.ctx.claim_weight(
            self.ctx.address, update.samples
        )  # bounded by the registry's cohorts
        if (
            self._is(holder) and not self.holder_encrypts
        ):  # added in the clear after decryption; never sent
            self._plain[r] = (delta, weight)
            self._own[r] = encode_update(update)
            return self._own[r]
        self._own[r] = await self._encrypt(r, delta, weight)
        # one envelope for every evaluator (the hash committed on chain binds them all to the same
        # bytes); an evaluator's own is sealed to itself too, and sent to the other evaluators
        return self.seal_for(r, self._own[r], evaluators)

    def own(self, update: ModelUpdate) -> bytes:
        return self._own[update.round]

    def update_recipients(self, round_: int) -> list[Identity]:
        holder, _ = self.roles(round_)
        if self._is(holder) and not self.holder_encrypts:
            return []
        return [e for e in self.evaluators(round_) if not self._is(e)]

    def expected_update_senders(self, round_: int) -> set[str]:
        try:
            holder, _ = self.roles(round_)
            evaluators = self.evaluators(round_)
        except CKKSError:  # no draw (the beacon failed): nobody sends this peer a ciphertext
            return set()
        if not _among(self.ctx.address, evaluators):
            return set()
        return {
            i.address
            for i in self.ctx.others()
            if self.holder_encrypts or i.address.lower() != holder.address.lower()
        }

    # -- hooks a variant of the mode overrides ----------------------------------------------
    def _new_holder(self) -> CKKSKeyHolder:
        return CKKSKeyHolder(self.params)

    def _aggregator_context(self, round_: int, sealed: bytes, evaluators: list[Identity]) -> bytes:
        """The sealed context message for the evaluators (here the same as everyone's)."""
        return sealed

    def _load_context(self, round_: int, body: bytes) -> None:
        self._public[round_] = CKKSPublicContext.from_bytes(body, self.params)

    async def _encrypt(self, round_: int, delta: np.ndarray, samples: float) -> bytes:
        # in a worker process: SEAL holds the GIL, so a thread would stall this process's event loop
        return await ckks_pool.encrypt_weighted(self._public[round_], delta, samples, round_)

    def open(
        self, round_: int, sender: str, blob: bytes, commitment: Commitment, member: Identity
    ) -> EncryptedVector | bytes:
        try:
            ciphertext = self.unseal(round_, member, blob)
        except SealError as exc:
            raise Rejected("bad-seal", str(exc)) from None
        public = self._public.get(round_)
        if public is None:
            raise Rejected("other", "this peer has no public context for the round")
        try:
            return self._opened(public, ciphertext, round_)
        except CKKSError as exc:
            raise Rejected("bad-format", str(exc)) from None

    def _opened(
        self, public: CKKSPublicContext, ciphertext: bytes, round_: int
    ) -> EncryptedVector | bytes:
        """A committed ciphertext, checked (round and context binding, every chunk), as
        :meth:`aggregate` takes it: here parsed, once (the sum adds these objects)."""
        return public.load(ciphertext, round_)

    # -- aggregate -----------------------------------------------------------------------
    async def aggregate(
        self, round_: int, opened: dict[str, bytes | EncryptedVector | None]
    ) -> Aggregate:
        holder, aggregator = self.roles(round_)
        me = self.ctx.address
        if self._is(aggregator):
            included = tuple(sorted((a.lower() for a, c in opened.items() if c is not None)))
            blobs = [opened[a] for a in sorted(opened, key=str.lower) if opened[a] is not None]
            total = await trio.to_thread.run_sync(self._public[round_].sum, blobs, round_)
            msg = wire.CkksMessage("sum", round_, me, included, total)
            if self._is(holder):
                self.mailbox.put("sum", round_, me, msg)
            else:
                await self.send_to(
                    round_, "ckks-sum", self.seal_for(round_, wire.encode(msg), [holder]), [holder]
                )
        if self._is(holder):
            summed = await self._await("sum", round_, aggregator)
            committed = self._committed(round_)  # read now: the key holder itself commits early
            if not set(summed.included) <= set(committed):
                raise CKKSError(
                    f"the aggregator added ciphertexts from members with no commitment: "
                    f"{sorted(set(summed.included) - set(committed))}"
                )
            if me.lower() in summed.included:
                raise CKKSError(
                    "the aggregator's sum names the key holder, who sent it no ciphertext"
                )
            commitments = self.ctx.ledger.commitments(round_)
            samples = sum(
                self.ctx.claim_weight(committed[a], commitments[committed[a]].samples)
                for a in summed.included
            )
            own = self._plain.get(round_)
            least = self.ctx.settings.min_contributors
            counted = {a for a in summed.included if commitments[committed[a]].mode == self.code}
            if own is not None and me in commitments:
                counted.add(me.lower())
            if (
                len(counted) < least
            ):  # from the chain: the ciphertext header's count could be rewritten
                raise CKKSError(
                    f"the sum holds {len(counted)} members with a ckks commitment on chain; refusing "
                    f"to decrypt fewer than {least} (min_contributors)"
                )
            mean = await trio.to_thread.run_sync(
                lambda: self._holders[round_].decrypt_weighted_mean(
                    summed.body, round_, min_summands=least, expected_weight=float(samples), own=own
                )
            )  # chain's total
            if mean.summands != len(summed.included):
                raise CKKSError(
                    f"the sum holds {mean.summands} summands but names {len(summed.included)} members"
                )
            params = (self.ctx.global_params + mean.mean).astype(np.float32)
            included = tuple(sorted(summed.included + ((me.lower(),) if own is not None else ())))
            result = wire.CkksMessage(
                "result", round_, me, included, params.astype("<f4").tobytes()
            )
            seats = self.ctx.aggregators(round_)  # every other member without a committee
            await self.send_to(
                round_, "ckks-result", self.seal_for(round_, wire.encode(result), seats), seats
            )
            return Aggregate(params, [committed[a] for a in included])
        result = await self._await("result", round_, holder)
        committed = self._committed(round_)
        if (
            not set(result.included) <= set(committed)
            or len(result.body) != 4 * self.ctx.global_params.size
        ):
            raise CKKSError(
                "the key holder's result names uncommitted members or has the wrong size"
            )
        params = np.frombuffer(result.body, dtype="<f4").astype(np.float32)
        if not np.isfinite(params).all():
            raise CKKSError("the key holder's result contains NaN or infinite values")
        return Aggregate(params, [committed[a] for a in result.included])

    def _committed(self, round_: int) -> dict[str, str]:
        """Lower-cased address -> address of the members with a commitment for ``round_`` on chain."""
        return {a.lower(): a for a in self.ctx.ledger.commitments(round_)}

    def end_round(self, round_: int) -> None:
        super().end_round(round_)
        for d in (self._holders, self._public, self._own, self._plain, self._roles):
            for r in [r for r in d if r <= round_]:
                del d[r]


def _among(address: str, group: list[Identity]) -> bool:
    return address.lower() in {g.address.lower() for g in group}
