"""Who sits on a round's aggregation committee: the Python twin of ``contracts/CommitteeDraw.sol``.

The round's key is ``keccak256(abi.encode(seed, round))`` with ``seed`` the round's beacon
value (``RoundBeacon``); the member at Active slot ``i`` of ``n`` sits on a committee of ``k``
iff ``pi(i) < k``, where ``pi`` is a keyed permutation of ``0..n-1``: a balanced 4-round
Feistel network on ``2h`` bits (``4**h >= n``; round function: the low ``h`` bits of
``keccak256(abi.encode(key, j, right))``), restricted to ``0..n-1`` by cycle-walking (Black
and Rogaway, "Ciphers with Arbitrary Finite Domains", CT-RSA 2002). Exactly ``k`` seats, O(1)
work per check (fewer than 4 walks expected, since ``4**h < 4n``).

It lives in ``ledger`` because the audit redraws every round's committee from the chain's own
records (:mod:`ledger.committee_audit`); the peers import it from ``node.consensus.committee``.
docs/committee.md explains the draw and what its seed resists.
"""

from __future__ import annotations

import functools

from eth_hash.auto import keccak

from .errors import LedgerError

__all__ = ["FEISTEL_ROUNDS", "DrawError", "committee_key", "committee_slots", "permute", "seat"]

#: Rounds of the Feistel network (4 rounds: a pseudorandom permutation, Luby-Rackoff).
FEISTEL_ROUNDS = 4


class DrawError(LedgerError, ValueError):
    """A draw parameter is out of range (a seed that is not 32 bytes, a slot outside the domain)."""


def committee_key(seed: bytes, round_: int) -> bytes:
    """``keccak256(abi.encode(seed, round))``: the permutation's key for ``round_``."""
    if len(seed) != 32:
        raise DrawError(f"committee: the seed must be 32 bytes, got {len(seed)}")
    return keccak(seed + int(round_).to_bytes(32, "big"))


def _half_bits(n: int) -> int:
    h = 1
    while 4**h < n:
        h += 1
    return h


def permute(key: bytes, x: int, half_bits: int) -> int:
    """The Feistel permutation of ``0 .. 4**half_bits - 1`` keyed by ``key`` (32 bytes)."""
    mask = (1 << half_bits) - 1
    left, right = x >> half_bits, x & mask
    for j in range(FEISTEL_ROUNDS):
        digest = keccak(key + j.to_bytes(32, "big") + right.to_bytes(32, "big"))
        left, right = right, left ^ (int.from_bytes(digest, "big") & mask)
    return (left << half_bits) | right


@functools.lru_cache(maxsize=8192)
def seat(key: bytes, slot: int, n: int) -> int:
    """``pi(slot)``: the seat of the member at ``slot`` among ``n``, a permutation of
    ``0..n-1`` (cycle-walking the Feistel network until the value falls inside). Kept per
    arguments (a pure function): N members in one process each draw the same N seats."""
    if not 0 <= slot < n:
        raise DrawError(f"committee: slot {slot} is outside 0..{n - 1}")
    h = _half_bits(n)
    y = permute(key, slot, h)
    while y >= n:
        y = permute(key, y, h)
    return y


def committee_slots(key: bytes, n: int, k: int) -> list[int]:
    """The slots (ascending) whose seat is below ``k``: the committee of ``k`` among ``n``
    (everyone when ``k`` is 0 or at least ``n``)."""
    if k <= 0 or k >= n:
        return list(range(n))
    return [slot for slot in range(n) if seat(key, slot, n) < k]
