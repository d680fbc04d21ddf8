"""Issue 17.11: an unauthorized identity's connection is closed, not only its streams reset."""

from __future__ import annotations

import os

import trio

from gossip import GossipError, PeerHost


def test_unauthorized_connections_are_closed():
    async def main() -> None:
        node = PeerHost(os.urandom(32), authorize=lambda pid: False)
        intruders = [PeerHost(os.urandom(32), authorize=None) for _ in range(5)]
        async with node.running():
            target = node.listen_addrs[0]
            for intruder in intruders:
                async with intruder.running():
                    try:
                        await intruder.connect(target)
                    except GossipError:
                        pass
                    try:
                        await intruder.send_blob(node.peer_id, b"x", kind="update", timeout=10)
                    except GossipError:
                        pass
                    with trio.fail_after(
                        20
                    ):  # the node closes the connection on the refused stream
                        while node.peer_id in intruder.connected_peers():
                            await trio.sleep(0.05)
            with trio.fail_after(20):
                while node.connected_peers():
                    await trio.sleep(0.05)
            stats = (
                node.stats
            )  # each refused on connect (17.11) or, if it got a stream in first, on that
            assert stats.connections_refused + stats.streams_refused >= len(intruders)

    trio.run(main)
