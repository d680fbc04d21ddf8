"""The authorization gate in front of every inbound stream.

Sharp edge guarded here (docs/libp2p-pitfalls.md #8): py-libp2p has no peer-ID gate at
connection level (``ConnectionGate`` filters IPs; a pubsub blacklist leaves the
TCP connection open). ``Gate.install`` wraps the swarm's common stream handler,
which every stream a remote peer opens passes before protocol negotiation, so
``authorize`` is consulted for all of them: blob, pubsub, identify, ping. A
refused stream is reset before a byte of it is read, and the connection it came
on is closed: an unauthorized identity cannot hold connections (and file
descriptors) open.

It also guards the swarm: py-libp2p runs stream handlers in the swarm's nursery
without a ``try``, so one raising handler would tear down every connection. The
gate turns such an exception into one log line and a reset stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from libp2p.abc import INetStream, INetworkService

from ._errors import GossipError
from ._logs import log, one_line, short
from ._stats import StatsRecorder

StreamHandler = Callable[[INetStream], Awaitable[None]]


class Gate:
    """Asks ``authorize(peer_id)`` and logs the first refusal per peer."""

    def __init__(
        self,
        local_peer_id: str,
        authorize: Callable[[str], bool] | None,
        stats: StatsRecorder,
    ) -> None:
        self._local = local_peer_id
        self._me = short(local_peer_id)
        self._authorize = authorize
        self._stats = stats
        self._denied: set[str] = set()
        self._inner: StreamHandler | None = None
        self.quiet = False
        """Set while shutting down: handler failures are then logged at DEBUG."""

    def allows(self, peer_id: str, what: str) -> bool:
        """Whether ``peer_id`` may do ``what`` (``what`` only names it in the log line).

        An exception inside ``authorize`` counts as a refusal. A peer refused
        once is not logged again until it has been allowed in between.
        """
        if self._authorize is None or peer_id == self._local:
            return True
        try:
            allowed = bool(self._authorize(peer_id))
        except Exception as exc:
            if peer_id not in self._denied:
                self._denied.add(peer_id)
                log.error(
                    "[%s] authorize(%s) raised %s; treating as denied (%s refused)",
                    self._me,
                    short(peer_id),
                    one_line(exc),
                    what,
                )
            return False
        if allowed:
            self._denied.discard(peer_id)
        elif peer_id not in self._denied:
            self._denied.add(peer_id)
            log.warning(
                "[%s] peer [%s] not authorized (%s refused; further refusals not logged)",
                self._me,
                short(peer_id),
                what,
            )
        return allowed

    def install(self, network: INetworkService) -> None:
        """Put the gate in front of ``network``'s common stream handler."""
        inner: StreamHandler | None = getattr(network, "common_stream_handler", None)
        if inner is None:
            raise GossipError("py-libp2p network has no common_stream_handler to gate")
        self._inner = inner
        network.set_stream_handler(self._handle)

    async def _handle(self, stream: INetStream) -> None:
        remote = stream.muxed_conn.peer_id.to_base58()
        if not self.allows(remote, "inbound stream"):
            self._stats.add(streams_refused=1)
            await _reset(stream)
            await _close(
                stream.muxed_conn
            )  # an unauthorized peer holds no connection open (issue 17.11)
            return
        assert self._inner is not None
        try:
            await self._inner(stream)
        except Exception as exc:
            level = logging.DEBUG if self.quiet else logging.WARNING
            log.log(
                level,
                "[%s] stream handler for [%s] failed: %s",
                self._me,
                short(remote),
                one_line(exc),
            )
            await _reset(stream)


async def _close(conn) -> None:
    try:
        await conn.close()
    except Exception:
        pass


async def _reset(stream: INetStream) -> None:
    try:
        await stream.reset()
    except Exception:
        pass
