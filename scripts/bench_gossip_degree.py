"""Benchmark: GossipSub traffic per member against N, full mesh against the partial mesh.

N real ``PeerHost`` s (py-libp2p, Noise, Yamux) on 127.0.0.1 in one process, every pair
connected, all subscribed to one topic. Each member publishes ``--messages`` control messages of
``--size`` bytes (a round's announcements); the script waits until every member received every
other member's messages, then lets ``--settle`` seconds of heartbeats pass (IHAVE gossip of the
message cache). It counts every pubsub RPC each host writes to the wire (``Pubsub.write_msg``):
RPCs, bytes, full messages pushed, and control entries (GRAFT, PRUNE, IHAVE, IWANT, IDONTWANT).
Two configurations per N: the full mesh (D = D_low = D_high = 64) and the partial mesh that
``gossip._degree.PARTIAL`` gives (D = 8, D_low = 6, D_high = 12).

    .venv/bin/python scripts/bench_gossip_degree.py                     # N = 4, 8, 16, 32
    .venv/bin/python scripts/bench_gossip_degree.py --sizes 4 8 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gossip import GossipError, PeerHost  # noqa: E402
from gossip._degree import FULL_MESH_UP_TO, mesh_degrees  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402

TOPIC = "medmesh/bench-degree"
CONFIGS = {"full": None, "partial": FULL_MESH_UP_TO + 1}  # `members` that selects each mesh


def _count_writes(host: PeerHost, counts: Counter) -> None:
    """Wrap the host's ``Pubsub.write_msg`` so every RPC it writes is tallied in ``counts``."""
    pubsub = host._pubsub
    original = pubsub.write_msg

    async def write_msg(stream, rpc) -> bool:
        counts["rpcs"] += 1
        counts["bytes"] += rpc.ByteSize()
        counts["messages"] += len(rpc.publish)
        if rpc.HasField("control"):
            c = rpc.control
            counts["graft"] += len(c.graft)
            counts["prune"] += len(c.prune)
            counts["ihave"] += len(c.ihave)
            counts["iwant"] += len(c.iwant)
            counts["idontwant"] += len(c.idontwant)
        return await original(stream, rpc)

    pubsub.write_msg = write_msg
    router = host._router
    dropped = router._handle_dropped_rpc

    def count_drop(peer_id, rpc, reason, *rest):
        counts["dropped_rpcs"] += 1
        counts["dropped_messages"] += len(rpc.publish)
        return dropped(peer_id, rpc, reason, *rest)

    router._handle_dropped_rpc = count_drop


async def _one(n: int, config: str, messages: int, size: int, settle: float) -> dict:
    members = CONFIGS[config]
    hosts = [
        PeerHost(
            hashlib.sha256(f"bench-degree/{config}/{n}/{i}".encode()).digest(),
            authorize=lambda _p: True,
            members=members,
            max_conns_per_ip=4 * n,
        )
        for i in range(n)
    ]
    counts = [Counter() for _ in hosts]
    for h, c in zip(hosts, counts, strict=True):
        _count_writes(h, c)
    async with AsyncExitStack() as stack:
        for h in hosts:
            await stack.enter_async_context(h.running())
        failed_dials: list[str] = []

        async def dial(h: PeerHost, addr: str) -> None:
            for attempt in range(3):  # 32 hosts dialing at once on a loaded loop: some fail
                try:
                    await h.connect(addr)
                    return
                except GossipError as exc:
                    if attempt == 2:
                        failed_dials.append(str(exc))
                    await trio.sleep(1.0)

        async with trio.open_nursery() as nursery:
            for i, h in enumerate(hosts):
                for other in hosts[:i]:
                    nursery.start_soon(dial, h, other.listen_addrs[0])
        subs = [await h.subscribe(TOPIC) for h in hosts]
        ready = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for h in hosts:
                others = {o.peer_id for o in hosts if o is not h}
                nursery.start_soon(h.wait_topic_peers, TOPIC, others, 300.0)
        ready_s = time.perf_counter() - ready
        for c in counts:
            c.clear()
        received = [0] * n
        expected = (n - 1) * messages
        started = time.perf_counter()
        payload = os.urandom(size)

        async def drain(i: int) -> None:
            while received[i] < expected:
                await subs[i].receive()
                received[i] += 1

        with trio.move_on_after(120.0):
            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(drain, i)
                for k in range(messages):
                    for h in hosts:
                        await h.publish(TOPIC, payload[:-4] + k.to_bytes(4, "big"))
        delivered_s = time.perf_counter() - started
        await trio.sleep(settle)  # heartbeats: IHAVE gossip over the message cache
        mesh = [len(h._router.mesh.get(TOPIC, ())) for h in hosts]
    keys = ("rpcs", "bytes", "messages", "graft", "prune", "ihave", "iwant", "idontwant")
    keys += ("dropped_rpcs", "dropped_messages")  # full outbound queues (32 RPCs per peer)
    per_member = {k: statistics.fmean(c[k] for c in counts) for k in keys}
    degrees = mesh_degrees(members)
    return {
        "n": n,
        "config": config,
        "degrees": {"d": degrees.d, "d_low": degrees.d_low, "d_high": degrees.d_high},
        "mesh_size_mean": statistics.fmean(mesh),
        "mesh_size_min": min(mesh),
        "ready_s": round(ready_s, 2),
        "failed_dials": len(failed_dials),
        "delivered_all": all(r >= expected for r in received),
        "missing_deliveries": sum(max(0, expected - r) for r in received),
        "delivery_s": round(delivered_s, 2),
        "per_member": {k: round(v, 1) for k, v in per_member.items()},
        "per_member_per_message_published": round(per_member["bytes"] / messages, 1),
    }


def _write(args: argparse.Namespace, runs: list[dict]) -> None:
    atomic_write_json(
        args.out,
        {
            "benchmark": "gossip_degree",
            "command": "python scripts/bench_gossip_degree.py " + " ".join(sys.argv[1:]),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared and busy (other work running)",
            "load_average": os.getloadavg(),
            "messages_per_member": args.messages,
            "message_bytes": args.size,
            "settle_s": args.settle,
            "summary": [
                {
                    "n": r["n"],
                    "config": r["config"],
                    "rpcs_per_member": r["per_member"]["rpcs"],
                    "bytes_per_member": r["per_member"]["bytes"],
                    "delivered_all": r["delivered_all"],
                    "missing_deliveries": r["missing_deliveries"],
                }
                for r in runs
            ],
            "runs": runs,
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--messages", type=int, default=5, help="messages each member publishes")
    ap.add_argument("--size", type=int, default=256, help="bytes per message")
    ap.add_argument(
        "--settle", type=float, default=3.0, help="seconds of heartbeats after delivery"
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/gossip_degree.json")
    args = ap.parse_args()
    import logging

    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    logging.getLogger("medmesh.gossip").setLevel(
        logging.CRITICAL
    )  # GRAFT-flood lines by the hundred
    runs = []
    for n in args.sizes:
        for config in args.configs:
            row = trio.run(_one, n, config, args.messages, args.size, args.settle)
            print(
                f"N={n:>3} {config:>7}: mesh {row['mesh_size_mean']:.1f}, per member "
                f"{row['per_member']['rpcs']:.0f} RPCs, {row['per_member']['bytes']:.0f} B, "
                f"{row['per_member']['messages']:.0f} msgs pushed, ihave {row['per_member']['ihave']:.0f}; "
                f"delivered all: {row['delivered_all']} ({row['missing_deliveries']} missing) in "
                f"{row['delivery_s']} s",
                flush=True,
            )
            runs.append(row)
            _write(args, runs)  # after every run: a long one keeps what it measured
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
