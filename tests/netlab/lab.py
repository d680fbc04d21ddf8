"""The lab's topology: hospital namespaces and a chain namespace, each joined by a veth pair to a
Linux bridge in a bridge namespace, with per-link bandwidth (tbf), loss (nft numgen) and RTT
(the delay relay), and partitions by nft drop rules.

Addresses (10.77.0.0/16, only inside the namespaces this lab makes)::

    bridge ns  mm-<pid>-br  br0 10.77.0.1, relay aliases 10.77.1.<10+i> (one per hospital)
    chain ns   mm-<pid>-ch  eth0 10.77.0.2   anvil on :8545
    hospital i mm-<pid>-h<i> eth0 10.77.0.<10+i>  libp2p on :4001

How a byte travels from hospital A to hospital B: A dials B's relay alias 10.77.1.<10+B>:4001 (the
address every config lists for B); the relay in the bridge namespace holds each chunk RTT/2 and
forwards it to 10.77.0.<10+B>:4001, dialing from the bridge namespace. A hospital cannot reach
another hospital's own address directly (its nft output chain rejects it), so every peer-to-peer
byte crosses the relay. The bytes cross A's link (its tbf upload) and B's link (the bridge-side
tbf, B's input with its loss rule), whichever side dialed. The chain's RPC is not delayed.

A partition puts the other side's addresses (own and alias) into each member's nft set ``cut``:
input and output drop them, so open connections stall and new dials time out, as on a WAN.
``refuse`` makes a member answer everyone with TCP resets instead (its service down, its host up).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

from netlab.netns import (
    NetnsUnavailable,
    ensure_nftables,
    namespace_pids,
    namespaces,
    netns_supported,
    sh,
)
from netlab.relay import DelayRelay, Route

__all__ = ["Lab", "LinkSpec", "sweep_stale", "NODE_PORT", "CHAIN_PORT"]

NODE_PORT = 4001
CHAIN_PORT = 8545
CHAIN = "chain"
BRIDGE_IP = "10.77.0.1"
PREFIX = "mm-"


class LinkSpec:
    """A member's access link: bandwidth in Mbit/s (None: unlimited), loss in percent."""

    def __init__(self, mbit: float | None = None, loss: float = 0.0) -> None:
        self.mbit, self.loss = mbit, loss


def sweep_stale() -> list[str]:
    """Delete ``mm-<pid>-*`` namespaces whose creating process is gone (a killed earlier run),
    ending the processes still inside them (processes an earlier lab started)."""
    removed = []
    for ns in namespaces(PREFIX):
        owner = ns[len(PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            for pid in namespace_pids(ns):
                _kill(pid)
            sh("ip", "netns", "del", ns, check=False)
            removed.append(ns)
    return removed


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


class Lab:
    def __init__(
        self, hospitals: int, *, rtt_ms: float = 0.0, link: LinkSpec | None = None
    ) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        self.hospitals = hospitals
        self.bridge = f"{self.tag}-br"
        self.ns = {
            CHAIN: f"{self.tag}-ch",
            **{self.name(i): f"{self.tag}-h{i}" for i in range(hospitals)},
        }
        self.ip = {
            CHAIN: "10.77.0.2",
            **{self.name(i): f"10.77.0.{10 + i}" for i in range(hospitals)},
        }
        self.alias = {self.name(i): f"10.77.1.{10 + i}" for i in range(hospitals)}
        self.links = {m: link or LinkSpec() for m in self.ns}
        self.relay: DelayRelay | None = None
        self.rtt_ms = rtt_ms
        self.chain_proxy: tuple[str, int] | None = (
            None  # the test process's own way to the chain RPC
        )
        self._timers: list[threading.Timer] = []
        self._made: list[str] = []

    @staticmethod
    def name(i: int) -> str:
        return f"hospital-{chr(ord('a') + i)}"

    # -- build and tear down -------------------------------------------------------------------
    def up(self) -> None:
        why = netns_supported()
        if why is not None:
            raise NetnsUnavailable(why)
        ensure_nftables()
        sweep_stale()
        try:
            self._build()
        except BaseException:
            self.down()
            raise

    def _build(self) -> None:
        self._add_ns(self.bridge)
        sh("ip", "-n", self.bridge, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge, "addr", "add", f"{BRIDGE_IP}/16", "dev", "br0")
        for alias in self.alias.values():
            sh("ip", "-n", self.bridge, "addr", "add", f"{alias}/16", "dev", "br0")
        sh("ip", "-n", self.bridge, "link", "set", "br0", "up")
        for i, (member, ns) in enumerate(self.ns.items()):
            self._add_ns(ns)
            port = f"p{i}"
            sh(
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                self.bridge,
            )
            sh("ip", "-n", ns, "addr", "add", f"{self.ip[member]}/16", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", self.bridge, "link", "set", port, "master", "br0", "up")
            self._nft_base(member)
            self.set_link(member, self.links[member])
        routes = [
            Route(
                self.bridge,
                (alias, NODE_PORT),
                self.ns[m],
                (self.ip[m], NODE_PORT),
                dial_ns=self.bridge,  # so the relayed bytes cross m's own link too
            )
            for m, alias in self.alias.items()
        ]
        proxy_port = _free_local_port()
        routes.append(
            Route(
                None,
                ("127.0.0.1", proxy_port),
                self.ns[CHAIN],
                (self.ip[CHAIN], CHAIN_PORT),
                delayed=False,
            )
        )
        self.chain_proxy = ("127.0.0.1", proxy_port)
        self.relay = DelayRelay(routes, self.rtt_ms / 2000)
        self.relay.start()

    def _add_ns(self, ns: str) -> None:
        sh("ip", "netns", "add", ns)
        self._made.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def _nft_base(self, member: str) -> None:
        peers = f"10.77.0.10-10.77.0.{9 + self.hospitals}"
        direct = f"ip daddr {peers} ip daddr != {self.ip[member]} reject" if member != CHAIN else ""
        sh(
            "ip",
            "netns",
            "exec",
            self.ns[member],
            "nft",
            "-f",
            "-",
            input_=f"""
table inet mm {{
  set cut {{ type ipv4_addr; }}
  set refuse {{ type ipv4_addr; }}
  chain input {{ type filter hook input priority 0; policy accept;
    iif lo accept
    ip saddr @cut drop
    meta l4proto tcp ip saddr @refuse reject with tcp reset
  }}
  chain loss {{ }}
  chain output {{ type filter hook output priority 0; policy accept;
    oif lo accept
    ip daddr @cut drop
    {direct}
  }}
}}
""",
        )
        sh(
            "ip",
            "netns",
            "exec",
            self.ns[member],
            "nft",
            "add",
            "rule",
            "inet",
            "mm",
            "input",
            "jump",
            "loss",
        )

    def down(self) -> None:
        """Stop the relay and timers, end every process left in the lab's namespaces, delete them
        (deleting a namespace deletes its veth ends and the bridge). Safe to call twice."""
        for timer in self._timers:
            timer.cancel()
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        for ns in reversed(self._made):
            for pid in namespace_pids(ns):
                _kill(pid)
            sh("ip", "netns", "del", ns, check=False)
        self._made.clear()

    # -- link conditions ----------------------------------------------------------------------
    def set_link(self, member: str, spec: LinkSpec) -> None:
        """``member``'s link, both directions: tbf on its own veth end (upload) and on the
        bridge's end (download); nft ``numgen random`` drops ``loss`` % of what it receives."""
        self.links[member] = spec
        port = f"p{list(self.ns).index(member)}"
        for ns, dev in ((self.ns[member], "eth0"), (self.bridge, port)):
            sh("tc", "-n", ns, "qdisc", "del", "dev", dev, "root", check=False)
            if spec.mbit is not None:
                burst = max(32_000, int(spec.mbit * 1e6 / 8 / 100))  # >= one 10 ms tick of the rate
                sh(
                    "tc",
                    "-n",
                    ns,
                    "qdisc",
                    "add",
                    "dev",
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    f"{spec.mbit}mbit",
                    "burst",
                    str(burst),
                    "latency",
                    "200ms",
                )
        nsx = ("ip", "netns", "exec", self.ns[member], "nft")
        sh(*nsx, "flush", "chain", "inet", "mm", "loss")
        if spec.loss > 0:
            sh(
                *nsx,
                "add",
                "rule",
                "inet",
                "mm",
                "loss",
                "numgen",
                "random",
                "mod",
                "1000",
                "<",
                str(int(round(spec.loss * 10))),
                "drop",
            )

    def set_rtt(self, rtt_ms: float) -> None:
        self.rtt_ms = rtt_ms
        if self.relay is not None:
            self.relay.delay = rtt_ms / 2000

    # -- partitions ---------------------------------------------------------------------------
    def addresses(self, member: str) -> list[str]:
        return [self.ip[member]] + ([self.alias[member]] if member in self.alias else [])

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every member of each group off from every member of the other groups (members
        named in no group keep all their links)."""
        sets = [list(g) for g in groups]
        for i, group in enumerate(sets):
            others = [m for j, g in enumerate(sets) if j != i for m in g]
            cut = [a for m in others for a in self.addresses(m)]
            for member in group:
                sh(
                    "ip",
                    "netns",
                    "exec",
                    self.ns[member],
                    "nft",
                    "add",
                    "element",
                    "inet",
                    "mm",
                    "cut",
                    "{ " + ", ".join(cut) + " }",
                )

    def isolate(self, member: str) -> None:
        """Cut ``member`` (a hospital, or ``"chain"``) off from everyone else."""
        self.partition([member], [m for m in self.ns if m != member])

    def refuse(self, member: str) -> None:
        """``member``'s host stays up but its service is down: it answers every TCP segment from
        the others with a reset (a crashed RPC server; a partition drops instead)."""
        # the bridge's address too: the relay dials each hospital from there
        others = [BRIDGE_IP] + [a for m in self.ns if m != member for a in self.addresses(m)]
        sh(
            "ip",
            "netns",
            "exec",
            self.ns[member],
            "nft",
            "add",
            "element",
            "inet",
            "mm",
            "refuse",
            "{ " + ", ".join(others) + " }",
        )

    def heal(self) -> None:
        """Undo every partition and refusal."""
        for ns in self.ns.values():
            for table_set in ("cut", "refuse"):
                sh("ip", "netns", "exec", ns, "nft", "flush", "set", "inet", "mm", table_set)

    def at(self, seconds: float, action: Callable[[], None]) -> None:
        """Run ``action`` (a partition, a heal) ``seconds`` from now, on a timer thread."""
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    # -- running things inside --------------------------------------------------------------
    def exec_prefix(self, member: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.ns[member])

    @property
    def chain_rpc(self) -> str:
        """The chain's RPC URL as the hospitals reach it."""
        return f"http://{self.ip[CHAIN]}:{CHAIN_PORT}"

    @property
    def proxy_rpc(self) -> str:
        """The chain's RPC URL as the test process reaches it (a loopback forwarder)."""
        assert self.chain_proxy is not None
        return f"http://{self.chain_proxy[0]}:{self.chain_proxy[1]}"

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def _free_local_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
