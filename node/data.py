"""Hospital data: the Wisconsin breast-cancer cohort, split non-IID across hospitals.

The data set (569 patients x 30 features, label 1 = malignant) ships inside scikit-learn, so no
download is needed. Labels follow scikit-learn's encoding flipped so that 1 means malignant
(the positive, clinically interesting class).

Feature standardization never pools raw rows: each hospital publishes only its row count and
per-feature sums and sums of squares (:class:`FeatureStats`), and the standardizer is built from
their total — the same numbers a pooled computation would give, without any row leaving a site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "TabularData",
    "FeatureStats",
    "Standardizer",
    "HospitalSplit",
    "breast_cancer_split",
    "DEFAULT_CLASS_SHARES",
]

# Share of each class's training rows given to hospitals A, B, C, D: different sizes
# (155 / 130 / 91 / 80 rows with the default seed) and different malignant fractions
# (17% / 45% / 37% / 64%), i.e. quantity skew and label skew together.
DEFAULT_CLASS_SHARES: dict[int, tuple[float, ...]] = {
    0: (0.45, 0.25, 0.20, 0.10),  # benign
    1: (0.15, 0.35, 0.20, 0.30),  # malignant
}


@dataclass(frozen=True)
class TabularData:
    """Features ``x`` (float32, rows x features) and binary labels ``y`` (float32, 0/1)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"bad tabular shapes: x{self.x.shape}, y{self.y.shape}")
        if not np.isfinite(self.x).all():
            raise ValueError("features contain NaN or infinite values")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_features(self) -> int:
        return self.x.shape[1]

    def positives(self) -> int:
        return int(self.y.sum())


@dataclass(frozen=True)
class FeatureStats:
    """Sufficient statistics for standardization: row count, per-feature sum and sum of squares."""

    count: int
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def of(cls, data: TabularData) -> FeatureStats:
        x = data.x.astype(np.float64)
        return cls(len(data), x.sum(axis=0), (x * x).sum(axis=0))

    def __add__(self, other: FeatureStats) -> FeatureStats:
        return FeatureStats(
            self.count + other.count, self.total + other.total, self.total_sq + other.total_sq
        )

    def to_json(self) -> dict:
        return {"count": self.count, "sum": self.total.tolist(), "sum_sq": self.total_sq.tolist()}

    @classmethod
    def from_json(cls, obj: dict) -> FeatureStats:
        total = np.asarray(obj["sum"], dtype=np.float64)
        total_sq = np.asarray(obj["sum_sq"], dtype=np.float64)
        count = int(obj["count"])
        if count <= 0 or total.shape != total_sq.shape or total.ndim != 1:
            raise ValueError("malformed feature statistics")
        return cls(count, total, total_sq)


@dataclass(frozen=True)
class Standardizer:
    """z-scoring with a mean and standard deviation fixed from federated statistics."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_stats(cls, stats: FeatureStats) -> Standardizer:
        mean = stats.total / stats.count
        var = np.maximum(stats.total_sq / stats.count - mean * mean, 0.0)
        std = np.sqrt(var)
        std[std < 1e-12] = 1.0  # a constant feature stays constant instead of dividing by 0
        return cls(mean, std)

    def apply(self, data: TabularData) -> TabularData:
        x = ((data.x.astype(np.float64) - self.mean) / self.std).astype(np.float32)
        return TabularData(x, data.y)


@dataclass(frozen=True)
class HospitalSplit:
    """Raw (unscaled) training data per hospital plus a held-out evaluation set."""

    hospitals: dict[str, TabularData]
    test: TabularData


def breast_cancer_split(
    n_hospitals: int = 4,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    class_shares: dict[int, tuple[float, ...]] | None = None,
) -> HospitalSplit:
    """Split the Wisconsin Diagnostic Breast Cancer data across hospitals, non-IID.

    A stratified ``test_fraction`` is held out. The rest is divided class by class: hospital
    ``h`` receives ``class_shares[c][h]`` of class ``c``'s rows, so hospitals differ both in
    size and in label mix. Without ``class_shares``, 4 hospitals use
    :data:`DEFAULT_CLASS_SHARES`; other counts use a seeded Dirichlet(1.0) draw per class.
    """
    from sklearn.datasets import load_breast_cancer

    if n_hospitals < 1:
        raise ValueError("need at least one hospital")
    raw_x, raw_y = load_breast_cancer(return_X_y=True)
    y = (raw_y == 0).astype(np.float32)  # scikit-learn encodes malignant as 0
    x = raw_x.astype(np.float32)
    rng = np.random.default_rng(seed)

    test_idx: list[int] = []
    train_idx: dict[int, np.ndarray] = {}
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * len(idx)))
        test_idx.extend(idx[:n_test].tolist())
        train_idx[c] = idx[n_test:]

    if class_shares is None:
        if n_hospitals == len(DEFAULT_CLASS_SHARES[0]):
            class_shares = DEFAULT_CLASS_SHARES
        else:
            class_shares = {c: tuple(rng.dirichlet(np.ones(n_hospitals))) for c in (0, 1)}
    parts: list[list[int]] = [[] for _ in range(n_hospitals)]
    for c in (0, 1):
        shares = np.asarray(class_shares[c], dtype=np.float64)
        if len(shares) != n_hospitals or (shares < 0).any() or not np.isclose(shares.sum(), 1.0):
            raise ValueError(f"class_shares[{c}] must be {n_hospitals} non-negative shares summing to 1")
        cuts = np.round(np.cumsum(shares)[:-1] * len(train_idx[c])).astype(int)
        for h, chunk in enumerate(np.split(train_idx[c], cuts)):
            parts[h].extend(chunk.tolist())

    names = [hospital_name(h) for h in range(n_hospitals)]
    hospitals = {}
    for name, idx in zip(names, parts):
        if not idx:
            raise ValueError(f"hospital {name} received no rows; change the shares or the seed")
        idx_arr = np.sort(np.asarray(idx))
        hospitals[name] = TabularData(x[idx_arr], y[idx_arr])
    test = np.sort(np.asarray(test_idx))
    return HospitalSplit(hospitals, TabularData(x[test], y[test]))


def hospital_name(index: int) -> str:
    """'hospital-a', 'hospital-b', ... (then 'hospital-27' and so on past z)."""
    return f"hospital-{chr(ord('a') + index)}" if index < 26 else f"hospital-{index + 1}"
