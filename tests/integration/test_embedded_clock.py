"""The embedded chain stamps a transaction with the time its pending block was made, i.e. when
the block before it was mined: after the chain sat idle, a round opened without first bringing
its clock to wall-clock time (:func:`ledger.chain.sync_clock`) got windows that had partly run
out before it opened. Beside two CPU burners the imaging demo sat 8.5 minutes between its
set-up's last transaction and opening round 1, and every hospital's commit, 25 s after the
opening, reverted with RoundLedgerCommitClosed (a 120 s window)."""

from __future__ import annotations

import time

import pytest
from web3 import Web3

from ledger import Deployment, fork_embedded
from tests.ledger_support import setup_on

IDLE_S = 600  # the chain's idle spell, played by moving the wall clock on (nobody waits for it)


def test_a_round_opened_after_an_idle_spell_gets_its_whole_commit_window(
    _ledger_consortium_base: tuple[Web3, Deployment], monkeypatch: pytest.MonkeyPatch
):
    s = setup_on(fork_embedded(_ledger_consortium_base[0]), _ledger_consortium_base[1])
    member = s.hospitals[0]
    accounts = s.w3.eth.accounts
    s.w3.eth.send_transaction({"from": accounts[0], "to": accounts[1], "value": 1})
    latest = int(s.w3.eth.get_block("latest")["timestamp"])  # a chain may run ahead of the clock
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() + IDLE_S + max(latest - wall(), 0))
    before = int(time.time())
    info = member.round_info(member.open_round())
    commit_window, _ = member.round_ledger.functions.windows().call()
    # the reference: the contract dates the window from the opening block (commitDeadline =
    # block.timestamp + commitWindow), and that block is no older than the call
    assert info.opened_at >= before, f"the round opened {before - info.opened_at} s in the past"
    assert info.commit_deadline - before >= commit_window
