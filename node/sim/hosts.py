"""The hosts of a simulated consortium: in memory, or one real libp2p host per member.

``memory`` gives every member a :class:`gossip.MemoryHost` on one :class:`gossip.MemoryNetwork`
(no sockets). ``libp2p`` gives every member a :class:`gossip.PeerHost` on 127.0.0.1 (Noise,
Yamux, GossipSub, direct streams), as a node process has, all in this one process, and
:func:`connect_hosts` wires them: every host knows every other's address, and holds
connections to about :data:`DIAL_DEGREE` others (all of them up to ``DIAL_DEGREE + 1``
members), a random graph that contains a ring, so it is connected. GossipSub carries control
messages over those connections; a blob to a member not yet connected (a committee seat, a
follower asking a seat for the aggregate) dials it on demand (``PeerHost.remember``).

Dialing every pair instead (2,016 at N = 64) took 9 to 30 minutes in one process, and every
control message then crossed N (N - 1) links of the one event loop: at N = 64 round 1's
blobs to the committee got no answer within 60 s (docs/simulation.md). Every host accepts
up to 2N connections from the one address 127.0.0.1.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable

import trio

from gossip import GossipError, MemoryNetwork, PeerHost, Transport

__all__ = [
    "DIAL_ATTEMPTS",
    "DIAL_DEGREE",
    "TRANSPORTS",
    "connect_hosts",
    "dial_plan",
    "ensure_fds",
    "host_factory",
]

TRANSPORTS = ("memory", "libp2p")
FDS_PER_CONNECTION = 2
"""Both ends of a loopback connection between two hosts of this process are its sockets."""
DIAL_ATTEMPTS = 3
"""Tries per pair: on a starved machine a Noise handshake can time out, and one lost pair
would end the whole run."""
DIAL_DEGREE = 8
"""Connections each host dials or accepts at the start: GossipSub's D (``gossip._degree``)."""
PARALLEL_DIALS = 8
"""Dials in flight at once (each runs a Noise handshake in this process's one event loop)."""
BLOB_TIMEOUT_PER_MEMBER_S = 5.0
"""Each host's blob deadline base (``PeerHost(blob_timeout_s=...)``) per member, 60 s (a node's)
at least: N hosts share one event loop with the N members' chain calls, and a blob's protocol
round trips (stream open, header, payload, acks) slow with N. At N = 32 under load the stream
open alone took 33 s (median) and the header reached the receiver 13.5 s after that, so every
update missed a 60 s deadline (docs/simulation.md)."""

MakeHost = Callable[[bytes, Callable[[str], bool]], Transport]


def host_factory(transport: str, peers: int) -> MakeHost:
    """``node.sim.demo.join``'s host maker (``make_host(libp2p_seed, authorize)``)."""
    if transport == "memory":
        network = MemoryNetwork()
        return lambda seed, gate: network.host(seed, authorize=gate)
    ensure_fds(peers)
    # every host dials from 127.0.0.1; twice N leaves room for redials (relays, retries)
    blob_timeout = max(60.0, BLOB_TIMEOUT_PER_MEMBER_S * peers)
    return lambda seed, gate: PeerHost(
        seed,
        authorize=gate,
        members=peers,
        max_conns_per_ip=2 * peers,
        blob_timeout_s=blob_timeout,
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


def dial_plan(n: int, degree: int = DIAL_DEGREE, seed: int = 0) -> list[tuple[int, int]]:
    """The pairs ``(i, j)``, ``j < i``, that host ``i`` dials: every pair when ``n - 1 <=
    degree``; else a ring (so the graph is connected) plus random links until each host has
    ``degree`` links or no host with fewer is left to link to (a few end one short)."""
    if n < 2 or degree < 2:
        raise ValueError(f"a dial plan needs n >= 2 and degree >= 2, got {n} and {degree}")
    if n - 1 <= degree:
        return [(i, j) for i in range(n) for j in range(i)]
    links = {frozenset((i, (i + 1) % n)) for i in range(n)}
    count = [2] * n
    rng = random.Random(seed)
    for i in rng.sample(range(n), n):
        free = [
            j for j in range(n) if j != i and count[j] < degree and frozenset((i, j)) not in links
        ]
        rng.shuffle(free)
        for j in free[: max(0, degree - count[i])]:
            links.add(frozenset((i, j)))
            count[i] += 1
            count[j] += 1
    return sorted((max(pair), min(pair)) for pair in links)


async def connect_hosts(hosts: list[Transport], degree: int = DIAL_DEGREE, seed: int = 0) -> float:
    """Connect running hosts along :func:`dial_plan` (:data:`PARALLEL_DIALS` at a time), then
    let each remember every other's address to dial on demand; returns the seconds it took."""
    started = time.perf_counter()
    limit = trio.CapacityLimiter(PARALLEL_DIALS)

    async def dial(host: Transport, other: Transport) -> None:
        async with limit:
            for attempt in range(DIAL_ATTEMPTS):
                try:
                    await host.connect(other.listen_addrs[0])
                    return
                except GossipError:
                    if attempt == DIAL_ATTEMPTS - 1:
                        raise

    async with trio.open_nursery() as nursery:
        for i, j in dial_plan(len(hosts), degree, seed):
            nursery.start_soon(dial, hosts[i], hosts[j])
    for host in hosts:  # after the dials: a dial keeps its address for 120 s only
        if isinstance(host, PeerHost):
            for other in hosts:
                if other is not host:
                    host.remember(other.listen_addrs[0])
    return time.perf_counter() - started
