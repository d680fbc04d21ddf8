"""The "sealed" protection mode: an update only registered peers can read, signed by its sender.

Hybrid encryption in the style of HPKE (RFC 9180) built from ``cryptography`` primitives:

1. a fresh 256-bit content key ``K`` encrypts the update with AES-256-GCM; the header is the
   associated data, so none of it can be changed;
2. one ephemeral X25519 key per envelope; for each recipient ``R`` (registry seal key), ``K``
   is wrapped with AES-256-GCM under ``HKDF-SHA256(X25519(eph, R), salt=eph_pub || R,
   info=context)`` — a key used exactly once, so a zero nonce is safe;
3. ``commit = SHA-256(label || K)`` in the header makes the envelope key-committing
   (Albertini et al., "How to Abuse and Fix Authenticated Encryption Without Key
   Commitment", USENIX Security 2022, §5): every recipient unwraps the same ``K``, and
   AES-GCM decryption under one key, nonce and associated data is a function of the
   ciphertext, so a sender cannot craft slots that open to different plaintexts for
   different recipients (AES-GCM alone is not committing). Committing to the key alone
   costs a hash of 32 bytes instead of one over the whole update;
4. an Ed25519 signature by the sender's registered signing key over ``label ||
   SHA-256(body)``, ``body`` being every byte before it (hash-then-sign, as Ed25519ph in
   RFC 8032 §5.1; SHA-256 runs at ~2 GB/s where Ed25519 over a 4 MB message spends
   ~15-30 ms in SHA-512).

The header binds the envelope to (chain id, round-ledger address, round, sender): a blob
replayed into another round, deployment or sender's name fails with :class:`SealError`.
The committed on-chain hash is SHA-256 of the whole blob, so every peer can check that it
received exactly the bytes the sender committed to (equivocation shows up as a mismatch).

Layout: ``b"MMS2" | u32 header length | header JSON | ciphertext | signature (64 bytes)``.
Sealing makes one pass of AES-GCM and one of SHA-256 over the update; opening one of
each, and no copy of it beyond the plaintext it returns.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.errors import MedmeshError

__all__ = [
    "SealContext",
    "Recipient",
    "SealError",
    "seal",
    "open_sealed",
    "peek_context",
    "blob_hash",
]

_MAGIC = b"MMS2"
_VERSION = 2
_COMMIT_LABEL = b"medmesh/sealed/v2/commit|"
_SIG_LABEL = b"medmesh/sealed/v2/sig|"
_SIG = 64
_MAX_HEADER = 1 << 20
_ZERO_NONCE = bytes(12)


class SealError(MedmeshError, ValueError):
    """A sealed envelope failed a check; the message names which one."""


@dataclass(frozen=True)
class SealContext:
    """Where an envelope belongs: one sender's update in one round of one deployment."""

    chain_id: int
    ledger: str
    round: int
    sender: str

    def info(self) -> bytes:
        return f"medmesh/sealed/v1|{self.chain_id}|{self.ledger.lower()}|{self.round}|{self.sender.lower()}".encode()


@dataclass(frozen=True)
class Recipient:
    address: str
    seal_key: bytes  # raw X25519 public key, as registered on chain


def blob_hash(blob: bytes) -> bytes:
    """The 32-byte hash a sender commits on chain for a blob."""
    return hashlib.sha256(blob).digest()


def _wrap_key(shared: bytes, eph_pub: bytes, recipient_pub: bytes, ctx: SealContext) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=eph_pub + recipient_pub,
        info=ctx.info() + b"|wrap",
    ).derive(shared)


def _commit(key: bytes) -> bytes:
    return hashlib.sha256(_COMMIT_LABEL + key).digest()


def _signed_message(*body: bytes | memoryview) -> bytes:
    """What the sender's Ed25519 key signs: a label and the SHA-256 of the body (given in parts)."""
    digest = hashlib.sha256()
    for part in body:
        digest.update(part)
    return _SIG_LABEL + digest.digest()


def seal(
    plaintext: bytes, ctx: SealContext, sign_key: Ed25519PrivateKey, recipients: list[Recipient]
) -> bytes:
    """Encrypt ``plaintext`` for ``recipients`` and sign it as ``ctx.sender``."""
    if not recipients:
        raise SealError("no recipients to seal for")
    content_key = AESGCM.generate_key(bit_length=256)
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    slots = {}
    for r in sorted(recipients, key=lambda r: r.address.lower()):
        shared = eph.exchange(X25519PublicKey.from_public_bytes(r.seal_key))
        wrap = AESGCM(_wrap_key(shared, eph_pub, r.seal_key, ctx))
        slots[r.address.lower()] = wrap.encrypt(_ZERO_NONCE, content_key, None).hex()
    nonce = os.urandom(12)
    header = json.dumps(
        {
            "v": _VERSION,
            "chain_id": ctx.chain_id,
            "ledger": ctx.ledger.lower(),
            "round": ctx.round,
            "sender": ctx.sender.lower(),
            "eph": eph_pub.hex(),
            "nonce": nonce.hex(),
            "commit": _commit(content_key).hex(),
            "slots": slots,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    prefix = _MAGIC + struct.pack(">I", len(header)) + header
    ciphertext = AESGCM(content_key).encrypt(nonce, plaintext, prefix)
    signature = sign_key.sign(_signed_message(prefix, ciphertext))
    return b"".join((prefix, ciphertext, signature))


def _parse(blob: bytes) -> tuple[dict, bytes, memoryview, bytes]:
    if len(blob) < 8 + _SIG or blob[:4] != _MAGIC:
        raise SealError("not a sealed medmesh envelope (bad magic or too short)")
    (hlen,) = struct.unpack(">I", blob[4:8])
    if hlen > _MAX_HEADER or 8 + hlen + _SIG > len(blob):
        raise SealError(f"envelope header length {hlen} is out of bounds")
    prefix = blob[: 8 + hlen]
    try:
        header = json.loads(prefix[8:])
        if not isinstance(header, dict) or header.get("v") != _VERSION:
            raise ValueError("unsupported version")
    except ValueError as exc:
        raise SealError(f"malformed envelope header ({exc})") from None
    return header, prefix, memoryview(blob)[8 + hlen : -_SIG], blob[-_SIG:]


def peek_context(blob: bytes) -> SealContext:
    """The context an envelope *claims* (unverified): for routing before :func:`open_sealed`."""
    return _claimed_context(_parse(blob)[0])


def _claimed_context(header: dict) -> SealContext:
    try:
        return SealContext(
            int(header["chain_id"]),
            str(header["ledger"]),
            int(header["round"]),
            str(header["sender"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise SealError(f"malformed envelope header ({exc})") from None


def open_sealed(
    blob: bytes,
    expected: SealContext,
    *,
    sender_sign_key: bytes,
    my_address: str,
    my_seal_key: X25519PrivateKey,
) -> bytes:
    """Verify and decrypt an envelope addressed to ``my_address``; raise :class:`SealError`."""
    header, prefix, ciphertext, signature = _parse(blob)
    try:
        Ed25519PublicKey.from_public_bytes(sender_sign_key).verify(
            signature, _signed_message(memoryview(blob)[:-_SIG])
        )
    except (InvalidSignature, ValueError):
        raise SealError(f"bad signature: envelope was not signed by {expected.sender}") from None
    claimed = _claimed_context(header)
    if claimed.info() != expected.info():
        raise SealError(
            f"envelope is bound to round {claimed.round} of {claimed.ledger} from "
            f"{claimed.sender}, expected round {expected.round} of {expected.ledger.lower()} "
            f"from {expected.sender.lower()} (replay?)"
        )
    slot = header.get("slots", {}).get(my_address.lower())
    if slot is None:
        raise SealError(f"envelope has no key slot for {my_address}")
    try:
        eph_pub = bytes.fromhex(header["eph"])
        my_pub = my_seal_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        shared = my_seal_key.exchange(X25519PublicKey.from_public_bytes(eph_pub))
        content_key = AESGCM(_wrap_key(shared, eph_pub, my_pub, expected)).decrypt(
            _ZERO_NONCE, bytes.fromhex(slot), None
        )
        commit_ok = _commit(content_key) == bytes.fromhex(header.get("commit", ""))
        if commit_ok:
            plaintext = AESGCM(content_key).decrypt(
                bytes.fromhex(header["nonce"]), ciphertext, prefix
            )
    except (InvalidTag, ValueError, KeyError, TypeError) as exc:
        raise SealError(
            f"envelope does not decrypt ({type(exc).__name__}): tampered or not for us"
        ) from None
    if not commit_ok:  # a slot that unwraps to another key than the one the header commits to
        raise SealError("envelope's key commitment does not match its content key")
    return plaintext
