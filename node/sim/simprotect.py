"""The protection modes' arithmetic as :data:`node.sim.simulation.Protect` hooks, for benchmarks.

Each hook runs the *real* cryptographic arithmetic of one mode on a round's stack of deltas,
with no network and no chain, so a utility benchmark shows what that mode costs in accuracy:

- ``sealed`` (:mod:`node.protection.sealed_mode`): each update is encoded by the peer's
  :class:`~node.consensus.compression.UpdateCodec` (top-k with error feedback, Stich et al. 2018),
  sealed for the aggregator (:func:`node.crypto.sealing.seal`), opened and decoded, then aggregated
  in plaintext by any rule;
- ``secagg`` (:mod:`node.protection.secagg_mode`, Bonawitz et al. 2017): ``[w * delta, w]`` in
  fixed point (:func:`node.crypto.secagg.masking.encode_fixed`), pairwise- and self-masked
  (:func:`node.crypto.secagg.masking.mask_input`), summed and unmasked (:func:`node.crypto.secagg.masking.unmask_sum`),
  decoded; with compression every site sends the round's shared random-k coordinates
  (:func:`node.consensus.compression.shared_indices`) with error feedback;
- ``ckks`` (:mod:`node.protection.ckks_mode`, Cheon et al. 2017): every site but the round's key
  holder encrypts ``[w * delta, w]`` under the key holder's fresh public key, the ciphertexts
  are added, and the key holder decrypts the sum, adds its own update in the clear and divides
  (:meth:`node.crypto.ckks.scheme.CKKSKeyHolder.decrypt_weighted_mean`).

A hook keeps per-site state across rounds (error-feedback residuals, a round counter), so make a
fresh one per campaign with :func:`make_protect`.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.consensus.compression import CompressionConfig, UpdateCodec, shared_indices
from node.consensus.rules import aggregate
from node.consensus.update import ModelUpdate
from node.crypto.ckks.scheme import CKKSKeyHolder
from node.crypto.sealing import Recipient, SealContext, open_sealed, seal
from node.crypto.secagg.masking import (
    MaskSecrets,
    RingParams,
    decode_fixed,
    encode_fixed,
    mask_input,
    unmask_sum,
)
from node.sim.simulation import Protect

__all__ = ["MODES", "make_protect"]

MODES = ("sealed", "secagg", "ckks")
_CHAIN_ID, _LEDGER = (
    0,
    "0x" + "00" * 20,
)  # a fixed, made-up deployment to bind envelopes and masks to


def _site(i: int) -> str:
    return f"0x{i + 1:040x}"


class _Rounds:
    def __init__(self, compression: CompressionConfig | None) -> None:
        self.compression = compression
        self.round = 0
        self.codecs: list[UpdateCodec] = []

    def __call__(self, deltas: np.ndarray, weights: list[float], rule: str) -> np.ndarray:
        if not self.codecs:
            self.codecs = [UpdateCodec(self.compression, deltas.shape[1]) for _ in deltas]
        out = self.step(np.asarray(deltas, dtype=np.float32), weights, rule)
        self.round += 1
        return out

    def step(self, deltas: np.ndarray, weights: list[float], rule: str) -> np.ndarray:
        raise NotImplementedError


class _Sealed(_Rounds):
    def __init__(self, compression: CompressionConfig | None) -> None:
        super().__init__(compression)
        self.sign = Ed25519PrivateKey.generate()
        self.sign_pub = self.sign.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.agg_key = X25519PrivateKey.generate()
        self.agg = Recipient(
            _site(999), self.agg_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )

    def step(self, deltas, weights, rule):
        opened = []
        for i, (delta, w) in enumerate(zip(deltas, weights, strict=False)):
            ctx = SealContext(_CHAIN_ID, _LEDGER, self.round, _site(i))
            plain = self.codecs[i].encode(ModelUpdate(self.round, _site(i), int(w), 0.0, delta))
            blob = seal(plain, ctx, self.sign, [self.agg])
            back = open_sealed(
                blob,
                ctx,
                sender_sign_key=self.sign_pub,
                my_address=self.agg.address,
                my_seal_key=self.agg_key,
            )
            opened.append(self.codecs[i].decode(back, expected_values=delta.size).delta)
        return aggregate(rule, np.stack(opened), weights)


class _SecAgg(_Rounds):
    params = RingParams()  # the peers' defaults: 32-bit ring, 16 fractional bits

    def step(self, deltas, weights, rule):
        if rule != "fedavg":
            raise ValueError(f"secagg reveals only the sum: rule must be fedavg, not {rule}")
        n, d = deltas.shape
        context = f"{_CHAIN_ID}|{_LEDGER}|{self.round}".encode()
        idx = None
        if self.compression is not None:
            idx = shared_indices(b"medmesh/secagg/topk|" + context, d, self.compression.kept(d))
        secrets = [MaskSecrets.generate() for _ in range(n)]
        keys = {_site(i): s.mask_public() for i, s in enumerate(secrets)}
        masked = {}
        for i, (delta, w) in enumerate(zip(deltas, weights, strict=False)):
            sent = (
                delta
                if idx is None
                else self.codecs[i].sparse_for_secagg(
                    ModelUpdate(self.round, _site(i), int(w), 0.0, delta), idx
                )[1]
            )
            x = encode_fixed(np.append(w * sent.astype(np.float64), w), self.params, n)
            masked[_site(i)] = mask_input(x, _site(i), secrets[i], keys, context, self.params)
        total = decode_fixed(
            unmask_sum(
                masked,
                keys,
                {_site(i): s.self_seed for i, s in enumerate(secrets)},
                {},
                context,
                self.params,
            ),
            self.params,
        )
        mean = total[:-1] / total[-1]
        if idx is None:
            return mean.astype(np.float32)
        dense = np.zeros(d, dtype=np.float32)
        dense[idx] = mean
        return dense


class _Ckks(_Rounds):
    def step(self, deltas, weights, rule):
        if rule != "fedavg":
            raise ValueError(f"ckks reveals only the sum: rule must be fedavg, not {rule}")
        if len(deltas) < 2:
            raise ValueError("ckks needs at least two sites (a key holder and an aggregator)")
        # as in the live mode: a fresh key holder every round, taking turns over the sites; it
        # encrypts nothing and adds its own update in the clear after decrypting the others' sum
        holder, own = CKKSKeyHolder(), self.round % len(deltas)
        blobs = [
            holder.public.encrypt_weighted(delta.astype(np.float64), float(w), self.round)
            for i, (delta, w) in enumerate(zip(deltas, weights, strict=False))
            if i != own
        ]
        total = holder.public.sum(blobs, self.round)
        return holder.decrypt_weighted_mean(
            total,
            self.round,
            expected_weight=float(sum(weights) - weights[own]),
            own=(deltas[own].astype(np.float64), float(weights[own])),
        ).mean.astype(np.float32)


def make_protect(mode: str, compression: CompressionConfig | None = None) -> Protect:
    """A fresh hook for one campaign; ``compression`` applies to sealed (top-k) and secagg (shared random-k)."""
    if mode == "sealed":
        return _Sealed(compression)
    if mode == "secagg":
        return _SecAgg(compression)
    if mode == "ckks":
        if compression is not None:
            raise ValueError("ckks takes no compression: ciphertexts are summed slot by slot")
        return _Ckks(None)
    raise ValueError(f"unknown protection mode {mode!r}; choose one of {', '.join(MODES)}")
