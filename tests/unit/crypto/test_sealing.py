"""Sealed envelopes: round trip, and every way a blob can be wrong."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.crypto.sealing import (
    Recipient,
    SealContext,
    SealError,
    blob_hash,
    open_sealed,
    peek_context,
    seal,
)

ALICE, BOB, CAROL, EVE = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "c" * 40, "0x" + "e" * 40
LEDGER = "0x" + "1" * 40


def raw(pub):
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture
def world():
    sign = Ed25519PrivateKey.generate()
    keys = {who: X25519PrivateKey.generate() for who in (BOB, CAROL, EVE)}
    ctx = SealContext(31337, LEDGER, 3, ALICE)
    blob = seal(
        b"patient-free update bytes" * 100,
        ctx,
        sign,
        [
            Recipient(BOB, raw(keys[BOB].public_key())),
            Recipient(CAROL, raw(keys[CAROL].public_key())),
        ],
    )
    return sign, keys, ctx, blob


def open_as(who, blob, keys, ctx, sign):
    return open_sealed(
        blob, ctx, sender_sign_key=raw(sign.public_key()), my_address=who, my_seal_key=keys[who]
    )


def test_every_recipient_reads_the_same_plaintext(world):
    sign, keys, ctx, blob = world
    assert (
        open_as(BOB, blob, keys, ctx, sign)
        == open_as(CAROL, blob, keys, ctx, sign)
        == b"patient-free update bytes" * 100
    )
    assert b"patient-free" not in blob
    assert peek_context(blob) == SealContext(31337, LEDGER.lower(), 3, ALICE.lower())
    assert len(blob_hash(blob)) == 32


def test_non_recipient_cannot_open(world):
    sign, keys, ctx, blob = world
    with pytest.raises(SealError, match="no key slot"):
        open_as(EVE, blob, keys, ctx, sign)


@pytest.mark.parametrize("offset", [10, 200, -100, -1])
def test_any_flipped_byte_is_rejected(world, offset):
    sign, keys, ctx, blob = world
    tampered = bytearray(blob)
    tampered[offset] ^= 0x01
    with pytest.raises(SealError):
        open_as(BOB, bytes(tampered), keys, ctx, sign)


def test_replay_into_another_round_is_rejected(world):
    sign, keys, ctx, blob = world
    with pytest.raises(SealError, match="replay"):
        open_as(BOB, blob, keys, SealContext(31337, LEDGER, 4, ALICE), sign)


def test_wrong_signer_is_rejected(world):
    _, keys, ctx, blob = world
    with pytest.raises(SealError, match="bad signature"):
        open_as(BOB, blob, keys, ctx, Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    "junk", [b"", b"MMS1", b"XXXX" + bytes(100), b"MMS1\xff\xff\xff\xff" + bytes(80)]
)
def test_garbage_gives_a_clear_error(world, junk):
    sign, keys, ctx, _ = world
    with pytest.raises(SealError):
        open_as(BOB, junk, keys, ctx, sign)


def test_a_slot_holding_another_content_key_is_caught(world):
    """Key commitment (Albertini et al. 2022): a sender who wraps a different content key for
    Carol, with a ciphertext and signature that are otherwise valid, is caught by Carol."""
    import json
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from node.crypto import sealing

    sign, keys, ctx, blob = world
    hlen = struct.unpack(">I", blob[4:8])[0]
    header = json.loads(blob[8 : 8 + hlen])
    eph_pub = bytes.fromhex(header["eph"])
    # Carol's slot now wraps a second key (the sender knows the ephemeral secret; the test
    # derives the same wrap key from Carol's side of the exchange)
    carol_pub = raw(keys[CAROL].public_key())
    shared = keys[CAROL].exchange(sealing.X25519PublicKey.from_public_bytes(eph_pub))
    wrap = AESGCM(sealing._wrap_key(shared, eph_pub, carol_pub, ctx))
    header["slots"][CAROL] = wrap.encrypt(
        bytes(12), AESGCM.generate_key(bit_length=256), None
    ).hex()
    new_header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    prefix = blob[:4] + struct.pack(">I", len(new_header)) + new_header
    forged = prefix + blob[8 + hlen : -64]  # the sender re-signs the new body
    forged += sign.sign(sealing._signed_message(forged))
    with pytest.raises(SealError, match="key commitment"):
        open_as(CAROL, forged, keys, ctx, sign)
