"""node.consensus.attested (issue 17.5): when a late peer adopts the pair already attested, and when not.

The aggregator here is a coordinate median written with NumPy, and hashes use the documented
formula (tests/node_support.py), both independent of node.aggregation and node.consensus.update."""

from __future__ import annotations

import numpy as np
import trio
from node_support import params_hash

from node.consensus.attested import AttestedPair, adopt_attested, leading_pair

RNG = np.random.default_rng(7)
OPENED = {f"0x{i:040x}": RNG.normal(size=5).astype(np.float32) for i in range(1, 5)}
ADDRS = sorted(OPENED)


async def median(inputs: dict[str, object]) -> tuple[np.ndarray, list[str]]:
    return np.median(np.stack([inputs[a] for a in sorted(inputs)]), axis=0).astype(
        np.float32
    ), sorted(inputs)


def pair(members: list[str], votes: int) -> AttestedPair:
    expected = np.median(np.stack([OPENED[a] for a in members]), axis=0).astype(np.float32)
    return AttestedPair(params_hash(expected), tuple(sorted(a.lower() for a in members)), votes)


def adopt(pairs: list[AttestedPair], own_members: list[str] = ADDRS, f: int = 1):
    own = np.median(np.stack([OPENED[a] for a in own_members]), axis=0).astype(np.float32)
    return trio.run(lambda: adopt_attested(pairs, OPENED, own, median, f=f))


def test_a_pair_attested_by_more_than_f_members_is_reproduced_and_adopted():
    first_two = ADDRS[:2]
    params, accepted, inputs = adopt([pair(first_two, 2)])
    assert sorted(inputs) == first_two and accepted == first_two
    assert params_hash(params) == pair(first_two, 2).aggregate_hash


def test_a_pair_with_at_most_f_votes_is_not_adopted():
    """One hostile member voting first for a subset that leaves out a victim steers nobody."""
    assert adopt([pair(ADDRS[1:], 1)], f=1) is None
    assert adopt([pair(ADDRS[1:], 1)], f=0) is not None


def test_no_adoption_without_every_update_of_the_pair_or_without_its_hash():
    unknown = "0x" + "f" * 40
    assert adopt([AttestedPair(b"\0" * 32, tuple(sorted([ADDRS[0].lower(), unknown])), 3)]) is None
    assert (
        adopt([AttestedPair(b"\1" * 32, tuple(a.lower() for a in ADDRS[:2]), 3)]) is None
    )  # not reproducible


def test_a_peer_whose_own_pair_is_attested_keeps_it():
    assert adopt([pair(ADDRS, 1), pair(ADDRS[:2], 2)]) is None


def test_a_member_without_an_update_adopts_the_leading_pair_with_more_than_f_votes():
    """A member back after the commit window (no pair of its own, ``own=None``) adopts a pair it
    reproduces; :func:`leading_pair` picks the most-voted pair only past ``f`` votes."""
    pairs = [pair(ADDRS[:3], 2), pair(ADDRS[:2], 1)]
    assert leading_pair(pairs, f=1) == pairs[0] and leading_pair(pairs, f=2) is None
    params, accepted, _ = trio.run(lambda: adopt_attested(pairs, OPENED, None, median, f=1))
    assert accepted == ADDRS[:3] and params_hash(params) == pairs[0].aggregate_hash
    assert trio.run(lambda: adopt_attested(pairs[1:], OPENED, None, median, f=1)) is None
