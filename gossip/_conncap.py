"""Connection-level limits: a cap on inbound connections per remote IP, and unauthorized
connections closed as soon as the handshake names their peer.

Sharp edge guarded here (issue 17.11): py-libp2p keeps an inbound connection open for as
long as the remote keeps it, and its only inbound limit is global. The stream gate
(:mod:`._gate`) closes a connection when an unauthorized peer opens a stream on it, but a
peer that connects and stays silent, or a client that opens TCP connections and never
finishes the Noise handshake, held a file descriptor each: 30 unregistered identities
took a node from 14 to 45 open files.

- :meth:`ConnectionGuard.install` wraps the swarm's inbound handler. Each inbound TCP
  connection counts against its remote IP from accept until its socket is closed; one
  above ``max_per_ip`` is closed before a byte of it is read. The cap counts every
  inbound connection, authorized or not, because the peer ID is unknown until the
  handshake has run; hospitals behind one NAT share an IP, so size it for them.
- It registers a notifee: a connection whose handshake names a peer that ``allows``
  refuses is closed at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from multiaddr import Multiaddr

from ._logs import log, short
from ._stats import StatsRecorder

#: Default cap on inbound connections from one IP (a hospital runs one node; a few NATed
#: hospitals, reconnects and simultaneous dials fit under it).
DEFAULT_MAX_PER_IP = 32


class ConnectionGuard(INotifee):
    """Counts inbound connections per IP and closes unauthorized ones."""

    def __init__(
        self,
        local: str,
        allows: Callable[[str, str], bool],
        stats: StatsRecorder,
        max_per_ip: int = DEFAULT_MAX_PER_IP,
    ) -> None:
        if max_per_ip < 1:
            raise ValueError(f"max_per_ip must be >= 1, got {max_per_ip}")
        self.max_per_ip = max_per_ip
        self._allows = allows
        self._stats = stats
        self._me = short(local)
        self._open: Counter[str] = Counter()
        self._over_cap = 0

    def open_from(self, ip: str) -> int:
        """Inbound connections from ``ip`` counted now."""
        return self._open[ip]

    def install(self, network: Any) -> None:
        inner = network._do_handle_inbound_connection  # noqa: SLF001 - the only per-connection hook

        async def guarded(read_write_closer: Any, maddr: Multiaddr, failure_event: Any) -> None:
            ip = _remote_ip(read_write_closer)
            if ip is None:
                await inner(read_write_closer, maddr, failure_event)
                return
            if self._open[ip] >= self.max_per_ip:
                self._over_cap += 1
                self._stats.add(connections_refused=1)
                if self._over_cap == 1 or self._over_cap % 100 == 0:
                    log.warning(
                        "[%s] %d inbound connections from %s: closing new ones (%d refused so far)",
                        self._me,
                        self.max_per_ip,
                        ip,
                        self._over_cap,
                    )
                await _close(read_write_closer)
                return
            self._open[ip] += 1
            _on_close(read_write_closer, lambda: self._release(ip))
            await inner(read_write_closer, maddr, failure_event)

        network._do_handle_inbound_connection = guarded
        network.register_notifee(self)

    def _release(self, ip: str) -> None:
        self._open[ip] -= 1
        if self._open[ip] <= 0:
            del self._open[ip]

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        remote = conn.muxed_conn.peer_id.to_base58()
        if not self._allows(remote, "connection"):
            self._stats.add(connections_refused=1)
            await _close(conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass


def _remote_ip(read_write_closer: Any) -> str | None:
    try:
        addr = read_write_closer.get_remote_address()
    except Exception:
        return None
    return None if addr is None else str(addr[0])


def _on_close(read_write_closer: Any, release: Callable[[], None]) -> None:
    """Call ``release`` once, when the raw connection is closed (by either side's handling)."""
    close = read_write_closer.close
    done = False

    async def closing() -> None:
        nonlocal done
        if not done:
            done = True
            release()
        await close()

    read_write_closer.close = closing


async def _close(target: Any) -> None:
    with trio.move_on_after(5):
        try:
            await target.close()
        except Exception:
            pass
