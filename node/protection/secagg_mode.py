"""The "secagg" mode: Bonawitz et al. 2017 pairwise masking among peers, with no server —
every peer plays the server's part for itself. The arithmetic is :mod:`node.crypto.secagg.masking`; this
module runs its five phases over libp2p blobs, each one sealed and signed
(:mod:`node.crypto.sealing`), so it is bound to this deployment, round and sender:

1. ``secagg-keys``: a fresh X25519 mask key per round, to every other member;
2. ``secagg-shares``: Shamir shares (threshold: a strict majority of the active members) of
   the self-mask seed and of the mask key, each sealed to its holder; the *participants*
   are this peer plus those whose shares reached it;
3. ``update`` (committed on chain like any update): the masked vector
   ``[w * delta, w]`` in fixed point, masked against the participants, where ``w`` is the
   committed sample count capped by the member's admission cohort and the active members'
   median cohort (:func:`node.consensus.rules.cohort_weight`: no peer sees the other claims
   before the sum, so the cap comes from the registry, read before training);
4. ``secagg-consistency``: once the masked inputs are in, the survivors are the members that
   committed on chain (the same set for every peer that reads the chain). Each peer that
   masked an input signs (participants, their mask keys' hash, survivors) and sends it to
   every member; no share is released until one such statement carries the signatures of
   more than 2n/3 survivors (:mod:`node.protection.secagg_consistency`, Bonawitz et al. 2017
   section 6), and a peer whose own view differs releases nothing;
5. ``secagg-unmask``: each survivor reveals, for that agreed statement only, its shares of
   the survivors' self-mask seeds and of the dropped participants' mask keys, after its
   on-disk release log confirmed it never released the other half of any member. Any
   ``threshold`` of them recover the sum, which must hold at least ``min_contributors``
   (default 3) committed updates.

With an aggregation committee its k seats play the server together (docs/secagg.md).

Weighted FedAvg then is ``sum(w * delta) / sum(w)``; the weight total must equal the one every
peer computes from the survivors' commitments on chain and the registry. With top-k
compression, every peer sends the same round-shared random coordinates
(:func:`node.consensus.compression.shared_indices`) with error feedback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import trio

from ledger.randomness import round_seed
from node.consensus.compression import shared_indices
from node.consensus.rules import clip_norms
from node.consensus.update import ModelUpdate, UpdateFormatError
from node.crypto.sealing import SealError, peek_context
from node.crypto.secagg.masking import (
    MaskSecrets,
    RingParams,
    SecAggError,
    decode_fixed,
    default_threshold,
    encode_fixed,
    mask_input,
    unmask_sum,
)
from node.protection import secagg_consistency as consistency
from node.protection import secagg_wire as wire
from node.protection.base import Aggregate, ProtectionMode, Rejected
from node.protection.secagg_dealing import (
    deal_to_members,
    deal_to_seats,
    seats_of,
    share_threshold,
)

if TYPE_CHECKING:
    from ledger import Commitment, Identity
    from node.protection.context import ModeContext

__all__ = ["SecAggMode"]

_KINDS = {
    "secagg-keys": "keys",
    "secagg-shares": "shares",
    "secagg-consistency": "consistency",
    "secagg-unmask": "unmask",
}


class SecAggMode(ProtectionMode):
    name = "secagg"
    code = 2
    sum_only = True

    def __init__(self, ctx: ModeContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.params = RingParams(s.secagg_ring_bits, s.secagg_frac_bits)
        self._participants: dict[int, tuple[str, ...]] = {}
        self._own: dict[int, wire.MaskedInput] = {}
        self._my_shares: dict[int, tuple[int, int, int]] = {}  # my own (x, b, s) of my secrets
        self._keys: dict[
            int, dict[str, bytes]
        ] = {}  # participants' mask keys (lower-case), mine included
        path = ctx.state_path
        self.released = consistency.ReleaseLog(
            None if path is None else path.with_suffix(".secagg-released.json")
        )

    # -- helpers -------------------------------------------------------------------------
    def _ctx_bytes(self, round_: int) -> bytes:
        d = self.ctx.ledger.deployment
        return f"{d.chain_id}|{d.addresses['RoundLedger'].lower()}|{round_}".encode()

    def _threshold(self, round_: int) -> int:
        """Shares that reconstruct: a strict majority of the members, or with a committee the
        quorum over its seats (the only holders)."""
        seats = seats_of(self.ctx, round_)
        if seats is not None:
            return share_threshold(seats)
        return default_threshold(len(self.ctx.members()))

    def _signers(self, round_: int) -> list[Identity]:
        """Who signs the consistency statement and releases shares: every member, or the
        round's seats."""
        seats = seats_of(self.ctx, round_)
        return [i for i in self.ctx.members() if seats is None or i.address.lower() in seats]

    def _indices(self, round_: int, n: int) -> np.ndarray | None:
        c = self.ctx.settings.compression
        if c is None or c.topk is None:
            return None
        return shared_indices(b"medmesh/secagg/topk|" + self._ctx_bytes(round_), n, c.kept(n))

    # -- inbound side channel ------------------------------------------------------------
    async def on_message(self, sender: Identity, kind: str, data: bytes) -> None:
        phase = _KINDS.get(kind)
        if phase is None:
            raise SealError(f"secagg takes no {kind!r} messages")
        round_ = peek_context(data).round
        try:
            msg = wire.decode(self.unseal(round_, sender, data), phase)
        except UpdateFormatError as exc:
            raise SealError(str(exc)) from None
        if msg.round != round_ or msg.sender.lower() != sender.address.lower():
            raise SealError(
                f"secagg {phase} message names round {msg.round} / sender {msg.sender}, "
                f"its envelope round {round_} / sender {sender.address}"
            )
        if isinstance(msg, wire.ShareBundle) and msg.holder.lower() != self.ctx.address.lower():
            raise SealError(f"shares addressed to {msg.holder}, not to this peer")
        self.mailbox.put(phase, round_, sender.address, msg)

    # -- protect: phases 1-3 -------------------------------------------------------------
    async def protect(self, update: ModelUpdate) -> bytes:
        r, me = update.round, self.ctx.address
        secrets = MaskSecrets.generate()
        seats = seats_of(self.ctx, r)
        if seats is None:  # phases 1 and 2 (node.protection.secagg_dealing)
            adverts, participants, mine = await deal_to_members(
                self, r, secrets, self._threshold(r)
            )
        else:
            adverts, participants, mine = await deal_to_seats(self, r, secrets, seats)
        if mine is not None:
            self._my_shares[r] = mine
        self._participants[r] = participants
        # phase 3: the masked, weighted, fixed-point update
        delta = update.delta.astype(np.float64)
        if self.ctx.settings.clip_norm is not None:
            delta = clip_norms(delta[None, :], self.ctx.settings.clip_norm)[0]
        idx = self._indices(r, delta.size)
        if idx is not None:
            _, delta = self.ctx.codec.sparse_for_secagg(
                ModelUpdate(r, me, update.samples, update.epsilon, delta.astype(np.float32)), idx
            )
        weight = self.ctx.claim_weight(
            me, update.samples
        )  # the claim bounded by the registry's cohorts
        x = encode_fixed(
            np.append(weight * delta.astype(np.float64), weight),
            self.params,
            len(self.ctx.members()),
        )
        keys = {a.lower(): m.mask_key for a, m in adverts.items() if a in participants}
        keys[me.lower()] = secrets.mask_public()
        self._keys[r] = keys
        y = mask_input(x, me, secrets, keys, self._ctx_bytes(r), self.params)
        self._own[r] = wire.MaskedInput(
            r,
            me.lower(),
            tuple(p.lower() for p in participants),
            self.params.ring_bits,
            self.params.frac_bits,
            y,
        )
        return self.seal_for(r, wire.encode(self._own[r]), self.ctx.aggregators(r))

    def own(self, update: ModelUpdate) -> wire.MaskedInput:
        return self._own[update.round]

    def update_recipients(self, round_: int) -> list[Identity]:
        """The round's committee, or every other member without one (docs/secagg.md)."""
        return self.ctx.aggregators(round_)

    def expected_update_senders(self, round_: int) -> set[str]:
        mine = self._participants.get(round_)
        if mine is None:
            return super().expected_update_senders(round_)
        return {
            i.address for i in self.ctx.others() if i.address.lower() in {p.lower() for p in mine}
        }

    def open(
        self, round_: int, sender: str, blob: bytes, commitment: Commitment, member: Identity
    ) -> wire.MaskedInput:
        try:
            msg = wire.decode(self.unseal(round_, member, blob), "masked")
        except SealError as exc:
            raise Rejected("bad-seal", str(exc)) from None
        except UpdateFormatError as exc:
            raise Rejected("bad-format", str(exc)) from None
        if not isinstance(msg, wire.MaskedInput):  # decode checked the phase: never taken
            raise Rejected("bad-format", f"a {type(msg).__name__} where a masked input belongs")
        if msg.round != round_ or msg.sender != sender.lower():
            raise Rejected(
                "bad-format", "masked input names another round or sender than its commitment"
            )
        mine = self._participants.get(round_)
        if mine is not None and tuple(p.lower() for p in mine) != msg.participants:
            raise Rejected(
                "bad-format", "masked input was masked with another set of participants than ours"
            )
        n = self.ctx.global_params.size
        idx = self._indices(round_, n)
        expected = (n if idx is None else idx.size) + 1
        if (msg.ring_bits, msg.frac_bits, msg.values.size) != (
            self.params.ring_bits,
            self.params.frac_bits,
            expected,
        ):
            raise Rejected(
                "bad-format",
                f"masked input has ring 2^{msg.ring_bits}/{msg.frac_bits} bits and "
                f"{msg.values.size} elements; expected {self.params.ring_bits}/"
                f"{self.params.frac_bits} and {expected}",
            )
        return msg

    # -- aggregate: phases 4 and 5 ------------------------------------------------------
    def _statement(self, round_: int, held: set[str] | None = None) -> consistency.Statement:
        """(participants, keys hash, survivors) as this peer saw them; the survivors are the
        committers on chain, the one view every peer reads alike. With a committee, only
        those whose masked input this seat ``held`` (lower-case; None: every committer): a
        follower that committed and vanished is then a dropped participant (docs/secagg.md)."""
        participants = tuple(p.lower() for p in self._participants[round_])
        committed = self.ctx.ledger.commitments(round_)
        survivors = tuple(
            sorted(
                a.lower()
                for a, c in committed.items()
                if c.mode == self.code
                and (held is None or seats_of(self.ctx, round_) is None or a.lower() in held)
            )
        )
        outside = sorted(set(survivors) - set(participants))
        if outside:
            raise SecAggError(
                f"committers {outside} never dealt this peer their shares; releasing no shares"
            )
        if len(survivors) < self.ctx.settings.min_contributors:
            raise SecAggError(
                f"only {len(survivors)} members committed masked inputs; a sum needs at least "
                f"{self.ctx.settings.min_contributors} (min_contributors): releasing no shares"
            )
        return participants, consistency.keys_hash(self._keys[round_]), survivors

    def _agreed(
        self, round_: int, mine: dict[str, wire.Consistency]
    ) -> consistency.Statement | None:
        got = {a.lower(): m for a, m in self.mailbox.get("consistency", round_).items()} | mine
        signed = [
            (a, (m.participants, m.keys_hash, m.survivors), m.signature) for a, m in got.items()
        ]
        signers = self._signers(round_)
        keys = {i.address.lower(): i.sign_key for i in signers}
        return consistency.agreed_statement(
            signed,
            keys,
            self._ctx_bytes(round_),
            round_,
            consistency.consistency_threshold(len(signers)),
        )

    async def _agree(self, round_: int, held: set[str]) -> consistency.Statement:
        """Sign and send this peer's statement (if it took part), then wait (bounded) for one
        statement to carry the consistency threshold of survivors' signatures."""
        me, ctx = self.ctx.address.lower(), self._ctx_bytes(round_)
        mine: dict[str, wire.Consistency] = {}
        if round_ in self._own:  # this peer masked an input: it holds shares and signs its view
            statement = self._statement(round_, held)
            signature = consistency.sign_statement(
                self.ctx.identity.sign_private, ctx, round_, statement
            )
            mine[me] = wire.Consistency(round_, me, *statement, signature)
            others = self.ctx.aggregators(round_)
            await self.send_to(
                round_,
                "secagg-consistency",
                self.seal_for(round_, wire.encode(mine[me]), others),
                others,
            )
        # a peer still waiting for a late masked input signs up to a whole round_timeout later
        with trio.move_on_after(2 * self.ctx.settings.round_timeout):
            await self.mailbox.wait_until(
                "consistency", round_, lambda _: self._agreed(round_, mine) is not None
            )
        agreed = self._agreed(round_, mine)
        if agreed is None:
            needed = consistency.consistency_threshold(len(self._signers(round_)))
            raise SecAggError(
                f"no survivor set carries {needed} signatures (the members' views of the round "
                f"differ); releasing no shares"
            )
        if mine and (mine[me].participants, mine[me].keys_hash, mine[me].survivors) != agreed:
            raise SecAggError(
                "the signed survivor set differs from this peer's view; releasing no shares"
            )
        return agreed

    async def _release(self, round_: int, agreed: consistency.Statement) -> wire.Unmask:
        """Send this peer's shares for the agreed statement: the survivors' self-mask seeds and
        the dropped participants' mask keys, after the release log allowed it."""
        me = self.ctx.address.lower()
        participants, _, survivors = agreed
        dropped = tuple(p for p in participants if p not in survivors)
        points = {a.lower(): b for a, b in self.mailbox.get("shares", round_).items()}
        x, b, _ = self._my_shares[round_]
        seeds = {
            u: (points[u].x, points[u].b) if u != me else (x, b)
            for u in survivors
            if u in points or u == me
        }
        keys = {d: (points[d].x, points[d].s) for d in dropped if d in points}
        digest = consistency.statement_digest(self._ctx_bytes(round_), round_, agreed)
        name = f"{round_}:{round_seed(self.ctx.ledger, round_, 'secagg-release').hex()}"  # unique across chains
        self.released.record(name, digest, seeds, keys)  # raises before anything leaves
        msg = wire.Unmask(round_, me, participants, survivors, seeds, keys)
        others = self.ctx.aggregators(round_)
        await self.send_to(
            round_, "secagg-unmask", self.seal_for(round_, wire.encode(msg), others), others
        )
        return msg

    async def aggregate(self, round_: int, opened: dict[str, wire.MaskedInput]) -> Aggregate:
        me, timeout = self.ctx.address, self.ctx.settings.round_timeout
        masked = {a.lower(): m for a, m in opened.items() if m is not None}
        agreed = await self._agree(round_, set(masked))
        participants, _, survivors = agreed
        mine = {me.lower(): await self._release(round_, agreed)} if round_ in self._own else {}
        absent = [u for u in survivors if u not in masked or masked[u].participants != participants]
        if absent:  # our shares helped the others; this peer cannot compute the sum itself
            raise SecAggError(
                f"no masked input over the agreed participants from {absent}; cannot unmask"
            )
        threshold = self._threshold(round_)
        adverts = {a.lower(): m for a, m in self.mailbox.get("keys", round_).items()}
        signers = {i.address.lower(): i.address for i in self._signers(round_)}
        helpers = {signers[h] for h in survivors if h != me.lower() and h in signers}
        with trio.move_on_after(timeout):
            await self.mailbox.wait_until("unmask", round_, lambda got: set(got) >= helpers)
        revealed = self.mailbox.get("unmask", round_)
        agreeing = consistency.agreeing(revealed, agreed, set(signers)) | mine
        for a in set(map(str.lower, revealed)) - set(agreeing):
            self.ctx.log.warning(
                "ignored unmask shares from %s: not for the agreed survivor set", a, round=round_
            )
        seeds, dkeys = consistency.reconstruct(agreeing, agreed, threshold)
        mask_keys = {a: adverts[a].mask_key for a in participants if a in adverts} | self._keys.get(
            round_, {}
        )
        missing = [p for p in participants if p not in mask_keys]
        if missing:
            raise SecAggError(f"no mask key advert from {missing}; cannot unmask")
        total = unmask_sum(
            {u: masked[u].values for u in survivors},
            mask_keys,
            seeds,
            dkeys,
            self._ctx_bytes(round_),
            self.params,
        )
        vec = decode_fixed(total, self.params)
        committed = self.ctx.ledger.commitments(round_)
        weight = sum(
            self.ctx.claim_weight(a, c.samples)
            for a, c in committed.items()
            if a.lower() in survivors
        )
        if round(vec[-1]) != weight:
            raise SecAggError(
                f"the unmasked weight total {vec[-1]:.0f} differs from the {weight:.0f} the survivors' "
                f"commitments on chain give (claims capped by the cohorts)"
            )
        mean = vec[:-1] / weight
        idx = self._indices(round_, self.ctx.global_params.size)
        step = np.zeros(self.ctx.global_params.size) if idx is not None else mean
        if idx is not None:
            step[idx] = mean
        accepted = [a for a in committed if a.lower() in survivors]
        return Aggregate(
            (self.ctx.global_params + step).astype(np.float32), sorted(accepted, key=str.lower)
        )

    def end_round(self, round_: int) -> None:
        super().end_round(round_)
        for d in (self._participants, self._own, self._my_shares, self._keys):
            for r in [r for r in d if r <= round_]:
                del d[r]
