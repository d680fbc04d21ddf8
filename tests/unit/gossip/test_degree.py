"""GossipSub's mesh degree for the consortium's size (gossip._degree)."""

from __future__ import annotations

import pytest

from gossip import PeerHost
from gossip._degree import FULL_MESH_DEGREE, FULL_MESH_UP_TO, MeshDegrees, mesh_degrees

# The libp2p GossipSub v1.1 specification's defaults (specs/pubsub/gossipsub, "Parameters"):
SPEC_D, SPEC_D_LOW, SPEC_D_HIGH, SPEC_D_LAZY = 6, 4, 12, 6


@pytest.mark.parametrize("members", [None, 1, 2, 4, 8, 16, 32, FULL_MESH_UP_TO])
def test_small_consortia_keep_the_full_mesh(members: int | None) -> None:
    degrees = mesh_degrees(members)
    assert degrees.full
    if members is not None:
        assert degrees.d_low >= members - 1  # every other member is grafted, none pruned


@pytest.mark.parametrize("members", [FULL_MESH_UP_TO + 1, 128, 256, 10_000])
def test_large_consortia_get_a_bounded_degree(members: int) -> None:
    degrees = mesh_degrees(members)
    assert not degrees.full
    assert 6 <= degrees.d <= 12  # the range, independent of N
    assert SPEC_D_LOW <= degrees.d_low <= degrees.d <= degrees.d_high <= SPEC_D_HIGH
    assert degrees.d >= SPEC_D and degrees.d_lazy == SPEC_D_LAZY
    assert degrees == mesh_degrees(FULL_MESH_UP_TO + 1)  # flat in N


def test_bad_degrees_and_sizes_raise() -> None:
    with pytest.raises(ValueError, match="d_low <= d <= d_high"):
        MeshDegrees(d=4, d_low=6, d_high=12, d_lazy=6)
    with pytest.raises(ValueError, match="d_lazy"):
        MeshDegrees(d=8, d_low=6, d_high=12, d_lazy=-1)
    with pytest.raises(ValueError, match="at least one member"):
        mesh_degrees(0)


def test_host_hands_the_degrees_to_the_router() -> None:
    small = PeerHost(b"\x01" * 32, authorize=lambda _p: True, members=8)
    large = PeerHost(b"\x02" * 32, authorize=lambda _p: True, members=256)
    assert (small._router.degree, small._router.degree_low, small._router.degree_high) == (
        (FULL_MESH_DEGREE,) * 3
    )
    router = large._router
    assert (router.degree, router.degree_low, router.degree_high) == (8, 6, 12)
    # IHAVE gossip goes to d_lazy peers, not to py-libp2p's max(6, subscribers // 4)
    assert router._get_adaptive_gossip_peers_count("t", 255) == SPEC_D_LAZY
    assert router._get_adaptive_gossip_peers_count("t", 3) == 3
    assert router.graft_flood_threshold == 0.0  # py-libp2p's GRAFT-flood detection is off
