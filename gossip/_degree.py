"""GossipSub's mesh degree for a consortium of N members.

GossipSub (Vyzovitis et al., "GossipSub: Attack-Resilient Message Propagation in the Filecoin
and ETH2.0 Networks", 2020, section 2) keeps, per topic, a mesh of ``D`` peers (between ``D_low``
and ``D_high``) to which every message is pushed in full, and gossips message IDs (IHAVE) to
``D_lazy`` other subscribers each heartbeat. Each member then sends a message to about ``D``
peers instead of ``N - 1``, so its control traffic stays flat in N once N passes ``D``.

Up to :data:`FULL_MESH_UP_TO` members medmesh keeps the full mesh it always had
(``D = D_low = D_high`` = :data:`FULL_MESH_DEGREE`, at least N - 1): every subscriber is
grafted, nobody is pruned, and a message reaches everyone in one hop. Above it the degrees
are the libp2p specification's defaults raised slightly (:data:`PARTIAL`). The threshold
comes from a measurement with real hosts (``scripts/bench_gossip_degree.py``,
docs/network.md#gossipsubs-mesh-degree): with py-libp2p 0.8.1 the partial mesh lost messages
and cost more bytes per member than the full mesh at every N measured, so the full mesh stays
wherever it was in use before (up to 64 members).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL_MESH_DEGREE", "FULL_MESH_UP_TO", "PARTIAL", "MeshDegrees", "mesh_degrees"]

FULL_MESH_DEGREE = 64
"""Every subscriber grafted: far above any N - 1 a full mesh is used for."""
FULL_MESH_UP_TO = FULL_MESH_DEGREE
"""The largest consortium that keeps the full mesh (docs/network.md gives the measurement)."""


@dataclass(frozen=True)
class MeshDegrees:
    """GossipSub's degree bounds: mesh target ``d`` within ``[d_low, d_high]``, gossip to ``d_lazy``."""

    d: int
    d_low: int
    d_high: int
    d_lazy: int

    def __post_init__(self) -> None:
        if not 1 <= self.d_low <= self.d <= self.d_high:
            raise ValueError(
                f"mesh degrees need 1 <= d_low <= d <= d_high, got {self.d_low}, {self.d}, {self.d_high}"
            )
        if self.d_lazy < 0:
            raise ValueError(f"d_lazy must be >= 0, got {self.d_lazy}")

    @property
    def full(self) -> bool:
        """True for the full mesh (every subscriber grafted)."""
        return self.d_low == self.d_high == FULL_MESH_DEGREE


FULL = MeshDegrees(FULL_MESH_DEGREE, FULL_MESH_DEGREE, FULL_MESH_DEGREE, 6)
PARTIAL = MeshDegrees(d=8, d_low=6, d_high=12, d_lazy=6)
"""Above :data:`FULL_MESH_UP_TO` members: the specification's D = 6, D_low = 4, D_high = 12,
D_lazy = 6 with D and D_low raised by two, so a member keeps a margin of mesh peers over its
lower bound through the PRUNE backoff that follows a churned connection."""


def mesh_degrees(members: int | None) -> MeshDegrees:
    """The degrees for a consortium of ``members`` (None: unknown, the full mesh)."""
    if members is None:
        return FULL
    if members < 1:
        raise ValueError(f"a consortium has at least one member, got {members}")
    return FULL if members <= FULL_MESH_UP_TO else PARTIAL
