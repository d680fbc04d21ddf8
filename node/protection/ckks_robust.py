"""The "ckks" mode with a robust rule (Krum, Multi-Krum): selection over encrypted updates.

Roles, beacon draw and envelopes are those of :mod:`node.protection.ckks_mode`; what changes:

0. **Evaluators.** The beacon draw continues past the (key holder, aggregator) pair: ``2 max(1, f)``
   more members, the **verifiers** (fewer if fewer members revealed), so that the aggregator and
   the verifiers make ``2f + 1`` evaluators, never the key holder. SEAL's evaluation (multiply,
   relinearize, rescale, rotate, add) is exact integer arithmetic: the same ciphertexts and keys
   give the same bytes in any process (``tests/unit/crypto/test_ckks_pool.py`` pins it). Each
   evaluator computes what the aggregator computes, and the key holder acts only on a message that
   a strict majority of them sent bit for bit; with at most ``f`` faulty evaluators, the ``f + 1``
   honest ones are that majority, and an evaluator that sent anything else is named (in the key
   holder's log, and in an alert of kind :data:`OUTVOTED` it records on chain);
1. ``ckks-context``: the key holder (:class:`~node.crypto.ckks.robust.RobustKeyHolder`, parameters
   with one multiplicative level) sends its public context to every member, and to the
   evaluators also its evaluation keys (relinearization and Galois keys; no secret);
2. ``update``: **every** member, the key holder included, encrypts its plain update (each
   member counts once, as the robust rules count them in the clear) and sends it, in one envelope
   whose hash it commits on chain, to the evaluators only; the key holder's update must enter the
   distances like any other;
3. ``ckks-gram``: each evaluator computes the encrypted inner products of every pair of the
   ciphertexts it opened (:class:`~node.crypto.ckks.robust.GramEvaluator`; or, with
   :attr:`gram_in_workers`, its pairs split over the CKKS worker processes,
   :func:`node.crypto.ckks.pool.gram`), in canonical order, and sends them to the key holder;
4. ``ckks-scalars``: the key holder takes the majority's Gram blob, checks that the members named
   are committed on chain and at least ``min_contributors`` and the rule's minimum, decrypts the
   scalars only (it refuses any ciphertext that is not one scalar in every slot), and sends the
   Gram matrix, signed, to every member;
5. every member computes the accepted set from it with the same rule code as in the clear
   (:func:`node.consensus.robust_audit.select_from_gram`, canonical tie-break), after norm
   bounding if ``[aggregation] norm_bound`` (Sun et al. 2019: factors ``min(1, M / |u_a|)`` from
   the norms);
6. ``ckks-sum``: each evaluator adds the accepted ciphertexts only (each multiplied by its
   public factor under ``norm_bound``) and sends the sum, naming whose, to the key holder;
7. ``ckks-result``: the key holder takes the majority's sum, decrypts it only if its summands are
   exactly the accepted set (and at least ``min_contributors`` with a ckks commitment on chain),
   checks that its squared norm equals the accepted block of the Gram matrix
   (:func:`~node.consensus.robust_audit.check_sum`), and sends the decrypted sum (float64) to every
   member. Each member repeats that check against the scalars it received, then checks its own
   row of them against the update it encrypted (:func:`~node.consensus.robust_audit.check_own_row`:
   its squared norm, its row's sum over the accepted set against ``<own, sum>``, Cauchy-Schwarz),
   adds ``sum / |accepted|`` to the global parameters itself, and attests; the accepted set goes
   on chain as in every mode. A member whose row fails records an alert of kind
   :data:`FALSE_SCALARS` on chain (``RoundLedger.recordAlert``, signed by it; the body, which names
   the key holder, stays in :attr:`RobustCkksMode.accused`), attests nothing and keeps its model.

Threat model. *An aggregator (or verifier) alone*, up to ``f`` evaluators in all: whatever they
evaluate (a victim's distances inflated, a poisoner's row disguised, an inner product with a
vector of their own), the honest majority's bytes are what the key holder decrypts; they are
named, and the round goes on. *The key holder with an evaluator*: they can decrypt every
individual ciphertext of the round (the mode's collusion threshold, now any of the ``2f + 1``
evaluators with the key holder instead of the aggregator alone), and the key holder can publish any
scalars: decryption is not verified, only the sum's consistency with the scalars (:func:`_check`)
and each honest member's row with its own update (which falsifications that leaves: the threat
model).
A silent evaluator costs nothing while a majority agrees. A check that fails raises
:class:`~node.crypto.ckks.scheme.CKKSError`: that member attests nothing, so a round without a
majority, or whose decrypted sum contradicts the scalars, stops instead of being steered. What
leaks: docs/threat-model.md.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np
import trio

from ledger.errors import LedgerError
from node.consensus.robust_audit import (
    FACTOR_BITS,
    OwnRow,
    RobustSelection,
    check_own_row,
    check_sum,
    factor_integers,
    select_from_gram,
)
from node.consensus.rules import rule_class
from node.crypto.ckks import pool as ckks_pool
from node.crypto.ckks.noise import TAIL, inner_product_noise
from node.crypto.ckks.robust import ROBUST_PARAMS, GramEvaluator, RobustKeyHolder, scalar_bound
from node.crypto.ckks.scheme import CKKSError, CKKSPublicContext, EncryptedVector
from node.protection import ckks_wire as wire
from node.protection.base import Aggregate
from node.protection.ckks_mode import CkksMode
from node.protection.ckks_wire import majority

if TYPE_CHECKING:
    from ledger import Identity

__all__ = ["RobustCkksMode", "FALSE_SCALARS", "OUTVOTED"]

FALSE_SCALARS = "ckks-false-scalars"  # the alert kind a member records when its own row fails
OUTVOTED = "ckks-evaluator-outvoted"  # the key holder's alert naming evaluators it outvoted

# the evaluators' context body: magic | u32 context length | context | evaluation keys
_KEYS_MAGIC = b"MMRK"
_LEN = struct.Struct(">I")


class RobustCkksMode(CkksMode):
    kinds = {**CkksMode.kinds, "ckks-gram": "gram", "ckks-scalars": "scalars"}
    from_aggregator = frozenset({"sum", "gram"})
    holder_encrypts = True
    # the Gram matrix on the CKKS worker processes, its pairs split: off, as it does not pay on a
    # 2-core machine (shipping the ciphertexts and loading the keys per round; docs/ckks.md)
    gram_in_workers = False

    @property
    def norm_bound(self) -> bool:
        """Sun et al. 2019 before the rule (``[aggregation] norm_bound``): each update scaled to at
        most the median norm, by public factors on the ciphertexts."""
        return self.ctx.settings.norm_bound

    def __init__(self, ctx) -> None:
        super().__init__(ctx, ROBUST_PARAMS)
        self._evaluators: dict[int, GramEvaluator] = {}
        #: round -> evaluator address -> the phase ("gram", "sum") in which this key holder saw it
        #: send bytes that differ from the majority's
        self.named: dict[int, dict[str, str]] = {}
        #: round -> the alert body this member recorded against the key holder (its row failed)
        self.accused: dict[int, dict[str, object]] = {}
        self._mine: dict[int, np.ndarray] = {}  # round -> the update this member encrypted
        self._noise = inner_product_noise(self.params)

    # -- roles ---------------------------------------------------------------------------------
    def _extra_roles(self) -> int:
        return 2 * max(1, self.ctx.settings.f)  # the verifiers

    def evaluators(self, round_: int) -> list[Identity]:
        """The aggregator, then ``2 max(1, f)`` verifiers (fewer where fewer members revealed),
        drawn from the round's beacon after the pair; never the key holder."""
        return self._drawn(round_)[1:]

    def _evaluating(self, round_: int) -> bool:
        return self.ctx.address.lower() in {e.address.lower() for e in self.evaluators(round_)}

    # -- hooks ---------------------------------------------------------------------------------
    def _new_holder(self) -> RobustKeyHolder:
        return RobustKeyHolder(self.params)

    def _holder(self, round_: int) -> RobustKeyHolder:
        """This key holder's :class:`RobustKeyHolder` of ``round_`` (made by :meth:`_new_holder`)."""
        holder = self._holders[round_]
        if not isinstance(holder, RobustKeyHolder):
            raise CKKSError(f"round {round_}'s key holder has no evaluation keys")
        return holder

    def _aggregator_context(self, round_: int, sealed: bytes, evaluators: list[Identity]) -> bytes:
        h = self._holder(round_)
        body = (
            _KEYS_MAGIC
            + _LEN.pack(len(h.public_context_bytes))
            + h.public_context_bytes
            + h.evaluation_keys_bytes
        )
        msg = wire.CkksMessage("context", round_, self.ctx.address, (), body)
        return self.seal_for(round_, wire.encode(msg), evaluators)

    def _load_context(self, round_: int, body: bytes) -> None:
        if not self._evaluating(round_):
            return super()._load_context(round_, body)
        if body[:4] != _KEYS_MAGIC or len(body) < 8:
            raise CKKSError("the key holder sent this evaluator no evaluation keys")
        (n,) = _LEN.unpack_from(body, 4)
        public = CKKSPublicContext.from_bytes(body[8 : 8 + n], self.params)
        self._public[round_], self._evaluators[round_] = (
            public,
            GramEvaluator(public, body[8 + n :]),
        )

    async def _encrypt(self, round_: int, delta: np.ndarray, samples: float) -> bytes:
        self._mine[round_] = np.array(delta, dtype=np.float64)  # what the ciphertext holds
        return await ckks_pool.encrypt(self._public[round_], self._mine[round_], round_)

    # -- aggregate -------------------------------------------------------------------------------
    def _opened(self, public: CKKSPublicContext, ciphertext: bytes, round_: int) -> bytes:
        public.check(ciphertext, round_)  # the committed bytes, checked: what the workers parse
        return ciphertext

    async def _gram(self, round_: int, blobs: list[bytes]) -> bytes:
        """The encrypted Gram matrix of ``blobs``, in worker processes (:attr:`gram_in_workers`)
        or in a thread (SEAL holds the GIL there: the event loop waits)."""
        evaluator = self._evaluators[round_]
        if self.gram_in_workers:
            return await ckks_pool.gram(evaluator.public, evaluator.keys, blobs, round_)
        vectors = [evaluator.public.load(b, round_) for b in blobs]
        return await trio.to_thread.run_sync(evaluator.gram, vectors, round_)

    async def aggregate(
        self, round_: int, opened: dict[str, bytes | EncryptedVector | None]
    ) -> Aggregate:
        holder, _ = self.roles(round_)
        evaluating = self._evaluating(round_)
        if evaluating:
            public = self._public[round_]
            blobs = {a: c for a, c in opened.items() if isinstance(c, bytes)}
            order = sorted(blobs, key=str.lower)
            encrypted = await self._gram(round_, [blobs[a] for a in order])
            await self._send(round_, "gram", tuple(a.lower() for a in order), encrypted, [holder])
        if self._is(holder):
            await self._publish_scalars(round_)
        scalars = await self._await("scalars", round_, holder)
        members = scalars.included
        gram = np.frombuffer(scalars.body, dtype="<f8").astype(np.float64)
        if gram.size != len(members) ** 2:
            raise CKKSError(
                f"the key holder's scalars hold {gram.size} values for {len(members)} members"
            )
        gram = gram.reshape(len(members), len(members))
        chosen = select_from_gram(
            self.ctx.settings.rule, gram, f=self.ctx.settings.f, clip=self.norm_bound
        )
        accepted = tuple(members[i] for i in chosen.accepted)
        self.ctx.log.info(
            "robust ckks: %s accepts %d of %d; left out: %s",
            self.ctx.settings.rule,
            len(accepted),
            len(members),
            sorted(set(members) - set(accepted)) or "nobody",
            round=round_,
        )
        if evaluating:
            by_lower = {a.lower(): c for a, c in blobs.items()}
            vectors = [public.load(by_lower[a], round_) for a in accepted]
            if self.norm_bound:  # public factors from the published norms, on the ciphertexts
                factors = factor_integers(chosen.scales[chosen.accepted])
                summed = await trio.to_thread.run_sync(
                    self._evaluators[round_].scaled_sum, vectors, factors, round_
                )
            else:
                summed = await trio.to_thread.run_sync(self._public[round_].sum, vectors, round_)
            await self._send(round_, "sum", accepted, summed, [holder])
        if self._is(holder):
            total = await self._decrypt_sum(round_, accepted, gram, chosen)
            others = self.ctx.others()
            await self._send(round_, "result", accepted, total.astype("<f8").tobytes(), others)
        else:
            result = await self._await("result", round_, holder)
            if result.included != accepted or len(result.body) != 8 * self.ctx.global_params.size:
                raise CKKSError(
                    f"the key holder's result names {list(result.included)}, not the accepted "
                    f"{list(accepted)}, or has the wrong size"
                )
            total = np.frombuffer(result.body, dtype="<f8").astype(np.float64)
            _check(total, gram, chosen, "the key holder's decrypted sum")
            self._check_own_row(round_, holder, members, gram, chosen, total)
        params = (self.ctx.global_params + total / len(accepted)).astype(np.float32)
        if not np.isfinite(params).all():
            raise CKKSError("the decrypted aggregate contains NaN or infinite values")
        committed = self._committed(round_)
        return Aggregate(params, [committed[a] for a in accepted])

    async def _agreed(self, phase: str, round_: int) -> wire.CkksMessage:
        """Key holder: the ``phase`` message (``gram`` or ``sum``) that a strict majority of the
        round's evaluators sent bit for bit, naming the members in ``included`` alike; an evaluator
        whose message differs is named (:attr:`named`, and this peer's log). Evaluation is
        deterministic, so honest evaluators agree to the bit; with at most ``f`` of the ``2f + 1``
        faulty, the ``f + 1`` honest ones are the majority."""
        evaluators = self.evaluators(round_)
        names = {e.address for e in evaluators}
        started, timeout = trio.current_time(), self.ctx.settings.round_timeout
        with trio.move_on_after(timeout):  # every evaluator, or a majority first
            await self.mailbox.wait_until(
                phase, round_, lambda got: names <= set(got) or majority(got, len(names)) != []
            )
        # stragglers get as long again as the majority took (they do the same work), to be compared
        took = trio.current_time() - started
        with trio.move_on_after(min(took, max(0.0, timeout - took))):
            await self.mailbox.wait_until(phase, round_, lambda got: names <= set(got))
        got = self.mailbox.get(phase, round_)
        agreeing = majority(got, len(names))
        dissent = sorted(set(got) - set(agreeing), key=str.lower) if agreeing else []
        if dissent:
            self.named.setdefault(round_, {}).update(dict.fromkeys(dissent, phase))
            self._alert(round_, OUTVOTED, evaluators=dissent, phase=phase, majority=len(agreeing))
            self.ctx.log.warning(
                "robust ckks: evaluator(s) %s sent a %s that differs from the one %d of %d "
                "evaluators computed bit for bit; named",
                dissent,
                phase,
                len(agreeing),
                len(evaluators),
                round=round_,
            )
        if not agreeing:
            raise CKKSError(
                f"no majority of the {len(evaluators)} evaluators sent the same {phase} "
                f"({len(wire.largest_group(got))} agree, {len(got)} arrived); refusing to decrypt"
            )
        return got[agreeing[0]]

    async def _publish_scalars(self, round_: int) -> None:
        """Key holder: decrypt the agreed Gram blob's scalars (only); send them to every member."""
        msg = await self._agreed("gram", round_)
        least = max(
            self.ctx.settings.min_contributors,
            rule_class(self.ctx.settings.rule).min_updates(self.ctx.settings.f),
        )
        self._check_counted(round_, msg.included, least, "Gram matrix")
        gram = await trio.to_thread.run_sync(
            self._holder(round_).decrypt_gram, msg.body, round_, len(msg.included)
        )
        await self._send(
            round_, "scalars", msg.included, gram.astype("<f8").tobytes(), self.ctx.others()
        )

    async def _decrypt_sum(
        self,
        round_: int,
        accepted: tuple[str, ...],
        gram: np.ndarray,
        chosen: RobustSelection,
    ) -> np.ndarray:
        """Key holder: decrypt the agreed sum only if it holds exactly the accepted set."""
        summed = await self._agreed("sum", round_)
        if summed.included != accepted:
            raise CKKSError(
                f"the aggregator's sum holds {list(summed.included)}, not the accepted {list(accepted)}"
            )
        least = self.ctx.settings.min_contributors
        self._check_counted(round_, accepted, least, "sum")
        out = await trio.to_thread.run_sync(
            lambda: self._holders[round_].decrypt_sum(summed.body, round_, min_summands=least)
        )
        if out.summands != len(accepted):
            raise CKKSError(
                f"the sum holds {out.summands} summands but names {len(accepted)} members"
            )
        total = out.values / 2.0**FACTOR_BITS if self.norm_bound else out.values
        _check(total, gram, chosen, "the aggregator's sum")
        return total

    def _check_own_row(self, round_, holder, members, gram, chosen, total) -> None:
        """This member's row of the key holder's scalars against the update it encrypted; on a
        mismatch, an alert on chain (best effort) and a CKKSError that names the key holder."""
        me, own = self.ctx.address.lower(), self._mine.get(round_)
        if own is None or me not in members:  # its ciphertext did not enter the Gram matrix
            return
        try:
            mine, bound = OwnRow(own, total, members.index(me)), scalar_bound(self.params)
            return check_own_row(mine, gram, chosen, self._noise, bound=bound, tail=TAIL)
        except ValueError as exc:
            check = str(exc)
        self.accused[round_] = self._alert(
            round_, FALSE_SCALARS, key_holder=holder.address, check=check
        )
        raise CKKSError(
            f"the key holder {holder.address} published false scalars in this member's row: "
            f"{check}; not attesting, keeping the previous model"
        )

    def _alert(self, round_: int, kind: str, **fields: object) -> dict[str, object]:
        """Record, signed by this member, an alert of ``kind`` on chain (best effort: a failure is
        logged); the body (``fields``, the kind, round and reporter) is returned, to keep."""
        body = {"kind": kind, "round": round_, **fields, "reporter": self.ctx.address}
        try:
            self.ctx.ledger.record_alert(round_, kind, body)
        except (LedgerError, ValueError) as exc:
            self.ctx.log.warning("robust ckks: alert %s not recorded: %s", kind, exc, round=round_)
        return body

    def _check_counted(self, round_: int, included: tuple[str, ...], least: int, what: str) -> None:
        """The members named must be committed under ckks on chain, at least ``least`` of them (the
        chain's count: the ciphertext header's could be rewritten by the aggregator)."""
        commitments, committed = self.ctx.ledger.commitments(round_), self._committed(round_)
        if len(set(included)) != len(included) or not set(included) <= set(committed):
            raise CKKSError(
                f"the aggregator's {what} names members with no commitment, or one twice: "
                f"{sorted(set(included) - set(committed))}"
            )
        counted = [a for a in included if commitments[committed[a]].mode == self.code]
        if len(counted) < least:
            raise CKKSError(
                f"the {what} holds {len(counted)} members with a ckks commitment on chain; refusing "
                f"to decrypt fewer than {least}"
            )

    async def _send(
        self, round_: int, phase: str, included: tuple[str, ...], body: bytes, to: list[Identity]
    ) -> None:
        """Send one message of ``phase`` to ``to``, and file it in this peer's own mailbox too."""
        msg = wire.CkksMessage(phase, round_, self.ctx.address, included, body)
        self.mailbox.put(phase, round_, self.ctx.address, msg)
        kind = next(k for k, p in self.kinds.items() if p == phase)
        await self.send_to(round_, kind, self.seal_for(round_, wire.encode(msg), to), to)

    def end_round(self, round_: int) -> None:
        super().end_round(round_)
        for d in (self._evaluators, self._mine):
            for r in [r for r in d if r <= round_]:
                del d[r]


def _check(total: np.ndarray, gram: np.ndarray, chosen: RobustSelection, what: str) -> None:
    try:
        check_sum(total, gram, chosen)
    except ValueError as exc:
        raise CKKSError(f"{what} contradicts the published scalars: {exc}") from None
