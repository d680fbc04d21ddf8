"""Hospital data: labelled samples, patient-level splits, standardization without pooling, and
the Wisconsin breast-cancer cohort split non-IID across hospitals.

Samples are :class:`TabularData` (rows x features) or :class:`ImageData` (N x C x H x W, pixels
normalized by the loader), both with binary labels ``y`` (float32, 1 = the positive, clinically
interesting class; v1 trains one logit, i.e. binary classification only), and optional
per-sample ``patients`` (patient IDs: a split never puts one patient on both sides) and
``groups`` (e.g. sex or age band: evaluation reports metrics per group).

Feature standardization never pools raw rows. Either each hospital fits its own
(:meth:`Standardizer.fit`), or each publishes only its row count and per-feature sums and sums
of squares (:class:`FeatureStats`) and every peer builds the same standardizer from their
total — the numbers a pooled computation would give, without any row leaving a site.

The breast-cancer data (569 patients x 30 features) ships inside scikit-learn, so no download
is needed; its labels are flipped so that 1 means malignant. Loaders for hospital files live
in :mod:`node.data.loaders`; simulation partitioners and the synthetic imaging task in
:mod:`node.data.datasets`. Every data problem raises :class:`DataError` with one line naming the
file (or data set) and the problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, Generic, Self, TypeVar

import numpy as np

from node.errors import MedmeshError

__all__ = [
    "DataError",
    "LabelledData",
    "TabularData",
    "ImageData",
    "FeatureStats",
    "Standardizer",
    "HospitalSplit",
    "split_by_patient",
    "breast_cancer_split",
    "hospital_name",
    "DEFAULT_CLASS_SHARES",
]

# Share of each class's training rows given to hospitals A, B, C, D: different sizes
# (155 / 130 / 91 / 80 rows with the default seed) and different malignant fractions
# (17% / 45% / 37% / 64%), i.e. quantity skew and label skew together.
DEFAULT_CLASS_SHARES: dict[int, tuple[float, ...]] = {
    0: (0.45, 0.25, 0.20, 0.10),  # benign
    1: (0.15, 0.35, 0.20, 0.30),  # malignant
}


class DataError(MedmeshError, ValueError):
    """A hospital's data cannot be used; the message is one line: ``<file>: <problem>``."""

    def __init__(self, where: object, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}" if self.where else problem)


@dataclass(frozen=True, eq=False)
class LabelledData:
    """Samples ``x`` (float32, N x ...) with binary labels ``y`` (float32 0/1, N).

    ``patients`` and ``groups`` are optional per-sample string arrays; ``source`` says where
    the samples came from (a file, or "synthetic ...") and prefixes every error message.
    """

    x: np.ndarray
    y: np.ndarray
    patients: np.ndarray | None = None
    groups: np.ndarray | None = None
    source: str = field(default="", compare=False)

    _X_NDIM: ClassVar[int | None] = None  # fixed by subclasses

    def __post_init__(self) -> None:
        where = self.source or type(self).__name__
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        if y.dtype != np.float32:
            y = y.astype(np.float32)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        if self._X_NDIM is not None and x.ndim != self._X_NDIM:
            raise DataError(
                where, f"{type(self).__name__} needs a {self._X_NDIM}-D x, got shape {x.shape}"
            )
        if y.ndim != 1 or len(x) != len(y):
            raise DataError(where, f"bad shapes: x{x.shape}, y{y.shape}")
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x.reshape(len(x), -1))).any(axis=1).sum())
            raise DataError(where, f"features contain NaN or infinite values in {bad} sample(s)")
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError(where, "labels must be 0 or 1 (binary classification in v1)")
        for name in ("patients", "groups"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value).astype(str)
                if value.shape != y.shape:
                    raise DataError(where, f"{name} has shape {value.shape}, labels {y.shape}")
                object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(features,)`` or ``(channels, height, width)``."""
        return tuple(self.x.shape[1:])

    @property
    def n_features(self) -> int:
        return int(math.prod(self.x.shape[1:]))

    def positives(self) -> int:
        return int(self.y.sum())

    def subset(self, index: np.ndarray) -> Self:
        """The samples at ``index`` (an index array or boolean mask), with their IDs and groups."""
        index = np.asarray(index)
        return replace(
            self,
            x=self.x[index],
            y=self.y[index],
            patients=None if self.patients is None else self.patients[index],
            groups=None if self.groups is None else self.groups[index],
        )

    @classmethod
    def concat(cls, parts: list[Self], source: str = "") -> Self:
        """Rows of several data sets stacked (IDs and groups kept only if all parts have them)."""
        if not parts:
            raise DataError(source, "nothing to concatenate")

        def cat(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        return cls(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            cat("patients"),
            cat("groups"),
            source or parts[0].source,
        )


@dataclass(frozen=True, eq=False)
class TabularData(LabelledData):
    """Rows x features (float32)."""

    _X_NDIM: ClassVar[int | None] = 2


@dataclass(frozen=True, eq=False)
class ImageData(LabelledData):
    """Images N x channels x height x width (float32, normalized by the loader)."""

    _X_NDIM: ClassVar[int | None] = 4


#: The kind of samples a split holds (tabular rows or images).
DataT = TypeVar("DataT", bound=LabelledData)


@dataclass(frozen=True)
class FeatureStats:
    """Sufficient statistics for standardization: row count, per-feature sum and sum of squares."""

    count: int
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def of(cls, data: LabelledData) -> FeatureStats:
        """This hospital's statistics (images: one statistic per pixel position)."""
        x = data.x.reshape(len(data), -1).astype(np.float64)
        return cls(len(data), x.sum(axis=0), (x * x).sum(axis=0))

    def at_count(self, count: int) -> FeatureStats:
        """The same means and second moments over a published ``count`` (Ñ) instead of the exact
        row count: the sums scaled by ``count / self.count`` (:mod:`node.learning.privacy`)."""
        scale = count / self.count
        return FeatureStats(count, self.total * scale, self.total_sq * scale)

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
    def fit(cls, data: LabelledData) -> Standardizer:
        """Standardizer from this hospital's own rows only (no federation needed)."""
        if len(data) == 0:
            raise DataError(data.source, "cannot fit a standardizer on no rows")
        return cls.from_stats(FeatureStats.of(data))

    @classmethod
    def from_stats(cls, stats: FeatureStats) -> Standardizer:
        """Standardizer from summed :class:`FeatureStats` (a federated total, or one site's)."""
        mean = stats.total / stats.count
        var = np.maximum(stats.total_sq / stats.count - mean * mean, 0.0)
        std = np.sqrt(var)
        std[std < 1e-12] = 1.0  # a constant feature stays constant instead of dividing by 0
        return cls(mean, std)

    def apply(self, data: DataT) -> DataT:
        """``data`` z-scored; labels, patient IDs and groups are kept."""
        flat = data.x.reshape(len(data), -1).astype(np.float64)
        if flat.shape[1] != self.mean.size:
            raise DataError(
                data.source, f"{flat.shape[1]} features, the standardizer has {self.mean.size}"
            )
        x = ((flat - self.mean) / self.std).astype(np.float32).reshape(data.x.shape)
        return replace(data, x=x)


@dataclass(frozen=True)
class HospitalSplit(Generic[DataT]):
    """Raw (unscaled) training data per hospital plus a held-out evaluation set, all of one
    kind (:class:`TabularData` or :class:`ImageData`)."""

    hospitals: dict[str, DataT]
    test: DataT


def split_by_patient(
    data: LabelledData, test_fraction: float = 0.2, *, seed: int = 0
) -> tuple[LabelledData, LabelledData]:
    """Hold out ``test_fraction`` of ``data``: by patient when patient IDs exist, else by row.

    All samples of one patient land on the same side (no patient is both trained on and tested
    on). Patients are stratified by label (a patient with any positive sample counts as
    positive), so both sides keep roughly the label mix.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    if data.patients is None:
        units = np.arange(len(data)).astype(str)
        unit_of = units
    else:
        units, unit_of = np.unique(data.patients), data.patients
    unit_label = {u: 0 for u in units}
    for u in unit_of[data.y > 0.5]:
        unit_label[u] = 1
    test_units: list[str] = []
    for c in (0, 1):
        members = rng.permutation(np.array([u for u in units if unit_label[u] == c], dtype=str))
        test_units.extend(members[: int(round(test_fraction * len(members)))].tolist())
    in_test = np.isin(unit_of, np.asarray(test_units, dtype=str))
    train, test = data.subset(~in_test), data.subset(in_test)
    if len(train) == 0 or len(test) == 0:
        raise DataError(
            data.source, f"too few patients ({len(units)}) to hold out {test_fraction:.0%}"
        )
    return train, test


def breast_cancer_split(
    n_hospitals: int = 4,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    class_shares: dict[int, tuple[float, ...]] | None = None,
) -> HospitalSplit[TabularData]:
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
            raise ValueError(
                f"class_shares[{c}] must be {n_hospitals} non-negative shares summing to 1"
            )
        cuts = np.round(np.cumsum(shares)[:-1] * len(train_idx[c])).astype(int)
        for h, chunk in enumerate(np.split(train_idx[c], cuts)):
            parts[h].extend(chunk.tolist())

    names = [hospital_name(h) for h in range(n_hospitals)]
    hospitals = {}
    for name, rows in zip(names, parts, strict=False):
        if not rows:
            raise ValueError(f"hospital {name} received no rows; change the shares or the seed")
        idx_arr = np.sort(np.asarray(rows))
        hospitals[name] = TabularData(x[idx_arr], y[idx_arr])
    test = np.sort(np.asarray(test_idx))
    return HospitalSplit(hospitals, TabularData(x[test], y[test]))


def hospital_name(index: int) -> str:
    """'hospital-a', 'hospital-b', ... (then 'hospital-27' and so on past z)."""
    return f"hospital-{chr(ord('a') + index)}" if index < 26 else f"hospital-{index + 1}"
