"""A late peer adopts the (aggregate, accepted set) pair already attested in its round.

Issue 17.5: each peer aggregates the committed updates it has verified when its own wait
ends. A peer that returns from an outage (or commits late) ends its wait later than the
others and sees a different set: two nodes down for 90 s split a round between two hashes,
and nothing finalized. Before attesting, a peer therefore reads the round's attestations.
If some member already voted for a pair (hash H, accepted set S), S is a subset of the
updates this peer verified itself, and aggregating exactly S with this peer's own rule gives
H bit for bit, the peer votes for (H, S) instead of its own pair.

This never makes a peer vote for a hash it did not compute: the pair is recomputed from
updates this peer checked against the chain and their signatures. Only a pair with more than
``f`` votes is adopted, so at least one honest member attested it from its own view: up to
``f`` Byzantine members cannot steer late peers to a subset of their choosing (for example
one that leaves out a victim's update) by attesting it first. Limits: a rule that drops inputs
(Krum, Multi-Krum, Bulyan) attests the kept set, not its input set, so it cannot be
recomputed from S and the peer keeps its own pair; two peers attesting at the same moment
can still differ, and the round then fails at its deadline as before; modes that reveal only
the sum (secagg, ckks) are not re-aggregated.

A member back after the round's commit window closed has no update of its own in the round
(commit before reveal, :mod:`node.peer.reveal`, held every blob until then): it votes for the
leading pair the same way, with no own pair (``own=None``), and trains from the next round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ledger import LedgerClient
from ledger.records import unmask
from node.consensus.update import parameters_hash

__all__ = ["AttestedPair", "attested_pairs", "leading_pair", "adopt_attested"]

Aggregator = Callable[[dict[str, object]], Awaitable[tuple[np.ndarray, list[str]]]]


@dataclass(frozen=True)
class AttestedPair:
    aggregate_hash: bytes
    accepted: tuple[str, ...]
    votes: int


def attested_pairs(ledger: LedgerClient, round_: int, members: Iterable[str]) -> list[AttestedPair]:
    """The distinct pairs ``members`` voted for in ``round_``, most votes first (ties: by hash).
    The votes come from the round's events (``LedgerClient.votes``) and their accepted sets from
    one read of the committers: one call per pair member would cost O(n) reads and an O(n^2)
    sort in the EVM each."""
    votes = ledger.votes(round_)
    committers = ledger.committers(round_) if votes else []
    counts: dict[tuple[bytes, tuple[str, ...]], int] = {}
    for address in members:
        vote = votes.get(address.lower())
        if vote is None or vote.struck:
            continue
        accepted = tuple(sorted(a.lower() for a in unmask(vote.accepted_mask, committers)))
        key = (vote.aggregate_hash, accepted)
        counts[key] = counts.get(key, 0) + 1
    pairs = [AttestedPair(h, s, n) for (h, s), n in counts.items()]
    return sorted(pairs, key=lambda p: (-p.votes, p.aggregate_hash))


def leading_pair(pairs: list[AttestedPair], f: int) -> AttestedPair | None:
    """The pair with the most votes if more than ``f`` members voted for it (so at least one
    honest member attested it from its own view), else None."""
    return next((p for p in pairs if p.votes > f), None)


async def adopt_attested(
    pairs: list[AttestedPair],
    opened: dict[str, object],
    own: np.ndarray | None,
    aggregate: Aggregator,
    *,
    f: int,
) -> tuple[np.ndarray, list[str], dict[str, object]] | None:
    """The first of ``pairs`` with more than ``f`` votes that this peer can reproduce from
    ``opened`` (its verified updates, keyed by address): (parameters, accepted, the inputs
    used); None to keep its own pair ``own`` (already attested, or nothing reproducible).
    ``own`` is None for a member that has no pair of its own (it votes without an update)."""
    if not pairs or (
        own is not None and any(p.aggregate_hash == parameters_hash(own) for p in pairs)
    ):
        return None
    pairs = [p for p in pairs if p.votes > f]
    by_lower = {a.lower(): a for a, u in opened.items() if u is not None}
    for pair in pairs:
        if not set(pair.accepted) <= set(by_lower):
            continue
        inputs = {by_lower[a]: opened[by_lower[a]] for a in pair.accepted}
        try:
            params, accepted = await aggregate(inputs)
        except ValueError:
            continue
        if parameters_hash(params) == pair.aggregate_hash and sorted(
            a.lower() for a in accepted
        ) == list(pair.accepted):
            return params, accepted, inputs
    return None
