"""The benchmark's protection hooks deliver the weighted mean (McMahan et al. 2017) through each
mode's real arithmetic: checked against the formula computed here in NumPy."""

import numpy as np
import pytest

from node.consensus.compression import CompressionConfig
from node.sim.simprotect import make_protect

RNG = np.random.default_rng(7)
DELTAS = RNG.normal(0, 0.3, size=(4, 500)).astype(np.float32)
WEIGHTS = [120.0, 90.0, 60.0, 45.0]
MEAN = (np.array(WEIGHTS)[:, None] * DELTAS.astype(np.float64)).sum(0) / sum(WEIGHTS)
# the sealed mode sees every claim and caps it at the lower median claim (issue 16): 60
BOUNDED = [60.0, 60.0, 60.0, 45.0]
MEAN_BOUNDED = (np.array(BOUNDED)[:, None] * DELTAS.astype(np.float64)).sum(0) / sum(BOUNDED)


@pytest.mark.parametrize(
    "mode,tol,mean",
    [("sealed", 1e-7, MEAN_BOUNDED), ("secagg", 2**-16, MEAN), ("ckks", 1e-6, MEAN)],
)
def test_dense_modes_give_the_weighted_mean(mode, tol, mean):
    out = make_protect(mode)(DELTAS, WEIGHTS, "fedavg")
    assert np.abs(out - mean).max() < tol


def test_sealed_top10_keeps_each_sites_largest_coordinates():
    out = make_protect("sealed", CompressionConfig(topk=0.1))(DELTAS, WEIGHTS, "fedavg")
    sparse = np.zeros_like(DELTAS)
    for i, d in enumerate(DELTAS):
        keep = np.argsort(-np.abs(d))[:50]
        sparse[i, keep] = d[keep]
    ref = (np.array(BOUNDED)[:, None] * sparse).sum(0) / sum(BOUNDED)
    assert np.abs(out - ref).max() < 1e-6


def test_secagg_shared_10pct_sends_the_same_coordinates_and_keeps_the_rest():
    hook = make_protect("secagg", CompressionConfig(topk=0.1))
    first = hook(DELTAS, WEIGHTS, "fedavg")
    kept = np.flatnonzero(first)
    assert kept.size == 50
    assert np.abs(first[kept] - MEAN[kept]).max() < 2**-16
    # error feedback: over rounds of zero deltas, the held-back coordinates come out too
    total = first.astype(np.float64)
    for _ in range(60):
        total += hook(np.zeros_like(DELTAS), WEIGHTS, "fedavg")
    assert np.abs(total - MEAN).max() < 1e-3


def test_ckks_key_holder_rotates_and_every_round_gives_the_weighted_mean():
    # the key holder (site r mod 4) adds its own update in the clear: each holder in turn
    hook = make_protect("ckks")
    for _ in range(len(WEIGHTS)):
        assert np.abs(hook(DELTAS, WEIGHTS, "fedavg") - MEAN).max() < 1e-6
    with pytest.raises(ValueError, match="two sites"):
        make_protect("ckks")(DELTAS[:1], WEIGHTS[:1], "fedavg")


def test_sum_only_modes_refuse_robust_rules():
    with pytest.raises(ValueError, match="fedavg"):
        make_protect("ckks")(DELTAS, WEIGHTS, "median")


def test_public_names():
    import node.sim.simprotect

    assert sorted(node.sim.simprotect.__all__) == ["MODES", "make_protect"]
