"""Feature scaling a consortium agrees on without trusting, or leaking, any one hospital's rows.

Two ways, chosen by what is public (see ``docs/standardizer.md``):

1. **Public bounds** (:func:`from_bounds`), the default wherever per-feature ranges are published
   (a data dictionary; for the Wisconsin breast-cancer data, the table in its documentation,
   :data:`BREAST_CANCER_BOUNDS`). The centre is the mid-range and the scale a sixth of the
   range: the range estimates of the mean and standard deviation of Hozo, Djulbegovic & Hozo
   (BMC Med Res Methodol 5:13, 2005), whose ``range / 6`` is their choice for samples above 70.
   No hospital releases anything, so it costs no ε, and no member can poison it.
2. **Federated summaries** (:func:`robust_combine`), when no bounds are published: each site's
   row count, per-feature sums and sums of squares, each checked (:func:`check_stats`: finite,
   shape, count in range, variance not negative) and combined by the **per-feature median of the
   site means and of the site standard deviations** (a breakdown point of one half: fewer than
   half the sites cannot move either beyond the honest sites' range). These summaries are
   released in the clear, not under DP (issue 15 §2): a member knowing all but one of a site's
   rows learns the last one. The node warns when it uses them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from node.data.samples import FeatureStats, Standardizer

__all__ = [
    "FeatureBounds",
    "BREAST_CANCER_BOUNDS",
    "RANGE_TO_STD",
    "MAX_COUNT",
    "from_bounds",
    "check_stats",
    "robust_combine",
    "load_bounds",
]

#: Hozo et al. (2005): the standard deviation of a sample of more than 70 is about its range / 6.
RANGE_TO_STD = 6.0
#: A site's row count above this is not a hospital's cohort (and would swamp a pooled mean).
MAX_COUNT = 10_000_000


@dataclass(frozen=True)
class FeatureBounds:
    """Public per-feature ranges ``[low, high]`` (``high > low``, finite)."""

    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.low, dtype=np.float64), np.asarray(self.high, dtype=np.float64)
        if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
            raise ValueError(
                f"bounds need one low and one high per feature, got {lo.shape} and {hi.shape}"
            )
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or not (hi > lo).all():
            bad = int(np.argmax(~(np.isfinite(lo) & np.isfinite(hi) & (hi > lo))))
            raise ValueError(
                f"bounds of feature {bad}: need finite low < high, got [{lo[bad]}, {hi[bad]}]"
            )
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)


def _published_breast_cancer() -> FeatureBounds:
    # Min and Max of the 30 features, in order, from the "Summary Statistics" table of the
    # Wisconsin Diagnostic Breast Cancer documentation (UCI; sklearn's load_breast_cancer DESCR).
    table = [
        (6.981, 28.11),
        (9.71, 39.28),
        (43.79, 188.5),
        (143.5, 2501.0),
        (0.053, 0.163),
        (0.019, 0.345),
        (0.0, 0.427),
        (0.0, 0.201),
        (0.106, 0.304),
        (0.05, 0.097),
        (0.112, 2.873),
        (0.36, 4.885),
        (0.757, 21.98),
        (6.802, 542.2),
        (0.002, 0.031),
        (0.002, 0.135),
        (0.0, 0.396),
        (0.0, 0.053),
        (0.008, 0.079),
        (0.001, 0.03),
        (7.93, 36.04),
        (12.02, 49.54),
        (50.41, 251.2),
        (185.2, 4254.0),
        (0.071, 0.223),
        (0.027, 1.058),
        (0.0, 1.252),
        (0.0, 0.291),
        (0.156, 0.664),
        (0.055, 0.208),
    ]
    return FeatureBounds(np.array([lo for lo, _ in table]), np.array([hi for _, hi in table]))


BREAST_CANCER_BOUNDS = _published_breast_cancer()


def from_bounds(bounds: FeatureBounds) -> Standardizer:
    """Centre at the mid-range, scale by range / :data:`RANGE_TO_STD` (Hozo et al. 2005)."""
    return Standardizer((bounds.low + bounds.high) / 2, (bounds.high - bounds.low) / RANGE_TO_STD)


def check_stats(stats: FeatureStats, features: int) -> None:
    """Raise ValueError (one line) unless ``stats`` is a plausible site summary."""
    if stats.total.shape != (features,) or stats.total_sq.shape != (features,):
        raise ValueError(f"{stats.total.size} features, this consortium has {features}")
    if not 1 <= stats.count <= MAX_COUNT:
        raise ValueError(f"row count {stats.count} outside 1..{MAX_COUNT}")
    if not (np.isfinite(stats.total).all() and np.isfinite(stats.total_sq).all()):
        raise ValueError("non-finite sums (NaN or inf)")
    mean = stats.total / stats.count
    second = stats.total_sq / stats.count
    with np.errstate(over="ignore"):
        square = mean * mean
    if not np.isfinite(square).all() or (second < 0).any():
        raise ValueError("sums out of range (a negative sum of squares, or an overflowing mean)")
    var = second - square
    slack = 1e-9 * np.maximum(second, 1.0)
    if (var < -slack).any():
        j = int(np.argmax(slack - var))
        raise ValueError(f"feature {j}: sum of squares below sum^2 / count (a negative variance)")


def robust_combine(sites: list[FeatureStats]) -> Standardizer:
    """Per-feature median of the site means and of the site standard deviations."""
    if not sites:
        raise ValueError("no site summaries to combine")
    means = np.stack([s.total / s.count for s in sites])
    stds = np.stack(
        [np.sqrt(np.maximum(s.total_sq / s.count - (s.total / s.count) ** 2, 0.0)) for s in sites]
    )
    std = np.median(stds, axis=0)
    std[std < 1e-12] = 1.0  # a constant feature stays constant instead of dividing by 0
    return Standardizer(np.median(means, axis=0), std)


def load_bounds(path) -> FeatureBounds:
    """``low,high`` per line, one line per feature in column order (``#`` comments, an optional
    ``low,high`` header)."""
    lows, highs = [], []
    for number, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.replace(" ", "").lower() in ("low,high", "min,max"):
            continue
        try:
            lo, hi = (float(v) for v in line.split(","))
        except ValueError:
            raise ValueError(f"{path}:{number}: expected 'low,high', got {line!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ValueError(f"{path}:{number}: need finite low < high, got {line!r}")
        lows.append(lo)
        highs.append(hi)
    return FeatureBounds(np.array(lows), np.array(highs))
