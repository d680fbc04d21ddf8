"""Helpers shared by the tests that run real ``medmesh node run`` processes (see
node/service/localnet.py): an independent params hash and a deadline-bounded chain wait; and
by the secagg and ckks tests: the weight a member's update carries in a sum."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ledger import Anvil
from node.service.localnet import LocalNet


def params_hash(params: np.ndarray) -> bytes:
    """The documented formula, written out independently of node.update."""
    return hashlib.sha256(b"medmesh/params/v1" + np.asarray(params, dtype="<f4").tobytes()).digest()


def sum_weight(ledger: Any, address: str, samples: int) -> int:
    """The documented weight of an update in a secagg or ckks sum, re-derived from the registry:
    the claim, capped at the member's cohort and at the lower median of the active cohorts."""
    members = [i for i in ledger.identities() if i.status == "active"]
    cohorts = sorted(i.cohort for i in members)
    own = next(i.cohort for i in members if i.address.lower() == address.lower())
    return min(samples, own, cohorts[(len(cohorts) - 1) // 2])


def round_seed_reference(state: Path, round_: int, label: str) -> bytes:
    """The round's public seed for ``label`` (ledger.randomness.round_seed), re-derived here from
    the saved chain: keccak of the documented header and the RoundOpened block's hash."""
    from eth_utils import keccak

    from ledger import LedgerClient, load_state
    from ledger.chain import get_logs

    w3, deployment = load_state(state)
    client = LedgerClient(w3, deployment)
    topic = keccak(text="RoundOpened(uint256,address,uint64,uint64,uint32,uint64)")
    (log,) = get_logs(w3, [client.round_ledger.address], deployment.start_block, [topic, round_.to_bytes(32, "big")])
    head = (f"medmesh/round-seed/v1|{label}|{deployment.chain_id}|"
            f"{deployment.addresses['RoundLedger'].lower()}|{round_}|").encode()
    return keccak(head + bytes(log["blockHash"]))


def wait_chain(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll the chain until ``predicate()`` is truthy (the chain has no push to await)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"chain: no {what} within {timeout:.0f} s")
        time.sleep(0.2)


@contextlib.contextmanager
def running_net(root: Path, windows: int, overrides: dict[str, dict[str, Any]]) -> Iterator[LocalNet]:
    """Four node processes on a fresh anvil that makes a block every second (like a real chain,
    and each transaction mined at once), with ``windows`` seconds to commit and to attest."""
    with Anvil(block_time=1) as rpc:
        net = LocalNet(root, rpc, 4, commit_window=windows, attest_window=windows, overrides=overrides)
        net.setup()
        net.start_all()
        try:
            yield net
        finally:
            net.stop_all()
