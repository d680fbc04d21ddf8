"""The simulated hospitals of a scenario: their data (drawn from the breast-cancer cohort,
with label noise and legacy-scanner noise as asked), their behaviour, and the validation set
the simulator keeps from all of them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from node.data.datasets.partition import legacy_scanner
from node.data.samples import (
    FeatureStats,
    Standardizer,
    TabularData,
    breast_cancer_split,
    hospital_name,
)

from .scenario import HospitalGroup, Scenario, check_rows

__all__ = ["SimHospital", "Cohort", "build_cohort"]


@dataclass(frozen=True)
class SimHospital:
    name: str
    group: HospitalGroup
    data: TabularData  # standardized training rows (a free-rider's are never trained on)

    @property
    def role(self) -> str:
        return self.group.role

    @property
    def samples(self) -> int:
        return len(self.data)

    @property
    def claimed(self) -> int:
        """The count this site commits on chain: its true count unless it lies."""
        return self.group.claimed_samples or self.samples


@dataclass(frozen=True)
class Cohort:
    hospitals: tuple[SimHospital, ...]
    validation: TabularData


def _flip(data: TabularData, fraction: float, rng: np.random.Generator) -> TabularData:
    if fraction == 0:
        return data
    idx = rng.choice(len(data), size=int(round(fraction * len(data))), replace=False)
    y = data.y.copy()
    y[idx] = 1.0 - y[idx]
    return replace(data, y=y)


def build_cohort(scenario: Scenario) -> Cohort:
    """Draw each hospital's rows without replacement from the training part of the data, in
    group order; z-score with the federated total of the hospitals' statistics (no pooling)."""
    split = breast_cancer_split(1, seed=scenario.seed, test_fraction=scenario.validation_fraction)
    (pool,) = split.hospitals.values()
    check_rows(scenario)
    rng = np.random.default_rng(scenario.seed)
    order = rng.permutation(len(pool))
    raw: list[tuple[str, HospitalGroup, TabularData]] = []
    start = 0
    for group in scenario.hospitals:
        for _ in range(group.count):
            name = hospital_name(len(raw))
            data = pool.subset(np.sort(order[start : start + group.samples]))
            start += group.samples
            if data.positives() in (0, len(data)):  # a site needs both classes to train on
                raise ValueError(
                    f"{name} drew rows of one class only; change the seed or its samples"
                )
            data = _flip(data, group.label_noise, rng)
            if group.scanner_noise > 0:
                data = legacy_scanner(
                    data, noise=group.scanner_noise, seed=scenario.seed + len(raw)
                )
            raw.append((name, group, replace(data, source=name)))
    stats = FeatureStats.of(raw[0][2])
    for _, _, data in raw[1:]:
        stats = stats + FeatureStats.of(data)
    scaler = Standardizer.from_stats(stats)
    hospitals = tuple(SimHospital(name, group, scaler.apply(data)) for name, group, data in raw)
    return Cohort(hospitals, scaler.apply(split.test))
