"""Per-round public randomness read from the chain.

:func:`round_seed` hashes the hash of the block that opened a round (its ``RoundOpened``
event) with the deployment and the round number. No member knows it before the round opens,
and a member that only sends transactions does not produce the block. What it does not
resist: whoever produces blocks (a validator, the sequencer of a PoA devnet, the embedded
chain's process) can withhold, reorder and grind over hashes; and on a chain that mines one
block per transaction (anvil's automine, the embedded chain) the opener can predict the
block its transaction makes and grind by varying that transaction. Unbiasable draws need a
beacon (RANDAO, a VRF, drand) or a commit-reveal among members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils import keccak

from .chain import event_topic, get_logs
from .errors import LedgerError

if TYPE_CHECKING:
    from .client import LedgerClient

__all__ = ["round_opened_block_hash", "round_seed"]

def round_opened_block_hash(client: LedgerClient, round_: int) -> bytes:
    """The hash of the block whose transaction opened ``round_``."""
    topics: list[bytes | None] = [event_topic(client.round_ledger, "RoundOpened"), int(round_).to_bytes(32, "big")]
    found = get_logs(client.w3, [client.round_ledger.address], client.deployment.start_block, topics)
    if len(found) != 1:
        raise LedgerError(f"round {round_}: expected one RoundOpened event, found {len(found)}")
    return bytes(found[0]["blockHash"])


def round_seed(client: LedgerClient, round_: int, label: str) -> bytes:
    """32 bytes for ``label`` in ``round_``, the same for every reader of this deployment."""
    d = client.deployment
    head = f"medmesh/round-seed/v1|{label}|{d.chain_id}|{d.addresses['RoundLedger'].lower()}|{round_}|".encode()
    return keccak(head + round_opened_block_hash(client, round_))
