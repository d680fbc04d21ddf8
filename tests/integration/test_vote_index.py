"""ledger.attestlog.VoteIndex and node.consensus.attested.attested_pairs read a round's votes
from its events (issue 19: one contract call per vote cost O(n) reads and an O(n^2) sort in
the EVM). The reference is what each member attested in the test, and the contract's own
``attestation`` view for every member's accepted set and strike."""

from __future__ import annotations

from ledger_support import LedgerSetup, h32

from ledger import LedgerClient
from node.consensus.attested import AttestedPair, attested_pairs

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)


def _lower_sorted(accounts: list[str]) -> tuple[str, ...]:
    return tuple(sorted(a.lower() for a in accounts))


def _matches_the_view(reader: LedgerClient, rnd: int, members: list[str]) -> None:
    votes = reader.votes(rnd)
    committers = reader.committers(rnd)
    for m in members:
        att = reader.attestation(rnd, m)
        vote = votes.get(m.lower())
        assert (att is None) == (vote is None)
        if att is None or vote is None:
            continue
        assert vote.vote_key == att.vote_key and vote.struck == att.struck
        accepted = [c for i, c in enumerate(committers) if vote.accepted_mask >> i & 1]
        assert _lower_sorted(accepted) == _lower_sorted(list(att.accepted))


def test_pairs_from_events_count_votes_and_strikes_as_the_chain_does(
    ledger_consortium: LedgerSetup,
) -> None:
    s = ledger_consortium
    a, b, c, d = s.hospitals
    members = [h.address for h in s.hospitals]
    reader = s.outsider  # one client reads throughout: its index scans only new blocks
    rnd = a.open_round()
    assert attested_pairs(reader, rnd, members) == [] and reader.votes(rnd) == {}
    for i, h in enumerate(s.hospitals):
        h.commit_update(rnd, h32(f"update-{i}"), 100, 0.5, 1)
    a.attest(rnd, h32("everyone"), members)
    assert attested_pairs(reader, rnd, members) == [
        AttestedPair(h32("everyone"), _lower_sorted(members), 1)
    ]
    b.attest(rnd, h32("everyone"), members)
    c.attest(rnd, h32("a and c"), [a.address, c.address])
    two = [
        AttestedPair(h32("everyone"), _lower_sorted(members), 2),
        AttestedPair(h32("a and c"), _lower_sorted([a.address, c.address]), 1),
    ]
    assert attested_pairs(reader, rnd, members) == two
    one_each = sorted(  # most votes first, ties by hash (attested_pairs' documented order)
        [
            AttestedPair(h32("everyone"), _lower_sorted(members), 1),
            AttestedPair(h32("a and c"), _lower_sorted([a.address, c.address]), 1),
        ],
        key=lambda p: p.aggregate_hash,
    )
    assert attested_pairs(reader, rnd, [b.address, c.address]) == one_each
    _matches_the_view(reader, rnd, members)
    for h in (b, c, d):  # more than 2/3 of 4 revoke a; its vote no longer counts once struck
        h.revoke(a.address)
    s.outsider.strike_vote(rnd, a.address)
    assert reader.votes(rnd)[a.address.lower()].struck
    assert attested_pairs(reader, rnd, members) == one_each
    _matches_the_view(reader, rnd, members)
    att = reader.attestation(rnd, b.address)
    assert att is not None and att.aggregate_hash == h32("everyone")


def test_the_index_reads_a_rewound_chain_again(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    a, b = s.hospitals[:2]
    members = [h.address for h in s.hospitals]
    reader = s.outsider
    rnd = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(rnd, h32(f"update-{i}"), 100, 0.5, 1)
    snapshot = s.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[union-attr]
    a.attest(rnd, h32("before"), members)
    assert reader.votes(rnd)[a.address.lower()].aggregate_hash == h32("before")
    head = s.w3.eth.block_number
    s.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[union-attr]
    assert s.w3.eth.block_number < head
    a.attest(rnd, h32("after"), members[:3])
    b.attest(rnd, h32("after"), members[:3])
    assert attested_pairs(reader, rnd, members) == [
        AttestedPair(h32("after"), _lower_sorted(members[:3]), 2)
    ]
    att = reader.attestation(rnd, a.address)
    assert att is not None and att.aggregate_hash == h32("after")
