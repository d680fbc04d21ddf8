"""The per-round aggregation committee: how many members it needs, and who sits on it.

**Size.** A committee of ``k`` drawn uniformly without replacement from ``n`` members, ``f`` of
them Byzantine, holds ``X ~ Hypergeometric(n, f, k)`` Byzantine seats. Its > 2/3 quorum is
safe and live while they hold fewer than a third of the seats, so the consortium's default
``k`` is the smallest one for which ``P[X >= ceil(k/3)] <= 1e-6`` (:func:`committee_size`;
the tail is computed in exact integer arithmetic, :func:`byzantine_tail`). The sortition
argument is Algorand's (Gilad et al., "Algorand: Scaling Byzantine Agreements for
Cryptocurrencies", SOSP 2017, section 5), here without replacement. ``k = n`` is the whole
consortium: the tail is then 0 or 1 (``3f < n`` or not), as without a committee.

**Draw.** Members hold Active slots in the registry (``HospitalRegistry.slotOf``; a freed
slot is taken again by the next admission), and a round draws from its ``n`` = ``slotCount``
slots. The round's key is ``keccak256(abi.encode(seed, round))`` with ``seed`` the round's
beacon value (``RoundBeacon``); the member at slot ``i`` sits on the committee iff
``pi(i) < k``, where ``pi`` is a keyed permutation of ``0..n-1``: a balanced 4-round Feistel
network on ``2h`` bits (``4**h >= n``; round function: the low ``h`` bits of
``keccak256(abi.encode(key, j, right))``), restricted to ``0..n-1`` by cycle-walking (Black
and Rogaway, "Ciphers with Arbitrary Finite Domains", CT-RSA 2002). Exactly ``k`` seats, O(1)
work per check (fewer than 4 walks expected, since ``4**h < 4n``), and the same function as
``RoundLedger.committeeSeat``, which the contract checks every attestation with. The draw is
:mod:`ledger.committee_draw` (re-exported here): the audit redraws each round's committee
with it, and ``ledger`` does not import ``node``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ledger.committee_draw import FEISTEL_ROUNDS, committee_key, committee_slots, permute, seat
from node.errors import MedmeshError

__all__ = [
    "FEISTEL_ROUNDS",
    "TAIL_TARGET",
    "CommitteeError",
    "byzantine_tail",
    "committee_key",
    "committee_size",
    "committee_slots",
    "permute",
    "seat",
]

#: The tolerated probability that f Byzantine members hold a third of the committee.
TAIL_TARGET = 1e-6


class CommitteeError(MedmeshError, ValueError):
    """A committee parameter is out of range (sizes, slots, seeds)."""


def _check_population(n: int, f: int) -> None:
    if n < 1:
        raise CommitteeError(f"committee: the consortium needs at least 1 member, got n={n}")
    if not 0 <= f <= n:
        raise CommitteeError(f"committee: tolerated faults f={f} must be within 0..n={n}")


def byzantine_tail(n: int, f: int, k: int) -> Fraction:
    """``P[X >= ceil(k/3)]`` for ``X ~ Hypergeometric(n, f, k)``: the chance that a committee
    of ``k`` drawn from ``n`` members, ``f`` of them Byzantine, has a third or more Byzantine
    seats. Exact (a fraction of binomial coefficients)."""
    _check_population(n, f)
    if not 1 <= k <= n:
        raise CommitteeError(f"committee: size k={k} must be within 1..n={n}")
    threshold = -(-k // 3)
    favourable = sum(
        math.comb(f, x) * math.comb(n - f, k - x) for x in range(threshold, min(f, k) + 1)
    )
    return Fraction(favourable, math.comb(n, k))


def committee_size(n: int, f: int, target: float = TAIL_TARGET) -> int:
    """The smallest ``k`` in ``1..n`` with :func:`byzantine_tail` ``(n, f, k) <= target``;
    ``n`` when no smaller committee meets it."""
    _check_population(n, f)
    if not 0 < target < 1:
        raise CommitteeError(f"committee: the tail target must be within (0, 1), got {target}")
    bound = Fraction(target)
    for k in range(1, n):
        if byzantine_tail(n, f, k) <= bound:
            return k
    return n
