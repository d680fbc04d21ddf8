"""A hospital peer's long-lived keys, created once and kept in a 0600 key file.

- an Ethereum account key: signs every chain transaction (the registry binds it);
- a libp2p Ed25519 seed: the peer ID other hospitals dial and authorize;
- an X25519 sealing key: others seal updates to its public half;
- an Ed25519 signing key: signs every update this peer sends.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import institution_id
from node.service.fsutil import atomic_write_json

__all__ = ["NodeIdentity"]


def _raw_public(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class NodeIdentity:
    institution: str
    eth_key: bytes
    libp2p_seed: bytes
    seal_secret: bytes
    sign_secret: bytes

    @classmethod
    def generate(cls, institution: str) -> NodeIdentity:
        return cls(
            institution,
            os.urandom(32),
            os.urandom(32),
            X25519PrivateKey.generate().private_bytes_raw(),
            Ed25519PrivateKey.generate().private_bytes_raw(),
        )

    # -- derived keys ------------------------------------------------------------------
    @property
    def account(self) -> LocalAccount:
        return Account.from_key(self.eth_key)

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def institution_id(self) -> bytes:
        return institution_id(self.institution)

    @property
    def seal_private(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self.seal_secret)

    @property
    def sign_private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.sign_secret)

    @property
    def seal_public(self) -> bytes:
        return _raw_public(self.seal_private)

    @property
    def sign_public(self) -> bytes:
        return _raw_public(self.sign_private)

    # -- key file ----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the key file with mode 0600 (atomically)."""
        atomic_write_json(
            Path(path),
            {
                "version": 1,
                "institution": self.institution,
                "eth_key": self.eth_key.hex(),
                "libp2p_seed": self.libp2p_seed.hex(),
                "seal_secret": self.seal_secret.hex(),
                "sign_secret": self.sign_secret.hex(),
            },
            mode=0o600,
        )

    @classmethod
    def load(cls, path: Path) -> NodeIdentity:
        path = Path(path)
        try:
            obj = json.loads(path.read_text())
            keys = {
                k: bytes.fromhex(obj[k])
                for k in ("eth_key", "libp2p_seed", "seal_secret", "sign_secret")
            }
            institution = str(obj["institution"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"identity file {path} is unreadable: {exc}") from None
        if any(len(v) != 32 for v in keys.values()):
            raise ValueError(f"identity file {path}: every key must be 32 bytes")
        if path.stat().st_mode & 0o077:
            raise ValueError(f"identity file {path} is readable by others; run chmod 600 {path}")
        return cls(institution, **keys)
