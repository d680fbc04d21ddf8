"""A user-space TCP delay relay for the lab (the kernel here has no netem).

Each route listens at an address in one namespace and forwards every accepted connection to a
target in another. Each chunk read from either side is held ``delay`` seconds (RTT/2) before it
is written on, in order, so a path through one route adds one RTT to every round trip. The relay
runs its own asyncio loop on a thread of the test process; ``delay`` can change while it runs.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass

from netlab.netns import socket_in

__all__ = ["Route", "DelayRelay"]

CHUNK = 64 * 1024
QUEUE_CHUNKS = 256  # chunks in flight per direction before the reader waits (back-pressure)


@dataclass(frozen=True)
class Route:
    listen_ns: str | None  # None: the test process's own namespace (loopback)
    listen: tuple[str, int]
    target_ns: str | None
    target: tuple[str, int]
    delayed: bool = True  # False: a plain forwarder (the test's own RPC to the chain)
    dial_ns: str | None = None  # where the relay dials ``target`` from (None: ``target_ns``)


class DelayRelay:
    def __init__(self, routes: list[Route], delay: float = 0.0) -> None:
        self.routes = routes
        self.delay = delay
        self.bytes_forwarded = 0
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.base_events.Server] = []
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="netlab-relay"
        )

    def start(self) -> None:
        self._thread.start()
        for route in self.routes:  # listening sockets made in their namespaces, served on the loop
            sock = socket_in(route.listen_ns)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(route.listen)
            sock.listen(128)
            server = asyncio.run_coroutine_threadsafe(self._serve(route, sock), self._loop).result(
                10
            )
            self._servers.append(server)

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    async def _serve(self, route: Route, sock: socket.socket) -> asyncio.base_events.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._pair(route, reader, writer)
            except asyncio.CancelledError:  # the relay is stopping
                writer.close()

        return await asyncio.start_server(handle, sock=sock)

    async def _pair(
        self, route: Route, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter
    ) -> None:
        # made in the dialing namespace before connecting: from the bridge, the bytes cross the
        # target's own link (its tbf and loss); from the target's namespace they would take its
        # loopback and skip that link
        out = socket_in(route.dial_ns or route.target_ns)
        try:
            await asyncio.wait_for(self._loop.sock_connect(out, route.target), 10)
            t_reader, t_writer = await asyncio.open_connection(sock=out)
        except (TimeoutError, OSError):
            out.close()
            c_writer.close()
            return
        delayed = route.delayed
        await asyncio.gather(
            self._pipe(c_reader, t_writer, delayed),
            self._pipe(t_reader, c_writer, delayed),
            return_exceptions=True,
        )
        for w in (c_writer, t_writer):
            w.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: bool
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

        async def read() -> None:
            try:
                while chunk := await reader.read(CHUNK):
                    await queue.put((time.monotonic() + (self.delay if delayed else 0.0), chunk))
            except OSError:
                pass
            await queue.put((time.monotonic() + (self.delay if delayed else 0.0), b""))

        async def write() -> None:
            while True:
                due, chunk = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # the link's latency: holding the chunk is the point
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                self.bytes_forwarded += len(chunk)
                await writer.drain()

        task = asyncio.ensure_future(read())
        try:
            await write()
        except OSError:
            pass
        finally:
            task.cancel()
