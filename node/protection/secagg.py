"""The "secagg" mode: Bonawitz et al. 2017 pairwise masking among peers, with no server —
every peer plays the server's part for itself. The arithmetic is :mod:`node.secagg`; this
module runs its four phases over libp2p blobs, each one sealed and signed
(:mod:`node.sealing`), so it is bound to this deployment, round and sender:

1. ``secagg-keys``: a fresh X25519 mask key per round, to every other member;
2. ``secagg-shares``: Shamir shares (threshold: a strict majority of the active members) of
   the self-mask seed and of the mask key, each sealed to its holder; the *participants*
   are this peer plus those whose shares reached it;
3. ``update`` (committed on chain like any update): the masked vector
   ``[samples * delta, samples]`` in fixed point, masked against the participants;
4. ``secagg-unmask``: once the masked inputs are in, the survivors are the participants that
   committed on chain; each survivor reveals its shares of the survivors' self-mask seeds and
   of the dropped participants' mask keys. Any ``threshold`` of them recover the sum.

Weighted FedAvg then is ``sum(samples * delta) / sum(samples)``; the sample total must equal
the sum the survivors committed on chain. With top-k compression, every peer sends the same
round-shared random coordinates (:func:`node.compression.shared_indices`) with error feedback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from node import shamir
from node.aggregation import clip_norms
from node.compression import shared_indices
from node.protection import secagg_wire as wire
from node.protection.base import Aggregate, ProtectionMode, Rejected
from node.sealing import SealError, peek_context
from node.secagg import (MaskSecrets, RingParams, SecAggError, decode_fixed, default_threshold, encode_fixed,
                         mask_input, share_secrets, unmask_sum)
from node.update import ModelUpdate, UpdateFormatError

if TYPE_CHECKING:
    from ledger import Commitment, Identity

__all__ = ["SecAggMode"]

_KINDS = {"secagg-keys": "keys", "secagg-shares": "shares", "secagg-unmask": "unmask"}


class SecAggMode(ProtectionMode):
    name = "secagg"
    code = 2
    sum_only = True

    def __init__(self, peer) -> None:
        super().__init__(peer)
        s = peer.settings
        self.params = RingParams(s.secagg_ring_bits, s.secagg_frac_bits)
        self._participants: dict[int, tuple[str, ...]] = {}
        self._own: dict[int, wire.MaskedInput] = {}
        self._my_shares: dict[int, tuple[int, int, int]] = {}  # my own (x, b, s) of my secrets
        self._keys: dict[int, dict[str, bytes]] = {}  # participants' mask keys (lower-case), mine included

    # -- helpers -------------------------------------------------------------------------
    def _ctx_bytes(self, round_: int) -> bytes:
        d = self.peer.ledger.deployment
        return f"{d.chain_id}|{d.addresses['RoundLedger'].lower()}|{round_}".encode()

    def _threshold(self) -> int:
        return default_threshold(len(self.peer.active_members()))

    def _indices(self, round_: int, n: int) -> np.ndarray | None:
        c = self.peer.settings.compression
        if c is None or c.topk is None:
            return None
        return shared_indices(b"medmesh/secagg/topk|" + self._ctx_bytes(round_), n, c.kept(n))

    def _member(self, address: str) -> Identity:
        return next(i for i in self.peer.active_members() if i.address.lower() == address.lower())

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
            raise SealError(f"secagg {phase} message names round {msg.round} / sender {msg.sender}, "
                            f"its envelope round {round_} / sender {sender.address}")
        if phase == "shares" and msg.holder.lower() != self.peer.address.lower():
            raise SealError(f"shares addressed to {msg.holder}, not to this peer")
        self.mailbox.put(phase, round_, sender.address, msg)

    # -- protect: phases 1-3 -------------------------------------------------------------
    async def protect(self, update: ModelUpdate) -> bytes:
        r, me, timeout = update.round, self.peer.address, self.peer.settings.round_timeout
        others = self.peer._others()
        threshold = self._threshold()
        secrets = MaskSecrets.generate()
        # phase 1: advertise the mask key
        advert = wire.encode(wire.KeyAdvert(r, me, secrets.mask_public()))
        await self.send_to(r, "secagg-keys", self.seal_for(r, advert, others), others)
        adverts = await self.mailbox.wait_for("keys", r, {o.address for o in others}, timeout)
        dealt = sorted([me, *adverts], key=str.lower)
        if len(dealt) < threshold:
            raise SecAggError(f"only {len(dealt)} members advertised mask keys; secagg needs {threshold}")
        # phase 2: deal the shares, each sealed to its holder
        shares = share_secrets(secrets, dealt, threshold)
        for holder in dealt:
            x, b, s = shares[holder]
            if holder == me:
                self._my_shares[r] = (x, b, s)
                continue
            ident = self._member(holder)
            bundle = wire.encode(wire.ShareBundle(r, me, holder, x, b, s))
            await self.send_to(r, "secagg-shares", self.seal_for(r, bundle, [ident]), [ident])
        bundles = await self.mailbox.wait_for("shares", r, set(dealt) - {me}, timeout)
        participants = tuple(sorted([me, *(a for a in bundles if a in adverts)], key=str.lower))
        self._participants[r] = participants
        # phase 3: the masked, weighted, fixed-point update
        delta = update.delta.astype(np.float64)
        if self.peer.settings.clip_norm is not None:
            delta = clip_norms(delta[None, :], self.peer.settings.clip_norm)[0]
        idx = self._indices(r, delta.size)
        if idx is not None:
            _, delta = self.peer.codec.sparse_for_secagg(ModelUpdate(r, me, update.samples, update.epsilon,
                                                                     delta.astype(np.float32)), idx)
        x = encode_fixed(np.append(update.samples * delta.astype(np.float64), float(update.samples)),
                         self.params, len(self.peer.active_members()))
        keys = {a.lower(): m.mask_key for a, m in adverts.items() if a in participants}
        keys[me.lower()] = secrets.mask_public()
        self._keys[r] = keys
        y = mask_input(x, me, secrets, keys, self._ctx_bytes(r), self.params)
        self._own[r] = wire.MaskedInput(r, me.lower(), tuple(p.lower() for p in participants),
                                        self.params.ring_bits, self.params.frac_bits, y)
        return self.seal_for(r, wire.encode(self._own[r]), others)

    def own(self, update: ModelUpdate) -> wire.MaskedInput:
        return self._own[update.round]

    def expected_update_senders(self, round_: int) -> set[str]:
        mine = self._participants.get(round_)
        if mine is None:
            return super().expected_update_senders(round_)
        return {i.address for i in self.peer._others() if i.address.lower() in {p.lower() for p in mine}}

    def open(self, round_: int, sender: str, blob: bytes, commitment: Commitment, member: Identity) -> wire.MaskedInput:
        try:
            msg = wire.decode(self.unseal(round_, member, blob), "masked")
        except SealError as exc:
            raise Rejected("bad-seal", str(exc)) from None
        except UpdateFormatError as exc:
            raise Rejected("bad-format", str(exc)) from None
        if msg.round != round_ or msg.sender != sender.lower():
            raise Rejected("bad-format", "masked input names another round or sender than its commitment")
        mine = self._participants.get(round_)
        if mine is not None and tuple(p.lower() for p in mine) != msg.participants:
            raise Rejected("bad-format", "masked input was masked with another set of participants than ours")
        n = self.peer.global_params.size
        idx = self._indices(round_, n)
        expected = (n if idx is None else idx.size) + 1
        if (msg.ring_bits, msg.frac_bits, msg.values.size) != (self.params.ring_bits, self.params.frac_bits, expected):
            raise Rejected("bad-format", f"masked input has ring 2^{msg.ring_bits}/{msg.frac_bits} bits and "
                                         f"{msg.values.size} elements; expected {self.params.ring_bits}/"
                                         f"{self.params.frac_bits} and {expected}")
        return msg

    # -- aggregate: phase 4 --------------------------------------------------------------
    async def aggregate(self, round_: int, opened: dict[str, wire.MaskedInput]) -> Aggregate:
        me, timeout = self.peer.address, self.peer.settings.round_timeout
        masked = {a.lower(): m for a, m in opened.items() if m is not None}
        if not masked:
            raise SecAggError("no masked inputs to aggregate")
        participant_sets = {m.participants for m in masked.values()}
        if len(participant_sets) != 1:
            raise SecAggError("masked inputs disagree on the participants; cannot unmask")
        participants = participant_sets.pop()
        survivors = tuple(sorted(masked))
        dropped = tuple(p for p in participants if p not in masked)
        threshold = self._threshold()
        adverts = {a.lower(): m for a, m in self.mailbox.get("keys", round_).items()}
        received = {a.lower(): b for a, b in self.mailbox.get("shares", round_).items()}
        if round_ in self._my_shares:  # a participant reveals its shares to every other member
            points = dict(received)
            x, b, s = self._my_shares[round_]
            seeds = {u: (points[u].x, points[u].b) if u != me.lower() else (x, b) for u in survivors
                     if u in points or u == me.lower()}
            keys = {d: (points[d].x, points[d].s) for d in dropped if d in points}
            msg = wire.encode(wire.Unmask(round_, me, survivors, seeds, keys))
            others = self.peer._others()
            await self.send_to(round_, "secagg-unmask", self.seal_for(round_, msg, others), others)
            mine = {me.lower(): wire.Unmask(round_, me.lower(), survivors, seeds, keys)}
        else:
            mine = {}
        helpers = {p for p in survivors if p != me.lower()}
        revealed = await self.mailbox.wait_for("unmask", round_, {self._member(h).address for h in helpers}, timeout)
        agreeing = {a.lower(): u for a, u in revealed.items() if u.survivors == survivors} | mine
        for a in set(map(str.lower, revealed)) - set(agreeing):
            self.peer.log.warning("ignored unmask shares from %s: it saw other survivors", a, round=round_)
        try:
            seeds = {u: shamir.reconstruct([m.seeds[u] for m in agreeing.values() if u in m.seeds], threshold, 32)
                     for u in survivors}
            dkeys = {d: shamir.reconstruct([m.keys[d] for m in agreeing.values() if d in m.keys], threshold, 32)
                     for d in dropped}
        except shamir.ShamirError as exc:
            raise SecAggError(f"cannot unmask the sum ({len(dropped)} of {len(participants)} participants "
                              f"dropped, {len(agreeing)} revealed shares): {exc}") from None
        mask_keys = {a: adverts[a].mask_key for a in participants if a in adverts} | self._keys.get(round_, {})
        missing = [p for p in participants if p not in mask_keys]
        if missing:
            raise SecAggError(f"no mask key advert from {missing}; cannot unmask")
        total = unmask_sum({u: masked[u].values for u in survivors}, mask_keys, seeds, dkeys,
                           self._ctx_bytes(round_), self.params)
        vec = decode_fixed(total, self.params)
        committed = self.peer.ledger.commitments(round_)
        chain_samples = sum(c.samples for a, c in committed.items() if a.lower() in masked)
        if round(vec[-1]) != chain_samples:
            raise SecAggError(f"the unmasked sample total {vec[-1]:.0f} differs from the {chain_samples} the "
                              f"survivors committed on chain")
        mean = vec[:-1] / chain_samples
        idx = self._indices(round_, self.peer.global_params.size)
        step = np.zeros(self.peer.global_params.size) if idx is not None else mean
        if idx is not None:
            step[idx] = mean
        accepted = [a for a in committed if a.lower() in masked]
        return Aggregate((self.peer.global_params + step).astype(np.float32), sorted(accepted, key=str.lower))

    def end_round(self, round_: int) -> None:
        super().end_round(round_)
        for d in (self._participants, self._own, self._my_shares, self._keys):
            for r in [r for r in d if r <= round_]:
                del d[r]

