"""The hosts of a simulated consortium: in memory, or one real libp2p host per member.

``memory`` gives every member a :class:`gossip.MemoryHost` on one :class:`gossip.MemoryNetwork`
(no sockets). ``libp2p`` gives every member a :class:`gossip.PeerHost` on 127.0.0.1 (Noise,
Yamux, GossipSub, direct streams), as a node process has, and :func:`connect_all` connects every
pair, all in this one process: the process then holds two sockets per pair, and every host
accepts up to 2N connections from the one address 127.0.0.1 (N - 1 held, and redials).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

from gossip import GossipError, MemoryNetwork, PeerHost, Transport

__all__ = ["DIAL_ATTEMPTS", "TRANSPORTS", "connect_all", "ensure_fds", "host_factory"]

TRANSPORTS = ("memory", "libp2p")
FDS_PER_CONNECTION = 2
"""Both ends of a loopback connection between two hosts of this process are its sockets."""
DIAL_ATTEMPTS = 3
"""Tries per pair: on a starved machine a Noise handshake can time out, and one lost pair
would end the whole run."""

MakeHost = Callable[[bytes, Callable[[str], bool]], Transport]


def host_factory(transport: str, peers: int) -> MakeHost:
    """``node.sim.demo.join``'s host maker (``make_host(libp2p_seed, authorize)``)."""
    if transport == "memory":
        network = MemoryNetwork()
        return lambda seed, gate: network.host(seed, authorize=gate)
    ensure_fds(peers)
    # every host dials from 127.0.0.1; twice N leaves room for redials (relays, retries)
    return lambda seed, gate: PeerHost(
        seed, authorize=gate, members=peers, max_conns_per_ip=2 * peers
    )


def ensure_fds(peers: int) -> None:
    """Raise this process's soft open-file limit to what ``peers`` fully connected hosts hold
    (a dial past it fails); refuse in one line past the hard limit."""
    need = FDS_PER_CONNECTION * peers * (peers - 1) // 2 + 4 * peers + 256  # + listeners, slack
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise ValueError(
                f"--transport libp2p with {peers} members needs about {need} open files; "
                f"this process may open {hard} (ulimit -Hn)"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


async def connect_all(hosts: list[Transport]) -> float:
    """Connect every pair of running hosts once, in turn (each dial runs a Noise handshake);
    returns the seconds it took."""
    started = time.perf_counter()
    for i, host in enumerate(hosts):
        for other in hosts[:i]:
            for attempt in range(DIAL_ATTEMPTS):
                try:
                    await host.connect(other.listen_addrs[0])
                    break
                except GossipError:
                    if attempt == DIAL_ATTEMPTS - 1:
                        raise
    return time.perf_counter() - started
