"""Two senders of one account: the node's own threads, and an operator's CLI holding the same
key beside the running node. Every transaction of both lands: a nonce another sender took
first is read again, and the call simulated again (ledger/tx.py), instead of the node dying
on "nonce too low" (seen in CI: a node's open_round against a test's endorse)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ledger import connect, dev_account
from ledger.tx import send

pytestmark = pytest.mark.anvil

SENDS = 12
REPO = Path(__file__).resolve().parents[2]
OTHER_SENDER = """
import sys
from ledger import connect, dev_account
from ledger.tx import send
w3 = connect(sys.argv[1]); me = dev_account(w3, 3)
for _ in range(int(sys.argv[2])):
    send(w3, me, {"to": me.address, "value": 0}, action="cli transfer")
print("done", flush=True)
"""


@pytest.fixture
def anvil_rpc(request: pytest.FixtureRequest):
    chain = request.getfixturevalue("_ledger_anvil")
    with chain.isolated():
        yield chain.rpc


def test_threads_and_a_second_process_with_the_same_key_all_land(anvil_rpc):
    w3 = connect(anvil_rpc)
    me = dev_account(w3, 3)
    start = w3.eth.get_transaction_count(me.address)
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_SENDER, anvil_rpc, str(SENDS)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            for _ in range(SENDS):
                assert send(w3, me, {"to": me.address, "value": 0}, action="node")["status"] == 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = other.communicate(timeout=300)
    assert not errors, errors
    assert other.returncode == 0 and "done" in out, err
    assert w3.eth.get_transaction_count(me.address) == start + 3 * SENDS
