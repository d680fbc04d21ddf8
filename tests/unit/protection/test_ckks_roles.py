"""ckks roles (issue 15, section 3): the key holder and the aggregator are two different
members, uniform over the n (n - 1) ordered pairs of the round's seed, not a registry-order
rotation a pair of colluders could plan for."""

from __future__ import annotations

import hashlib
from collections import Counter

from scipy import stats

from ledger import Identity
from ledger.randomness import draw_distinct, draw_pair
from node.protection.ckks_mode import draw_roles


def member(i: int) -> Identity:
    return Identity(f"0x{i:040x}", b"\0" * 32, f"peer{i}", b"\0" * 32, b"\0" * 32, "active", 0)


def test_roles_are_two_different_members_uniform_over_ordered_pairs():
    members = [member(i) for i in (7, 3, 11, 5)]  # any order in: drawn over ascending addresses
    draws = Counter()
    for k in range(12_000):
        holder, aggregator = draw_roles(hashlib.sha256(k.to_bytes(4, "big")).digest(), members)
        assert holder.address != aggregator.address
        draws[(holder.address, aggregator.address)] += 1
    assert len(draws) == 12  # every ordered pair occurs
    assert stats.chisquare(list(draws.values())).pvalue > 1e-4
    assert draw_roles(b"\x05" * 32, members) == draw_roles(
        b"\x05" * 32, members[::-1]
    )  # order-free


def test_more_roles_continue_the_pair_draw():
    """Robust ckks draws its verifiers after the pair from the same seed: the first two of
    ``draw_distinct`` are ``draw_pair``'s, all are different, uniform over ordered triples."""
    addresses = [member(i).address for i in (7, 3, 11, 5, 9)]
    draws = Counter()
    for k in range(12_000):
        seed = hashlib.sha256(k.to_bytes(4, "big")).digest()
        drawn = draw_distinct(seed, addresses, 4)
        assert len(set(drawn)) == 4 and tuple(drawn[:2]) == draw_pair(seed, addresses)
        draws[tuple(drawn[:3])] += 1
    assert len(draws) == 60  # 5 * 4 * 3 ordered triples
    assert stats.chisquare(list(draws.values())).pvalue > 1e-4
    assert draw_distinct(b"\x01" * 32, addresses, 9) == draw_distinct(b"\x01" * 32, addresses, 5)
