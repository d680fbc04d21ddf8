"""The "sealed" mode: every update is sealed for the other registered peers
(:mod:`node.crypto.sealing`), so each peer sees every individual update and may use any
aggregation rule, robust ones included. Optional compression (:mod:`node.consensus.compression`)
shrinks the plaintext before sealing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.randomness import round_seed
from node.consensus.rules import outcome_by_peer, rule_class
from node.consensus.update import ModelUpdate, UpdateFormatError
from node.crypto.sealing import SealError
from node.protection.base import Aggregate, ProtectionMode, Rejected

if TYPE_CHECKING:
    from ledger import Commitment, Identity

__all__ = ["SealedMode"]


class SealedMode(ProtectionMode):
    name = "sealed"
    code = 1
    sum_only = False
    opens_off_loop = (
        True  # SHA-256, Ed25519 and AES-GCM release the GIL; open reads only its arguments
    )

    _sent: ModelUpdate | None = None

    async def protect(self, update: ModelUpdate) -> bytes:
        plaintext = self.ctx.codec.encode(update)
        # aggregate our own update exactly as the others will decode it (compression loses bits)
        self._sent = self.ctx.codec.decode(plaintext, expected_values=update.delta.size)
        return self.seal_for(update.round, plaintext, self.ctx.aggregators(update.round))

    def update_recipients(self, round_: int) -> list[Identity]:
        """The round's committee, or every other member without one (docs/committee.md)."""
        return self.ctx.aggregators(round_)

    def own(self, update: ModelUpdate) -> ModelUpdate:
        assert self._sent is not None and self._sent.round == update.round, "own() before protect()"
        return self._sent

    def open(
        self, round_: int, sender: str, blob: bytes, commitment: Commitment, member: Identity
    ) -> ModelUpdate:
        try:
            plaintext = self.unseal(round_, member, blob)
        except SealError as exc:
            raise Rejected("bad-seal", str(exc)) from None
        try:
            update = self.ctx.codec.decode(plaintext, expected_values=self.ctx.global_params.size)
        except UpdateFormatError as exc:
            raise Rejected("bad-format", str(exc)) from None
        if (update.round, update.sender, update.samples) != (round_, sender, commitment.samples):
            raise Rejected("bad-format", "update metadata differs from the on-chain commitment")
        return update

    async def aggregate(self, round_: int, opened: dict[str, ModelUpdate]) -> Aggregate:
        """The consortium's rule on the opened updates: claims (Ñ, :mod:`node.learning.privacy`) bounded by
        each member's cohort on chain (``ceilings``), and with ``bucket_size > 1`` bucketing seeded
        by the round's public seed (:func:`ledger.randomness.round_seed`), so every peer buckets alike."""
        s = self.ctx.settings
        deltas = {a: u.delta for a, u in opened.items()}
        cohorts: dict[str, float] | None = None  # FedAvg's ceilings
        if rule_class(s.rule).weighted:
            cohorts = {a: self.ctx.cohort(a) for a in opened}
        seed = (
            int.from_bytes(round_seed(self.ctx.ledger, round_, "bucketing")[:8], "big")
            if s.bucket_size > 1
            else 0
        )
        out = outcome_by_peer(
            s.rule,
            deltas,
            {a: u.samples for a, u in opened.items()},
            f=s.f,
            clip=s.norm_bound,
            ceilings=cohorts,
            bucket=s.bucket_size,
            seed=seed,
        )  # one pass
        return Aggregate((self.ctx.global_params + out.params).astype("float32"), out.accepted)
