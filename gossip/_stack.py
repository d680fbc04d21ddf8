"""Construction of the py-libp2p objects behind a :class:`~gossip.PeerHost`.

Every setting here answers a sharp edge measured on py-libp2p 0.8.1
(docs/libp2p-pitfalls.md); numbers refer to that note:

* #1 plaintext fallback: ``new_host`` offers ``/plaintext/2.0.0``, secio and TLS
  besides Noise and will negotiate plaintext with a peer that offers only that.
  We pass a security map holding Noise alone, and a muxer map holding Yamux alone
  (the default also offers Mplex, ~5x slower).
* #4 heartbeat: ``GossipSub(heartbeat_interval=...)`` defaults to 120 s. We use 1 s.
* #3 stranding: with ``degree_high`` below N-1, PRUNE backoff plus the GRAFT-flood
  penalty left peers with an empty mesh for 50+ s. We set
  ``degree_low = degree = degree_high = MESH_DEGREE`` (64, far above a hospital
  network's 16-32 peers) so every subscribed peer is grafted and nobody is ever
  pruned for oversubscription, and we cut the PRUNE backoff to a few seconds.
  Adaptive gossip is off: it rewrites the degree bounds and, when it judges the
  network unhealthy, stretches the heartbeat to 30-60 s (``_adapt_heartbeat_parameters``).
  Eclipse protection is off: it wants peers on >= 3 distinct IPs, which hospitals
  behind one NAT (or tests on 127.0.0.1) do not have; our peers are vetted by
  ``authorize`` instead.
* #5 rate limit: ~10 messages/s per forwarder and topic, own publishes included,
  excess dropped with one log line. Raised to ``CONTROL_RATE_PER_S``.
* #2 1 MiB pubsub limit: ``max_control_bytes`` is capped at ``MAX_CONTROL_BYTES_LIMIT``.
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
"""

from __future__ import annotations

from collections.abc import Mapping

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

from ._yamux import NonBlockingReaderYamux
from ._yamux import install as install_yamux

MESH_DEGREE = 64
HEARTBEAT_INTERVAL_S = 1
PRUNE_BACKOFF_S = 5
UNSUBSCRIBE_BACKOFF_S = 2
CONTROL_RATE_PER_S = 1000.0
NEGOTIATION_TIMEOUT_S = 60.0
"""Seconds a new stream may take to agree on its protocol (py-libp2p's default: 10)."""
MAX_CONTROL_BYTES_LIMIT = 512 * 2**10
"""Largest allowed ``max_control_bytes``: half the library's silent 1 MiB RPC cap,
leaving room for the signed envelope and for batching."""

GOSSIPSUB_PROTOCOLS = (PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID)


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
    """py-libp2p's connection defaults, but ``NEGOTIATION_TIMEOUT_S`` to negotiate a stream."""
    return ConnectionConfig(
        outbound_stream_protocol_negotiation_timeout=NEGOTIATION_TIMEOUT_S,
        inbound_stream_protocol_negotiation_timeout=NEGOTIATION_TIMEOUT_S,
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


def build_pubsub(host: IHost) -> tuple[Pubsub, GossipSub]:
    """GossipSub tuned for a small full mesh, and the strict-signing Pubsub on top."""
    router = GossipSub(
        protocols=list(GOSSIPSUB_PROTOCOLS),
        degree=MESH_DEGREE,
        degree_low=MESH_DEGREE,
        degree_high=MESH_DEGREE,
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
    return pubsub, router
