"""The host interface a hospital peer uses: what :class:`~gossip.PeerHost` offers and what an
in-process stand-in (:class:`~gossip.MemoryHost`) must offer too."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ._blobs import BlobHandler
from ._stats import GossipStats
from ._subscriptions import Subscription


class Transport(Protocol):
    """One member's network endpoint: signed control messages by topic, direct blobs, counters."""

    peer_id: str

    @property
    def stats(self) -> GossipStats: ...

    @property
    def listen_addrs(self) -> list[str]: ...

    def running(self) -> AbstractAsyncContextManager[Transport]: ...

    async def connect(self, multiaddr: str) -> str: ...

    def connected_peers(self) -> list[str]: ...

    async def publish(self, topic: str, data: bytes) -> None: ...

    async def subscribe(self, topic: str) -> Subscription: ...

    async def wait_topic_peers(
        self, topic: str, peer_ids: Iterable[str], timeout: float = 10.0
    ) -> None: ...

    def on_blob(self, handler: BlobHandler) -> None: ...

    async def send_blob(
        self, peer_id: str, data: bytes, *, kind: str = "update", timeout: float | None = None
    ) -> None: ...
