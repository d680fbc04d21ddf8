"""Chain calls of the per-round commit-reveal beacon (``contracts/RoundBeacon.sol``).

Before round ``r`` opens, each member commits ``keccak256(abi.encode(secret, member, r,
beacon))``; after it opens, each reveals its secret within the reveal window. The beacon's
value for ``r`` is ``keccak256(abi.encode(mix, r, chain_id, beacon))`` where ``mix`` is the XOR
of ``keccak256(abi.encode(secret, member))`` over the revealed secrets: the same whatever the
reveal order. It is ``ready`` once every committer revealed (or the window closed) with a
quorum of the round's members revealed, ``failed`` if the window closed short of that quorum.

:func:`value_from_reveals` recomputes the value from the ``SecretRevealed`` events alone (what
an audit does, :mod:`ledger.audit`), not from the contract's own view.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_abi import encode
from eth_utils import keccak
from web3 import Web3
from web3.types import TxReceipt

from .chain import event_topic, get_logs
from .errors import LedgerError

if TYPE_CHECKING:
    from .client import LedgerClient

__all__ = [
    "BEACON_STATUSES",
    "BeaconInfo",
    "new_secret",
    "secret_commitment",
    "commit_secret",
    "reveal_secret",
    "record_withheld",
    "beacon_info",
    "commitment_of",
    "withheld_count",
    "revealed_secrets",
    "value_from_reveals",
]

#: ``RoundBeacon.BeaconStatus`` by value.
BEACON_STATUSES = ("committing", "revealing", "ready", "failed")


@dataclass(frozen=True)
class BeaconInfo:
    """A round's beacon: ``value`` is None unless ``status`` is ``ready``; ``needed`` reveals
    make it ready (0 before the round opens); ``reveal_deadline`` is 0 before it opens."""

    round: int
    status: str
    value: bytes | None
    commits: int
    reveals: int
    needed: int
    reveal_deadline: int


def new_secret() -> bytes:
    """32 bytes from the OS's CSPRNG: a member's secret for one round."""
    return secrets.token_bytes(32)


def secret_commitment(secret: bytes, account: str, round_: int, beacon_address: str) -> bytes:
    """``keccak256(abi.encode(secret, account, round, beacon))``: what a member commits."""
    return keccak(
        encode(
            ["bytes32", "address", "uint256", "address"],
            [
                _secret(secret),
                Web3.to_checksum_address(account),
                int(round_),
                Web3.to_checksum_address(beacon_address),
            ],
        )
    )


def _secret(secret: bytes) -> bytes:
    if not isinstance(secret, bytes) or len(secret) != 32:
        raise LedgerError("a beacon secret must be 32 bytes")
    return secret


def commit_secret(client: LedgerClient, round_: int, secret: bytes) -> TxReceipt:
    """Commit ``secret`` for ``round_`` (the round after the current one) as ``client``."""
    commitment = secret_commitment(secret, client.address, round_, client.beacon.address)
    return client._send("beacon_commit", client.beacon.functions.commit(int(round_), commitment))


def reveal_secret(client: LedgerClient, round_: int, secret: bytes) -> TxReceipt:
    """Reveal ``secret`` for the opened ``round_`` as ``client``."""
    return client._send(
        "beacon_reveal", client.beacon.functions.reveal(int(round_), _secret(secret))
    )


def record_withheld(client: LedgerClient, round_: int, account: str) -> TxReceipt:
    """Put on the record that ``account`` committed for ``round_`` and did not reveal in time."""
    fn = client.beacon.functions.recordWithheld(int(round_), Web3.to_checksum_address(account))
    return client._send("beacon_record_withheld", fn)


def beacon_info(client: LedgerClient, round_: int) -> BeaconInfo:
    """The beacon of ``round_`` as the contract reports it now."""
    raw = client._call(client.beacon.functions.beacon(int(round_)))
    status = BEACON_STATUSES[raw.status]
    return BeaconInfo(
        int(round_),
        status,
        bytes(raw.value) if status == "ready" else None,
        int(raw.commits),
        int(raw.reveals),
        int(raw.needed),
        int(raw.revealDeadline),
    )


def commitment_of(client: LedgerClient, round_: int, account: str) -> tuple[bytes | None, bool]:
    """(commitment or None, revealed) of ``account`` for ``round_``."""
    commitment, revealed = client._call(
        client.beacon.functions.commitmentOf(int(round_), Web3.to_checksum_address(account))
    )
    return (bytes(commitment) if any(commitment) else None), bool(revealed)


def withheld_count(client: LedgerClient, account: str) -> int:
    """How many of ``account``'s withholdings are on the record."""
    return int(
        client._call(client.beacon.functions.withheldCount(Web3.to_checksum_address(account)))
    )


def revealed_secrets(client: LedgerClient, round_: int) -> dict[str, bytes]:
    """Checksum address -> secret of every ``SecretRevealed`` event of ``round_``."""
    topics: list[bytes | None] = [
        event_topic(client.beacon, "SecretRevealed"),
        int(round_).to_bytes(32, "big"),
    ]
    found = get_logs(client.w3, [client.beacon.address], client.deployment.start_block, topics)
    out: dict[str, bytes] = {}
    for log in found:
        account = Web3.to_checksum_address(bytes(log["topics"][2])[-20:])
        out[account] = bytes(log["data"])[:32]
    return out


def value_from_reveals(
    chain_id: int, beacon_address: str, round_: int, reveals: dict[str, bytes]
) -> bytes:
    """The beacon value of ``round_`` recomputed from its reveals (account -> secret)."""
    mix = 0
    for account, secret in reveals.items():
        mix ^= int.from_bytes(
            keccak(
                encode(["bytes32", "address"], [_secret(secret), Web3.to_checksum_address(account)])
            ),
            "big",
        )
    return keccak(
        encode(
            ["bytes32", "uint256", "uint256", "address"],
            [
                mix.to_bytes(32, "big"),
                int(round_),
                int(chain_id),
                Web3.to_checksum_address(beacon_address),
            ],
        )
    )
