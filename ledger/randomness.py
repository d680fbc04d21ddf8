"""Per-round public randomness read from the chain.

:func:`round_seed` hashes a per-round value with a label, the deployment and the round
number (:func:`mix_seed`). Two values exist:

* the **beacon value** (:mod:`ledger.beacon`, ``contracts/RoundBeacon.sol``): a commit-reveal
  among the members, whose secrets were committed before the round opened. No single member
  can bias it, the opener included (its transaction and block no longer enter the draw); what
  it does not resist is each withholding committer's one bit of bias (reveal or not, once it
  has seen the other reveals), a coalition holding every reveal, and a block producer that
  censors reveals. Draws that must not be steered (the ckks key holder and aggregator) use it.
* the hash of the block that opened the round (its ``RoundOpened`` event): unknown before the
  round opens, but whoever produces blocks can grind over it, and on a chain that mines one
  block per transaction (anvil's automine, the embedded chain) the opener can predict the
  block its transaction makes and grind by varying that transaction. It serves labels that
  need a value unique to the round, not an unpredictable one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils import keccak

from .beacon import beacon_info
from .chain import event_topic, get_logs
from .errors import LedgerError

if TYPE_CHECKING:
    from .client import LedgerClient
    from .deploy import Deployment

__all__ = [
    "beacon_value",
    "draw_distinct",
    "draw_pair",
    "mix_seed",
    "round_opened_block_hash",
    "round_seed",
]


def round_opened_block_hash(client: LedgerClient, round_: int) -> bytes:
    """The hash of the block whose transaction opened ``round_``."""
    topics: list[bytes | None] = [
        event_topic(client.round_ledger, "RoundOpened"),
        int(round_).to_bytes(32, "big"),
    ]
    found = get_logs(
        client.w3, [client.round_ledger.address], client.deployment.start_block, topics
    )
    if len(found) != 1:
        raise LedgerError(f"round {round_}: expected one RoundOpened event, found {len(found)}")
    return bytes(found[0]["blockHash"])


def beacon_value(client: LedgerClient, round_: int) -> bytes:
    """The beacon value of ``round_``; raises unless the beacon is ready."""
    info = beacon_info(client, round_)
    if info.value is None:
        raise LedgerError(
            f"round {round_}: the beacon is {info.status} ({info.reveals} of {info.commits} secrets "
            f"revealed, {info.needed} needed), no value to draw from"
        )
    return info.value


def mix_seed(deployment: Deployment, round_: int, label: str, value: bytes) -> bytes:
    """32 bytes for ``label`` in ``round_`` from the round's ``value``."""
    d = deployment
    head = f"medmesh/round-seed/v1|{label}|{d.chain_id}|{d.addresses['RoundLedger'].lower()}|{round_}|".encode()
    return keccak(head + value)


def round_seed(client: LedgerClient, round_: int, label: str, *, beacon: bool = False) -> bytes:
    """32 bytes for ``label`` in ``round_``, the same for every reader of this deployment: from
    the beacon value if ``beacon`` (raises until it is ready), else from the opening block's hash."""
    value = beacon_value(client, round_) if beacon else round_opened_block_hash(client, round_)
    return mix_seed(client.deployment, round_, label, value)


def draw_pair(seed: bytes, addresses: list[str]) -> tuple[str, str]:
    """Two different addresses, uniform over ordered pairs, read from a 32-byte ``seed``
    (addresses in ascending order, case-insensitive; modulo bias below 2^-240)."""
    if len(addresses) < 2:
        raise LedgerError(f"a pair needs at least two members, got {len(addresses)}")
    first, second = draw_distinct(seed, addresses, 2)
    return first, second


def draw_distinct(seed: bytes, addresses: list[str], k: int) -> list[str]:
    """``min(k, n)`` different addresses in draw order, uniform over ordered k-tuples, read from a
    32-byte ``seed`` as mixed-radix digits: pick ``order[x mod n]``, then ``x div n`` picks among the
    ``n - 1`` left, and so on (addresses in ascending order, case-insensitive). The first two are
    :func:`draw_pair`'s; modulo bias below ``2^-256 * n^k``."""
    rest, x = sorted(addresses, key=str.lower), int.from_bytes(seed, "big")
    out: list[str] = []
    while rest and len(out) < k:
        x, i = divmod(x, len(rest))
        out.append(rest.pop(i))
    return out
