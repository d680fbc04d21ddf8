"""Reads shared by the clients of one embedded chain (:mod:`ledger.shared`, issue 19: the
simulator's N members in one process).

Shared answers are checked against a client on the same chain that reads for itself (created
before sharing was turned on), block after block; and a simulated consortium's chain requests
per round are counted at N = 8 and 16 against what grows as O(N): on main, every waiting
member re-read the head block and the round at every block, and every member's first committee
draw read every member's slot, N² reads per round in one process.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from ledger import Deployment, LedgerClient, fork_embedded
from ledger.committee import SlotBook
from ledger.embedded import EmbeddedProvider
from ledger.shared import head_hash, share_reads, shared_reads
from node.sim.consortium import SimConfig, simulate
from tests.ledger_support import dev_account, h32, setup_on


def test_shared_answers_are_those_a_lone_client_reads(
    _ledger_consortium_base: tuple[Web3, Deployment],
) -> None:
    base, deployment = _ledger_consortium_base
    w3 = fork_embedded(base)
    lone = LedgerClient(w3, deployment, dev_account(w3, 1))  # created before sharing: reads alone
    assert lone.shared is None and shared_reads(w3) is None
    shared = share_reads(w3)
    s = setup_on(w3, deployment)  # these clients share
    assert all(c.shared is shared for c in s.hospitals)

    def same() -> None:
        assert head_hash(w3) == bytes(w3.eth.get_block("latest")["hash"])
        for c in s.hospitals:
            assert c.current_round() == lone.current_round()
            assert c.identities() == lone.identities()
            r = c.current_round()
            if r:
                assert c.round_info(r) == lone.round_info(r)
                assert c.commitments(r) == lone.commitments(r)
                assert c.quorum_reached(r) == lone.quorum_reached(r)

    same()
    round_ = s.hospitals[0].open_round()
    same()
    for i, member in enumerate(s.hospitals):
        member.commit_update(round_, h32(f"update {i}"), 100, 0.5, 1)
        same()
    # a caller that changes what it was given changes nobody else's answer
    mine = s.hospitals[0].commitments(round_)
    mine.clear()
    assert len(s.hospitals[1].commitments(round_)) == len(s.hospitals)
    ids = s.hospitals[0].identities()
    ids.clear()
    assert s.hospitals[1].identities() == lone.identities()
    # one read per head: the same view again at the same head is not sent to the chain
    before = shared.misses
    for c in s.hospitals:
        c.round_info(round_)
    assert shared.misses == before  # ``same()`` read it at this head
    w3.provider.make_request("evm_mine", [])  # type: ignore[attr-defined]
    for c in s.hospitals:
        assert c.round_info(round_) == lone.round_info(round_)
    assert shared.misses == before + 1


def test_the_slot_book_is_one_per_chain_and_epoch(
    _ledger_consortium_base: tuple[Web3, Deployment],
) -> None:
    base, deployment = _ledger_consortium_base
    w3 = fork_embedded(base)
    lone = LedgerClient(w3, deployment, dev_account(w3, 1))
    share_reads(w3)
    s = setup_on(w3, deployment)
    books = [SlotBook(c) for c in s.hospitals]
    for b in books:
        b.sync()
    first = books[0]
    for c in s.hospitals:
        assert first.of(c.address) == SlotBook(lone).of(c.address)
    # the other books hold what the first one read, without reading it again
    assert all(b._slots is first._slots for b in books)


@pytest.fixture
def chain_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[collections.Counter]:
    """Every request an embedded provider answers, by method (``eth_call`` by selector)."""
    counts: collections.Counter = collections.Counter()
    real = EmbeddedProvider.make_request

    def counting(self: EmbeddedProvider, method: Any, params: Any) -> Any:
        key = method
        if method == "eth_call":
            key = "eth_call:" + str(params[0].get("data", ""))[:10]
        counts[key] += 1
        return real(self, method, params)

    monkeypatch.setattr(EmbeddedProvider, "make_request", counting)
    yield counts


def _round_two_requests(n: int, counts: collections.Counter) -> tuple[int, int, dict]:
    """Chain requests of round 2 of an ``n``-member campaign with a committee of 4, the
    requests of round 1's committee draws' ``slotOf`` reads, and round 2's row."""
    marks: list[collections.Counter] = []

    def mark(_row: dict, _peers: list) -> None:
        marks.append(collections.Counter(counts))

    counts.clear()
    report = simulate(SimConfig(peers=n, committee=4, rounds=2, params=2_000, rows=16), mark)
    assert report["all_finalized_one_hash"]
    round_two = marks[1] - marks[0]
    slot_of = Web3.keccak(text="slotOf(address)")[:4].hex()
    return sum(round_two.values()), marks[0]["eth_call:0x" + slot_of], report["rounds"][1]


@pytest.mark.slow
def test_chain_requests_per_round_grow_as_n_not_n_squared(chain_requests) -> None:
    """At N = 8 and 16 (k = 4), two rounds. Round 1's committee draws read each member's slot
    once in the whole process (main: every member read every slot, N² = 64 and 256 reads).
    Round 2's transactions are O(N) (3 per member and one per seat, plus 3 per round; the
    simulate tests check them) and unchanged; each costs a fixed number of requests
    (``ledger.tx``), and per head block each view is read once in the process, so the
    requests per transaction must not grow with N. On main they grew from 30.4 (N = 8) to 36.1
    (16) and 40.8 (32): every waiting member re-read the head block and the round at every
    block; with shared reads they were 18.4, 17.7 and 17.4."""
    requests8, slots8, row8 = _round_two_requests(8, chain_requests)
    requests16, slots16, row16 = _round_two_requests(16, chain_requests)
    assert (slots8, slots16) == (8, 16)
    assert row8["transactions"] == 3 * 8 + 4 + 3 and row16["transactions"] == 3 * 16 + 4 + 3
    per_tx8 = requests8 / row8["transactions"]
    per_tx16 = requests16 / row16["transactions"]
    assert per_tx16 <= 1.05 * per_tx8, (requests8, requests16)
    assert per_tx8 <= 25, requests8
