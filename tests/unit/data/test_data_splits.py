"""Patient-level splits, partitioners, standardization without pooling, the synthetic task."""

from __future__ import annotations

import numpy as np
import pytest

from node.data.datasets import (
    legacy_scanner,
    partition,
    partition_dirichlet,
    partition_iid,
    partition_quantity_skew,
    synthetic_imaging_split,
    synthetic_lesions,
)
from node.data.samples import (
    DataError,
    FeatureStats,
    ImageData,
    Standardizer,
    TabularData,
    breast_cancer_split,
    split_by_patient,
)


def cohort(n_patients: int = 120, per_patient: int = 3, seed: int = 0) -> TabularData:
    rng = np.random.default_rng(seed)
    pid = np.repeat([f"p{i}" for i in range(n_patients)], per_patient)
    y = np.repeat(rng.random(n_patients) < 0.4, per_patient).astype(np.float32)
    x = rng.normal(size=(len(y), 5)).astype(np.float32) * [1, 10, 100, 0.1, 1] + y[:, None]
    return TabularData(x, y, patients=pid, groups=np.where(np.arange(len(y)) % 2, "F", "M"))


def test_split_by_patient_never_splits_a_patient():
    data = cohort()
    train, test = split_by_patient(data, 0.25, seed=3)
    assert not set(train.patients) & set(test.patients)
    assert len(train) + len(test) == len(data)
    assert 0.2 < len(set(test.patients)) / 120 < 0.3
    assert abs(test.y.mean() - data.y.mean()) < 0.1  # stratified by patient label
    rows_train, rows_test = split_by_patient(TabularData(data.x, data.y), 0.25)  # no IDs: by row
    assert len(rows_test) == pytest.approx(0.25 * len(data), abs=2)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "quantity"])
def test_partitions_assign_whole_patients(scheme):
    data = cohort()
    parts = partition(data, 4, scheme, alpha=0.5, seed=1)
    assert list(parts) == ["hospital-a", "hospital-b", "hospital-c", "hospital-d"]
    assert sum(len(p) for p in parts.values()) == len(data)
    seen: set[str] = set()
    for p in parts.values():
        ids = set(p.patients)
        assert not ids & seen
        seen |= ids
    assert (
        partition(data, 4, scheme, alpha=0.5, seed=1)["hospital-b"].patients.tolist()
        == parts["hospital-b"].patients.tolist()
    )  # seeded


def test_dirichlet_skews_labels_and_quantity_skews_sizes():
    data = TabularData(np.zeros((2000, 1)), (np.arange(2000) % 2).astype(np.float32))
    iid = [p.y.mean() for p in partition_iid(data, 5, seed=0).values()]
    skewed = [p.y.mean() for p in partition_dirichlet(data, 5, alpha=0.1, seed=0).values()]
    assert max(iid) - min(iid) < 0.05 and max(skewed) - min(skewed) > 0.5
    sizes = [len(p) for p in partition_quantity_skew(data, 5, alpha=0.3, seed=0).values()]
    assert max(sizes) > 3 * min(sizes) and sum(sizes) == 2000
    with pytest.raises(DataError, match="cannot fill"):
        partition_iid(TabularData(np.zeros((3, 1)), np.array([0, 1, 0.0])), 5)
    with pytest.raises(ValueError, match="unknown partition scheme"):
        partition(data, 2, "bogus")


def test_legacy_scanner_is_noisier_and_keeps_labels():
    data = cohort()
    old = legacy_scanner(data, noise=0.5, seed=0)
    assert old.y.tolist() == data.y.tolist() and old.patients.tolist() == data.patients.tolist()
    rel = (old.x - data.x).std(axis=0) / data.x.std(axis=0)
    assert np.allclose(rel, 0.5, atol=0.08)  # noise scaled per feature
    assert "legacy scanner" in old.source


def test_standardization_per_hospital_and_federated_without_pooling():
    split = breast_cancer_split()
    sites = list(split.hospitals.values())
    local = Standardizer.fit(sites[0]).apply(sites[0])
    assert np.allclose(local.x.mean(axis=0), 0, atol=1e-4) and np.allclose(
        local.x.std(axis=0), 1, atol=1e-3
    )
    total = sum((FeatureStats.of(s) for s in sites[1:]), FeatureStats.of(sites[0]))
    pooled = np.concatenate([s.x for s in sites]).astype(np.float64)
    fed = Standardizer.from_stats(total)
    assert np.allclose(fed.mean, pooled.mean(axis=0)) and np.allclose(fed.std, pooled.std(axis=0))
    assert FeatureStats.from_json(total.to_json()).count == len(pooled)
    grouped = Standardizer.fit(cohort()).apply(cohort())
    assert grouped.groups is not None and grouped.patients is not None  # IDs survive scaling


def test_synthetic_imaging_task_is_labelled_synthetic_and_site_specific():
    split = synthetic_imaging_split(sizes=[40, 30, 20, 20], n_test=40, size=32, seed=0)
    for d in split.hospitals.values():
        assert isinstance(d, ImageData) and d.x.shape[1:] == (1, 32, 32)
        assert "synthetic" in d.source and 0 < d.positives() < len(d)
        assert 0 <= d.x.min() and d.x.max() <= 1
    a, legacy = split.hospitals["hospital-a"], split.hospitals["hospital-d"]
    roughness = [np.abs(np.diff(d.x, axis=-1)).mean() for d in (a, legacy)]
    assert roughness[1] > 2 * roughness[0]  # the legacy scanner is noisier
    again = synthetic_lesions(10, size=32, seed=5)
    assert np.array_equal(again.x, synthetic_lesions(10, size=32, seed=5).x)
    lesion = synthetic_lesions(200, size=32, seed=1, positive_fraction=0.5)
    peak = lesion.x.reshape(200, -1).max(axis=1)
    assert peak[lesion.y == 1].mean() > peak[lesion.y == 0].mean()  # the lesion is there to find


def test_labelled_data_validation():
    with pytest.raises(DataError, match="NaN"):
        TabularData(np.array([[np.nan, 1.0]]), np.array([1.0]), source="site.csv")
    with pytest.raises(DataError, match="labels must be 0 or 1"):
        TabularData(np.zeros((2, 1)), np.array([0.0, 2.0]))
    with pytest.raises(DataError, match="4-D"):
        ImageData(np.zeros((2, 5)), np.array([0.0, 1.0]))
    with pytest.raises(DataError, match="patients has shape"):
        TabularData(np.zeros((2, 1)), np.array([0.0, 1.0]), patients=np.array(["a"]))
