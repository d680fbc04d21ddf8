"""Construction of the py-libp2p objects behind a :class:`~gossip.PeerHost`.

Every setting here answers a sharp edge measured on py-libp2p 0.8.1
(docs/libp2p-pitfalls.md); numbers refer to that note:

* #1 plaintext fallback: ``new_host`` offers ``/plaintext/2.0.0``, secio and TLS
  besides Noise and will negotiate plaintext with a peer that offers only that.
  We pass a security map holding Noise alone, and a muxer map holding Yamux alone
  (the default also offers Mplex, ~5x slower).
* #4 heartbeat: ``GossipSub(heartbeat_interval=...)`` defaults to 120 s. We use 1 s.
* #3 stranding: with ``degree_high`` below N-1, PRUNE backoff plus the GRAFT-flood
  penalty left peers with an empty mesh for 50+ s. Up to ``_degree.FULL_MESH_UP_TO`` (64)
  members we set ``degree_low = degree = degree_high`` = 64, far above N - 1, so every
  subscribed peer is grafted and nobody is ever pruned for oversubscription; larger
  consortia get a partial mesh (``_degree.mesh_degrees``). Either way we cut the PRUNE
  backoff to a few seconds.
  Adaptive gossip is off: it rewrites the degree bounds and, when it judges the
  network unhealthy, stretches the heartbeat to 30-60 s (``_adapt_heartbeat_parameters``).
  Eclipse protection is off: it wants peers on >= 3 distinct IPs, which hospitals
  behind one NAT (or tests on 127.0.0.1) do not have; our peers are vetted by
  ``authorize`` instead.
* #5 rate limit: ~10 messages/s per forwarder and topic, own publishes included,
  excess dropped with one log line. Raised to ``CONTROL_RATE_PER_S``.
* #2 1 MiB pubsub limit: ``max_control_bytes`` is capped at ``MAX_CONTROL_BYTES_LIMIT``.
* #14 IDONTWANT for every message, to every mesh peer: not sent (``_ConsortiumGossipSub``).
* #15 every RPC's signed peer record verified on every receipt: once per peer (``_records``).
* #10 Yamux write-write deadlock: the connection reader writes frames itself and
  blocks on a full socket; ``_yamux.NonBlockingReaderYamux`` queues those writes.
* #11 negotiation timeouts: py-libp2p gives every new stream 10 s (outbound and
  inbound, ``ConnectionConfig``) to agree on a protocol, inside whatever deadline the
  caller set. When 16 hosts share one loop and all open their blob streams while the
  round's announcements flood the mesh, the loop runs 700-800 tasks per pass and a
  connection's reader advances a few frames per second: every one of the 240
  negotiations passed 10 s and every transfer failed, though nothing was stuck.
  We set both to ``NEGOTIATION_TIMEOUT_S``, so the blob protocol's own deadline
  (``_blobs.default_timeout``, 60 s and up) decides when a transfer has failed.
  The same holds for a dial and a connection's Noise and Yamux upgrade (10 s each by
  default): with 64 hosts in one process, 145 of round 2's 252 blob sends failed to dial
  the new committee seats ("SwarmDialAllFailedError"); ``DIAL_TIMEOUT_S`` gives them 60 s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import libp2p
from libp2p.abc import IHost, ISecureTransport
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TMuxerOptions, TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID

from ._degree import MeshDegrees, mesh_degrees
from ._records import install as install_record_check
from ._yamux import NonBlockingReaderYamux
from ._yamux import install as install_yamux

HEARTBEAT_INTERVAL_S = 1
PRUNE_BACKOFF_S = 5
UNSUBSCRIBE_BACKOFF_S = 2
CONTROL_RATE_PER_S = 1000.0
OUTBOUND_QUEUE_RPCS = 1024
"""RPCs each peer's outbound pubsub queue holds (py-libp2p's default: 32); see ``_RoomyQueues``."""
NEGOTIATION_TIMEOUT_S = 60.0
"""Seconds a new stream may take to agree on its protocol (py-libp2p's default: 10)."""
DIAL_TIMEOUT_S = 60.0
"""Seconds a dial, and the security and muxer upgrade of a connection either way, may take
(py-libp2p's defaults: 10 each). A caller that wants less bounds its own dial
(``PeerKeeper``'s ``dial_timeout``, a blob's deadline)."""
MAX_CONTROL_BYTES_LIMIT = 512 * 2**10
"""Largest allowed ``max_control_bytes``: half the library's silent 1 MiB RPC cap,
leaving room for the signed envelope and for batching."""

GOSSIPSUB_PROTOCOLS = (PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID)


def check_limits(max_blob_bytes: int, max_control_bytes: int) -> None:
    """Raise ``ValueError`` for a host's size limits that cannot work."""
    if max_blob_bytes <= 0:
        raise ValueError(f"max_blob_bytes must be positive, got {max_blob_bytes}")
    if not 0 < max_control_bytes <= MAX_CONTROL_BYTES_LIMIT:
        raise ValueError(
            f"max_control_bytes must be in 1..{MAX_CONTROL_BYTES_LIMIT}, got {max_control_bytes}"
        )


def identity_from_seed(key_seed: bytes) -> KeyPair:
    """The Ed25519 key pair derived from a 32-byte seed."""
    if len(key_seed) != 32:
        raise ValueError(f"key_seed must be 32 bytes, got {len(key_seed)}")
    return create_new_key_pair(key_seed)


def noise_only(key_pair: KeyPair) -> Mapping[TProtocol, ISecureTransport]:
    """A security map offering ``/noise`` and nothing else (never plaintext)."""
    return {
        NOISE_PROTOCOL_ID: NoiseTransport(
            key_pair, noise_privkey=create_x25519_key_pair().private_key
        )
    }


def yamux_only() -> TMuxerOptions:
    """A muxer map offering ``/yamux/1.0.0`` and nothing else (with ``_yamux``'s deadlock fix)."""
    return {TProtocol(YAMUX_PROTOCOL_ID): NonBlockingReaderYamux}


def patient_negotiation() -> ConnectionConfig:
    """py-libp2p's connection defaults, but ``NEGOTIATION_TIMEOUT_S`` to negotiate a stream and
    ``DIAL_TIMEOUT_S`` to dial and upgrade a connection."""
    return ConnectionConfig(
        outbound_stream_protocol_negotiation_timeout=NEGOTIATION_TIMEOUT_S,
        inbound_stream_protocol_negotiation_timeout=NEGOTIATION_TIMEOUT_S,
        dial_timeout=DIAL_TIMEOUT_S,
        inbound_upgrade_timeout=DIAL_TIMEOUT_S,
        outbound_upgrade_timeout=DIAL_TIMEOUT_S,
    )


def build_host(key_pair: KeyPair) -> IHost:
    """A TCP host with Noise-only security, Yamux-only muxing and patient stream negotiation."""
    install_yamux()
    return libp2p.new_host(
        key_pair=key_pair,
        sec_opt=noise_only(key_pair),
        muxer_opt=yamux_only(),
        connection_config=patient_negotiation(),
        enable_mDNS=False,
        enable_upnp=False,
    )


class _ConsortiumGossipSub(GossipSub):
    """GossipSub with medmesh's changes to py-libp2p 0.8.1.

    * D_lazy: the library takes none; with adaptive gossip off it sends IHAVE gossip to
      ``max(6, subscribers // 4)`` peers per topic and heartbeat, which grows with N (64 at 256
      members). Here it is ``d_lazy``.
    * No mesh "quality maintenance" (py-libp2p's "v2.0" extra, not in the GossipSub v1.1
      specification): every heartbeat it swapped the lowest-scored mesh peer for any peer
      scoring 0.1 higher, and scores move with every delivery, so meshes churned (about 220
      GRAFTs and 200 PRUNEs per member in two minutes at 16 hosts) and messages forwarded
      into the churn were lost. Degree bounds still hold the mesh (``heartbeat``).
    * No IDONTWANT. GossipSub v1.2 lets a peer that received a message tell its mesh peers not
      to send it the same one; go-libp2p does so only for messages over 1 KiB
      (``IDontWantMessageThreshold``), py-libp2p 0.8.1 for every message, to every mesh peer,
      each as a separate RPC. Our control messages are hints of a few hundred bytes, so this
      doubled the RPCs per message (N (N - 1) more per message in a full mesh) to save none.
    * GRAFT-flood detection is off (``graft_flood_threshold = 0``). The library stamps the
      time of every PRUNE it *receives* and calls a GRAFT from that same peer within the
      backoff a flood: it penalizes the peer's score and prunes it again. In a partial mesh a
      peer that pruned us for oversubscription and then runs short grafts us again within
      seconds, so honest peers sank in score. A GRAFT
      during our own backoff is still refused with a PRUNE (``handle_graft``), and only
      registered members reach the router (``authorize``).
    """

    LIBRARY_FLOOD_THRESHOLD_S = 10.0  # py-libp2p 0.8.1's graft_flood_threshold

    def __init__(self, d_lazy: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.d_lazy = d_lazy
        self.graft_flood_threshold = 0.0

    def _get_adaptive_gossip_peers_count(self, topic: str, total_peers: int) -> int:
        return min(self.d_lazy, total_peers)

    async def _maintain_mesh_quality(self, topic: str) -> None:
        return

    async def _emit_idontwant_for_message(self, msg_id: bytes, topic_ids: Iterable[str]) -> None:
        return


class _RoomyQueues(dict):
    """``Pubsub.peer_queues`` whose per-peer outbound queues hold ``OUTBOUND_QUEUE_RPCS``.

    py-libp2p 0.8.1 gives each peer a queue of 32 RPCs and drops (at DEBUG) what does not fit.
    ``ControlPlane.publish`` waits for room before our own publishes, but in a partial mesh a
    peer also forwards every other member's messages: a round's burst of 80 through one
    forwarder overflowed it (about 105 messages dropped per member at 16 hosts).
    """

    def __setitem__(self, peer, queue) -> None:
        inner = getattr(queue, "_queue", None)
        if inner is not None:
            inner.max_size = max(inner.max_size, OUTBOUND_QUEUE_RPCS)
        super().__setitem__(peer, queue)


def build_pubsub(host: IHost, degrees: MeshDegrees | None = None) -> tuple[Pubsub, GossipSub]:
    """GossipSub with ``degrees`` (default: the full mesh), and the strict-signing Pubsub on top."""
    mesh = degrees or mesh_degrees(None)
    install_record_check()
    router = _ConsortiumGossipSub(
        mesh.d_lazy,
        protocols=list(GOSSIPSUB_PROTOCOLS),
        degree=mesh.d,
        degree_low=mesh.d_low,
        degree_high=mesh.d_high,
        heartbeat_initial_delay=0.1,
        heartbeat_interval=HEARTBEAT_INTERVAL_S,
        prune_back_off=PRUNE_BACKOFF_S,
        unsubscribe_back_off=UNSUBSCRIBE_BACKOFF_S,
        do_px=False,
        adaptive_gossip_enabled=False,
        spam_protection_enabled=True,
        max_messages_per_topic_per_second=CONTROL_RATE_PER_S,
        eclipse_protection_enabled=False,
    )
    pubsub = Pubsub(host, router, strict_signing=True)
    pubsub.peer_queues = _RoomyQueues()
    return pubsub, router
