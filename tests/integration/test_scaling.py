"""Feature scaling at set-up (issue 17.1, issue 15 §2): public bounds, checked site summaries, medians.

The last two tests are the issue's reproductions in a real consortium (chain, libp2p, DP-SGD):
one member shares huge sums, or NaN sums, at set-up.
"""

from __future__ import annotations

import re
import statistics

import numpy as np
import pytest

from node.consensus import protocol
from node.data.samples import FeatureStats, Standardizer
from node.data.scaling import (
    BREAST_CANCER_BOUNDS,
    FeatureBounds,
    check_stats,
    from_bounds,
    load_bounds,
    robust_combine,
)
from node.peer import setupsum
from node.peer.pipeline import HospitalPeer


def stats_of(rows) -> FeatureStats:
    x = np.asarray(rows, dtype=np.float64)
    return FeatureStats(len(x), x.sum(axis=0), (x * x).sum(axis=0))


def test_breast_cancer_bounds_are_the_published_table():
    from sklearn.datasets import load_breast_cancer

    descr = load_breast_cancer().DESCR
    table = descr[descr.index("Summary Statistics") : descr.index(":Missing Attribute Values")]
    pairs = [
        (float(lo), float(hi))
        for lo, hi in re.findall(r":\s+(-?[\d.]+)\s+(-?[\d.]+)\s*$", table, re.M)
    ]
    assert len(pairs) == 30
    assert np.array_equal(BREAST_CANCER_BOUNDS.low, [p[0] for p in pairs])
    assert np.array_equal(BREAST_CANCER_BOUNDS.high, [p[1] for p in pairs])


def test_scaling_from_bounds_is_hozo_mid_range_and_range_over_six():
    z = from_bounds(FeatureBounds(np.array([6.981, 0.0]), np.array([28.11, 0.427])))
    # Hozo, Djulbegovic & Hozo (2005): mean ~ (a + b) / 2, SD ~ (b - a) / 6 for n > 70
    assert z.mean.tolist() == pytest.approx([(6.981 + 28.11) / 2, 0.427 / 2])
    assert z.std.tolist() == pytest.approx([(28.11 - 6.981) / 6, 0.427 / 6])
    with pytest.raises(ValueError, match="feature 1"):
        FeatureBounds(np.array([0.0, 1.0]), np.array([1.0, 1.0]))


def test_bounds_file(tmp_path):
    path = tmp_path / "bounds.csv"
    path.write_text("low,high\n# age\n0,120\n-5.5, 2.5\n")
    b = load_bounds(path)
    assert b.low.tolist() == [0.0, -5.5] and b.high.tolist() == [120.0, 2.5]
    path.write_text("0,120\n3,1\n")
    with pytest.raises(ValueError, match="bounds.csv:2"):
        load_bounds(path)


@pytest.mark.parametrize(
    "bad, problem",
    [
        (FeatureStats(10, np.array([np.nan, 1.0]), np.array([1.0, 1.0])), "non-finite"),
        (FeatureStats(10, np.array([np.inf, 1.0]), np.array([1.0, 1.0])), "non-finite"),
        (FeatureStats(10, np.array([1e200, 1.0]), np.array([1e300, 1.0])), "out of range"),
        (FeatureStats(10, np.array([10.0, 1.0]), np.array([1.0, 1.0])), "negative variance"),
        (FeatureStats(10, np.array([1.0, 1.0]), np.array([-1.0, 1.0])), "out of range"),
        (FeatureStats(0, np.array([1.0, 1.0]), np.array([1.0, 1.0])), "row count"),
        (FeatureStats(10**9, np.array([1.0, 1.0]), np.array([1.0, 1.0])), "row count"),
        (FeatureStats(10, np.array([1.0]), np.array([1.0])), "1 features"),
    ],
)
def test_check_stats_refuses_bad_summaries(bad, problem):
    with pytest.raises(ValueError, match=problem):
        check_stats(bad, 2)


def test_robust_combine_is_the_median_of_site_means_and_stds():
    rng = np.random.default_rng(3)
    sites = [rng.normal(13.35, 3.84, size=(n, 2)) for n in (90, 120, 150)]
    rows = np.full((100, 2), 1000.0) + rng.normal(0, 0.62, size=(100, 2))  # the poisoner
    z = robust_combine([stats_of(s) for s in sites] + [stats_of(rows)])
    for j in range(2):  # an independent reference: the statistics module, site by site
        means = [statistics.fmean(s[:, j]) for s in sites + [rows]]
        stds = [statistics.pstdev(s[:, j]) for s in sites + [rows]]
        assert z.mean[j] == pytest.approx(statistics.median(means), rel=1e-9)
        assert z.std[j] == pytest.approx(statistics.median(stds), rel=1e-6)
        assert 12 < z.mean[j] < 15 and 3 < z.std[j] < 4.6  # the clean values are 13.35 and 3.84


# -- the reproductions, in a real consortium -------------------------------------------------

SEEN: dict[str, Standardizer] = {}


class Recording(HospitalPeer):
    async def agree_standardizer(self, timeout: float = 30.0):
        z = await super().agree_standardizer(timeout)
        SEEN[self.address] = z
        return z


def poisoner(sums: float | str):
    class Poisoner(HospitalPeer):
        async def agree_standardizer(self, timeout: float = 30.0):
            n, d = len(self.raw_data), self.raw_data.x[0].size
            value = float(sums)
            bad = {"count": n, "sum": [value * n] * d, "sum_sq": [value * value * n] * d}
            others = {i.peer_id for i in self.others()}
            await self.host.wait_topic_peers(protocol.SETUP_TOPIC, others, timeout)
            await self.host.publish(
                protocol.SETUP_TOPIC, protocol.encode(protocol.StatsShared(self.address, bad))
            )
            self.standardizer = Standardizer.fit(self.raw_data)
            self.data = self.standardizer.apply(self.raw_data)
            return self.standardizer

    return Poisoner


@pytest.mark.slow
@pytest.mark.parametrize("sums", ["1000", "nan"])
def test_one_member_can_neither_poison_the_scaling_nor_stop_the_consortium(tmp_path, sums, caplog):
    from node.sim.demo import DemoConfig, run_demo

    SEEN.clear()
    classes = {0: poisoner(sums), 1: Recording, 2: Recording, 3: Recording}
    with caplog.at_level("WARNING", logger="medmesh.peer"):
        report = run_demo(
            DemoConfig(rounds=1, scaling="federated", progress=False, state_dir=tmp_path),
            peer_class=classes,
        )
    assert report["rounds"][0]["finalized"]
    assert (
        len(SEEN) == 3 and len({z.mean.tobytes() for z in SEEN.values()}) == 1
    )  # one scaling for all
    z = next(iter(SEEN.values()))
    # the median's guarantee: every feature's mean and std lie within the honest sites' range
    from node.data.samples import breast_cancer_split

    honest = list(breast_cancer_split(4, seed=0).hospitals.values())[1:]
    means = np.stack([h.x.mean(axis=0) for h in honest])
    stds = np.stack([h.x.std(axis=0) for h in honest])
    assert (means.min(axis=0) - 1e-9 <= z.mean).all() and (z.mean <= means.max(axis=0) + 1e-9).all()
    assert (stds.min(axis=0) - 1e-9 <= z.std).all() and (z.std <= stds.max(axis=0) + 1e-9).all()
    assert (
        12 < z.mean[0] < 16 and 3 < z.std[0] < 4.6
    )  # feature 0 clean: 13.35 and 3.84; poisoned: 1000 and 0.62
    poisoner_address = report["hospitals"][next(iter(report["hospitals"]))]["address"]
    if sums == "nan":
        refusals = [
            r.getMessage()
            for r in caplog.records
            if "refused the feature summary" in r.getMessage()
        ]
        assert refusals and all(poisoner_address in m and "non-finite" in m for m in refusals)


# -- the secure-sum centre (node.peer.setupsum) -------------------------------------------------------------


def _members(n: int):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    keys = {f"0x{i:040x}": X25519PrivateKey.generate() for i in range(1, n + 1)}
    return keys, {a: k.public_key().public_bytes_raw() for a, k in keys.items()}


def test_secure_sum_reveals_the_total_only():
    from node.peer import setupsum

    keys, public = _members(4)
    rng = np.random.default_rng(0)
    vectors = {
        a: np.concatenate([[float(n)], rng.uniform(0, 50, 3) * n, rng.uniform(0, 2500, 3) * n])
        for a, n in zip(keys, (90, 110, 120, 135), strict=False)
    }
    masked = {a: setupsum.mask(v, a, keys[a], public, b"ctx") for a, v in vectors.items()}
    total = setupsum.unmask(list(masked.values()))
    reference = [sum(float(v[j]) for v in vectors.values()) for j in range(7)]  # plain Python sums
    assert total.tolist() == pytest.approx(reference, abs=1e-4)
    # one masked vector alone decodes to nothing like its site's numbers; three of four do not sum to them either
    from node.crypto.secagg.masking import decode_fixed

    for a, y in masked.items():
        assert np.abs(decode_fixed(y, setupsum.PARAMS) - vectors[a]).min() > 1e3
    partial = setupsum.unmask([masked[a] for a in list(keys)[:3]])
    assert np.abs(partial - sum(vectors[a] for a in list(keys)[:3])).min() > 1e3
    # another context (deployment) gives other masks
    other = setupsum.mask(
        vectors[next(iter(keys))], next(iter(keys)), next(iter(keys.values())), public, b"ctx2"
    )
    assert not np.array_equal(other, masked[next(iter(keys))])


def test_secure_total_is_checked_against_the_public_bounds():
    from node.peer import setupsum

    bounds = FeatureBounds(np.array([0.0, 10.0]), np.array([1.0, 20.0]))
    # 100 rows, feature 0 mean 0.5 std 0.2, feature 1 mean 15 std 2 (sums of squares: n (std^2 + mean^2))
    good = np.array([100.0, 50.0, 1500.0, 100 * (0.04 + 0.25), 100 * (4.0 + 225.0)])
    z = setupsum.check_total(good, 4, bounds)
    assert z.mean.tolist() == pytest.approx([0.5, 15.0]) and z.std.tolist() == pytest.approx(
        [0.2, 2.0]
    )
    with pytest.raises(ValueError, match="feature 1's consortium mean 1e\\+05 is outside"):
        setupsum.check_total(good + [0, 0, 1e7 - 1500, 0, 0], 4, bounds)
    with pytest.raises(ValueError, match="row count"):
        setupsum.check_total(np.array([2.0, 1.0, 30.0, 1.0, 500.0]), 4, bounds)
    with pytest.raises(
        ValueError, match="feature 0's consortium std 0 is outside"
    ):  # variance crushed
        setupsum.check_total(good - [0, 0, 0, 100 * 0.04, 0], 4, bounds)
    with pytest.raises(
        ValueError, match="feature 1's consortium std .* is outside"
    ):  # wider than the bounds allow
        setupsum.check_total(good + [0, 0, 0, 0, 100 * 30.0], 4, bounds)
    with pytest.raises(ValueError, match="ring elements"):
        setupsum.decode_masked([1, 2], 3)
    with pytest.raises(ValueError, match="integers"):
        setupsum.decode_masked([1, 2, -1], 3)


def secure_poisoner(kind: str):
    class SecurePoisoner(HospitalPeer):
        async def agree_standardizer(self, timeout: float = 30.0):
            bounds = self.settings.feature_bounds
            if kind != "silent":  # "silent" shares nothing at all
                keys = {m.address: m.seal_key for m in self.active_members()}
                d = self.ledger.deployment
                context = f"{d.chain_id}|{d.addresses['RoundLedger'].lower()}".encode()
                vector = setupsum.site_vector(self.raw_data, bounds)
                vector[1:] *= (
                    1000.0  # the poisoner: huge sums (and squares), hidden under the masks
                )
                mine = setupsum.mask(
                    vector, self.address, self.identity.seal_private, keys, context
                )
                others = {i.peer_id for i in self.others()}
                await self.host.wait_topic_peers(protocol.SETUP_TOPIC, others, timeout)
                await self.host.publish(
                    protocol.SETUP_TOPIC,
                    protocol.encode(
                        protocol.StatsShared(self.address, {"masked": [int(v) for v in mine]})
                    ),
                )
            self.standardizer = from_bounds(bounds)
            self.data = self.standardizer.apply(self.raw_data)
            return self.standardizer

    return SecurePoisoner


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["huge", "silent"])
def test_secure_centre_falls_back_to_the_public_mid_range_when_one_member_lies_or_is_silent(
    tmp_path, kind, caplog
):
    from node.sim.demo import DemoConfig, run_demo

    SEEN.clear()
    classes = {0: secure_poisoner(kind), 1: Recording, 2: Recording, 3: Recording}
    with caplog.at_level("WARNING", logger="medmesh.peer"):
        report = run_demo(
            DemoConfig(rounds=1, scaling="secure", progress=False, state_dir=tmp_path),
            peer_class=classes,
        )
    assert report["rounds"][0]["finalized"]
    assert len(SEEN) == 3 and len({z.mean.tobytes() for z in SEEN.values()}) == 1
    z = next(iter(SEEN.values()))
    mid = (BREAST_CANCER_BOUNDS.low + BREAST_CANCER_BOUNDS.high) / 2
    assert np.array_equal(
        z.mean, mid
    )  # the fallback: bounded by the public ranges, whatever was sent
    assert np.allclose(z.std, (BREAST_CANCER_BOUNDS.high - BREAST_CANCER_BOUNDS.low) / 6)
    expected = "implausible" if kind == "huge" else "no usable masked sum"
    assert any(expected in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_secure_sum_gives_every_member_the_pooled_z_score(tmp_path):
    """With honest members, `secure` is the pooled standardizer with each site weighted by its
    published count Ñ (issue 15 §2: the masked count is Ñ, not N), while no site's sums left it
    unmasked."""
    from node.data.samples import breast_cancer_split
    from node.sim.demo import DemoConfig, run_demo

    SEEN.clear()
    report = run_demo(
        DemoConfig(rounds=1, scaling="secure", progress=False, state_dir=tmp_path),
        peer_class=Recording,
    )
    assert report["rounds"][0]["finalized"]
    assert len(SEEN) == 4 and len({(z.mean.tobytes(), z.std.tobytes()) for z in SEEN.values()}) == 1
    z = next(iter(SEEN.values()))
    sites = {n: h.x.astype(np.float64) for n, h in breast_cancer_split(4, seed=0).hospitals.items()}
    weights = np.array(
        [report["hospitals"][n]["published_samples"] for n in sites], dtype=np.float64
    )
    assert (
        weights != [len(x) for x in sites.values()]
    ).any()  # Ñ, not N (all four equal: p < 1e-5)
    # the reference: numpy's per-site moments, pooled with the published counts as weights
    mean = np.average([x.mean(axis=0) for x in sites.values()], axis=0, weights=weights)
    second = np.average([(x * x).mean(axis=0) for x in sites.values()], axis=0, weights=weights)
    std = np.sqrt(second - mean * mean)
    # the rows are clipped to the published bounds, which are rounded to 3 decimals: a tiny shift
    assert np.abs(z.mean - mean).max() / std.min() < 1e-2
    assert np.abs(z.mean - mean).max() < 1e-3 * np.abs(mean).max()
    np.testing.assert_allclose(z.std, std, rtol=1e-2)
