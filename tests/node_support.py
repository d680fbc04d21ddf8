"""Helpers shared by the tests that run real ``medmesh node run`` processes (see
node/service/localnet.py): an independent params hash, a deadline-bounded chain wait, the
4-node anvil fixture, and a TCP relay that makes the chain's RPC unreachable on demand; for
the in-process runs (``run_demo``), the :class:`Record` mod; and for the secagg and ckks tests,
the weight a member's update carries in a sum."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ledger import Anvil
from node.peer.mods import PeerMod
from node.service.localnet import LocalNet

#: Node settings for a short campaign of node processes on 127.0.0.1: 5 s floor waits, quick
#: openers and reconnects, and the DP noise calibrated for 40 rounds (longer than any test).
SHORT_CAMPAIGN: dict[str, dict[str, Any]] = {
    "rounds": {
        "round_timeout": 5.0,
        "open_fallback": 1.5,
        "attest_grace": 5.0,
        "poll_interval": 0.25,
        "join_margin": 3.0,
    },
    "privacy": {"rounds": 40},
    "gossip": {"reconnect_initial": 0.25, "reconnect_max": 2.0},
}


#: The factor a poisoning test scales its update by. Not 100: an honest member's update can be
#: tens of times the others' when its data set is small, because DP-SGD averages over the
#: released noisy count Ñ · q (node.learning.training; Ñ = 19 ± 10 rows for the demo's smallest
#: site, clamped at 1): 7.5x the median honest norm in one of three runs measured, and in a CI
#: run a 100x poison of a member whose own step was small kept its place in Multi-Krum's
#: selection while that honest site's update was the one left out.
POISON_SCALE = 1.0e4


class Record(PeerMod):
    """Lets the test see what each peer trained (never what others receive): (round, address)
    -> (delta, its weight in a secagg or ckks sum (:func:`sum_weight`, not the raw claim), the
    global parameters it trained from)."""

    trained: dict[tuple[int, str], tuple[np.ndarray, int, np.ndarray]] = {}

    async def train(self, peer, round_, call_next):
        update = await call_next(round_)
        weight = sum_weight(peer.ledger, peer.address, update.samples)
        Record.trained[(round_, peer.address)] = (
            update.delta.copy(),
            weight,
            peer.global_params.copy(),
        )
        return update


def params_hash(params: np.ndarray) -> bytes:
    """The documented formula, written out independently of node.consensus.update."""
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
    (log,) = get_logs(
        w3,
        [client.round_ledger.address],
        deployment.start_block,
        [topic, round_.to_bytes(32, "big")],
    )
    head = (
        f"medmesh/round-seed/v1|{label}|{deployment.chain_id}|"
        f"{deployment.addresses['RoundLedger'].lower()}|{round_}|"
    ).encode()
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
def running_net(
    root: Path, windows: int, overrides: dict[str, dict[str, Any]], relay: TcpRelay | None = None
) -> Iterator[LocalNet]:
    """Four node processes on a fresh anvil that makes a block every second (like a real chain,
    and each transaction mined at once), with ``windows`` seconds to commit and to attest; with
    ``relay``, everything reaches anvil through it."""
    with Anvil(block_time=1) as rpc:
        if relay is not None:
            relay.target_port = int(rpc.rsplit(":", 1)[1])
            relay.start()
            rpc = relay.url
        try:
            with started(
                LocalNet(
                    root, rpc, 4, commit_window=windows, attest_window=windows, overrides=overrides
                )
            ) as net:
                yield net
        finally:
            if relay is not None:
                relay.stop()


@contextlib.contextmanager
def started(net: LocalNet) -> Iterator[LocalNet]:
    """``net`` set up on its chain with every node process running; the processes stopped on exit."""
    net.setup()
    net.start_all()
    try:
        yield net
    finally:
        net.stop_all()


class TcpRelay:
    """A TCP relay on 127.0.0.1 in front of ``target_port`` (the nodes' RPC endpoint), that the
    test stops (listener and every relayed connection closed: the endpoint is unreachable)
    and starts again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        for sock in ([listener] if listener else []) + sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
