"""The embedded chain's read shortcuts (:mod:`ledger.embedded`: an ``eth_call`` answered once per
block, a block's logs decoded once) answer what eth-tester itself answers, block after block."""

from __future__ import annotations

from web3 import Web3

from ledger import Deployment, fork_embedded
from ledger.chain import event_topic, get_logs
from tests.ledger_support import h32, reverts, setup_on


def test_a_repeated_call_follows_the_chain(_ledger_consortium_base: tuple[Web3, Deployment]):
    """The same call at the same head is answered once; a transaction mines a new block and the
    same call is run again: a commit the first simulation let through reverts the second time."""
    s = setup_on(fork_embedded(_ledger_consortium_base[0]), _ledger_consortium_base[1])
    member = s.hospitals[0]
    assert member.current_round() == member.current_round() == 0
    round_ = member.open_round()
    assert member.current_round() == round_ == 1
    assert member.round_info(round_).commit_count == 0
    member.commit_update(round_, h32("update"), 100, 0.5, 1)
    assert member.round_info(round_).commit_count == 1
    with reverts("RoundLedgerAlreadyCommitted", round=round_, account=member.address):
        member.commit_update(round_, h32("update"), 100, 0.5, 1)
    assert member.round_info(round_).commit_count == 1


def test_logs_match_eth_testers_own_filter(_ledger_consortium_base: tuple[Web3, Deployment]):
    """``get_logs`` (each block's logs decoded once) against eth-tester's ``eth_getLogs``, read
    twice at one head and again after more blocks."""
    s = setup_on(fork_embedded(_ledger_consortium_base[0]), _ledger_consortium_base[1])
    ledger_address = s.deployment.addresses["RoundLedger"]
    committed = event_topic(s.admin.round_ledger, "UpdateCommitted")

    def both() -> tuple[list, list]:
        ours = get_logs(s.w3, [ledger_address], 0, [committed])
        theirs = s.w3.eth.get_logs(
            {"address": ledger_address, "fromBlock": 0, "topics": ["0x" + committed.hex()]}
        )
        return [(lg["blockNumber"], lg["logIndex"], bytes(lg["data"])) for lg in ours], [
            (lg["blockNumber"], lg["logIndex"], bytes(lg["data"])) for lg in theirs
        ]

    round_ = s.hospitals[0].open_round()
    s.hospitals[0].commit_update(round_, h32("a"), 100, 0.5, 1)
    first = both()
    assert first[0] == first[1] and len(first[0]) == 1
    assert both() == first
    for i, member in enumerate(s.hospitals[1:], start=1):
        member.commit_update(round_, h32(f"update-{i}"), 100, 0.5, 1)
    ours, theirs = both()
    assert ours == theirs and len(ours) == len(s.hospitals)
