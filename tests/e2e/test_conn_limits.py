"""Issue 17.11: unregistered identities and half-open TCP clients cannot hold a node's
connections (and file descriptors) open.

The node is a real :class:`gossip.PeerHost` in its own OS process on 127.0.0.1, so its open
files are counted from ``/proc/<pid>/fd`` (an independent reference: the kernel's count,
not the host's own bookkeeping). The attackers run in this process:
1. 30 unregistered identities, each a bare libp2p host (Noise + Yamux, no pubsub) that
   connects and then opens no stream, so the stream gate never sees them;
2. 30 plain TCP clients that connect and never start the handshake: the per-IP cap.
A registered peer then still connects and delivers a blob.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from gossip import PeerHost

REPO_ROOT = Path(__file__).resolve().parents[2]
CAP = 4
ATTACKERS = 30
CLOSE_WITHIN_S = (
    30.0  # closing happens on the connection's own event; this only bounds a stuck test
)

NODE = """
import sys, trio
from gossip import PeerHost

allowed = set(sys.argv[2:])
async def main():
    host = PeerHost(bytes.fromhex(sys.argv[1]), authorize=lambda pid: pid in allowed, max_conns_per_ip={cap})
    got = []
    async def on_blob(frm, kind, data):
        got.append(len(data))
        print("blob", frm, len(data), flush=True)
    host.on_blob(on_blob)
    async with host.running():
        print("addr", host.listen_addrs[0], flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the test closes our stdin
trio.run(main)
""".replace("{cap}", str(CAP))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_fds(pid: int, ok, what: str) -> int:
    deadline = time.monotonic() + CLOSE_WITHIN_S
    while True:
        n = open_fds(pid)
        if ok(n):
            return n
        if time.monotonic() > deadline:
            raise AssertionError(f"node holds {n} open files: {what}")
        time.sleep(0.1)


def wait_closed_by_peer(sockets: list[socket.socket], want: int) -> int:
    """How many of ``sockets`` the node closed (EOF), waiting until ``want`` are or the deadline."""
    deadline = time.monotonic() + CLOSE_WITHIN_S
    open_ = list(sockets)
    closed = 0
    while closed < want and open_ and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select(open_, [], [], left)
        for sock in readable:
            if sock.recv(1) == b"":
                closed += 1
            open_.remove(sock)
    return closed


@pytest.fixture
def node_proc():
    friend_seed = os.urandom(32)
    friend_id = PeerHost(friend_seed, authorize=None).peer_id
    proc = subprocess.Popen(
        [sys.executable, "-c", NODE, os.urandom(32).hex(), friend_id],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("addr "), line
        yield proc, line.split()[1], friend_seed
    finally:
        proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def bare_connect(target: str, stack: contextlib.AsyncExitStack) -> None:
    """An identity that connects and opens nothing (no pubsub, no blob)."""
    import multiaddr as ma
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from gossip._stack import build_host, identity_from_seed

    host = build_host(identity_from_seed(os.urandom(32)))
    await stack.enter_async_context(host.run([ma.Multiaddr("/ip4/127.0.0.1/tcp/0")]))
    await host.connect(info_from_p2p_addr(ma.Multiaddr(target)))


def test_silent_intruders_and_half_open_clients_hold_no_files(node_proc):
    proc, target, friend_seed = node_proc
    port = int(target.split("/tcp/")[1].split("/")[0])
    baseline = open_fds(proc.pid)

    async def intruders() -> None:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(ATTACKERS):
                await bare_connect(target, stack)
            # all 30 still run (and would keep their connections): the node must have closed them
            await trio.to_thread.run_sync(
                lambda: wait_fds(
                    proc.pid, lambda n: n <= baseline + 2, f"{ATTACKERS} silent intruders connected"
                )
            )

    trio.run(intruders)

    sockets: list[socket.socket] = []
    try:
        for _ in range(ATTACKERS):  # half-open: TCP only, never a Noise handshake
            sockets.append(socket.create_connection(("127.0.0.1", port)))
        closed = wait_closed_by_peer(sockets, ATTACKERS - CAP)
        assert closed == ATTACKERS - CAP, (
            f"the node closed {closed} of {ATTACKERS} half-open clients, cap {CAP}"
        )
        assert open_fds(proc.pid) <= baseline + CAP + 2
    finally:
        for sock in sockets:
            sock.close()
    wait_fds(proc.pid, lambda n: n <= baseline + 2, "the half-open clients gone")

    async def friend() -> None:
        host = PeerHost(friend_seed, authorize=None)
        async with host.running():
            await host.connect(target)
            await host.send_blob(
                target.rsplit("/p2p/", 1)[1], b"y" * 1000, kind="update", timeout=20
            )

    trio.run(friend)
    assert proc.stdout.readline().startswith("blob ")
