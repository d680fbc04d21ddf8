"""Simulation partitioners: one data set split across hospitals the ways real consortia differ.

- :func:`partition_iid`: a uniform random split (the optimistic reference);
- :func:`partition_dirichlet`: label skew, each class divided by a Dirichlet(alpha) draw
  (Hsu et al., 2019); small alpha = very different label mixes;
- :func:`partition_quantity_skew`: hospital sizes from a Dirichlet(alpha) draw, labels IID;
- :func:`legacy_scanner`: one site whose inputs are noisier (an older scanner / lab device).

When the data carry patient IDs the unit of assignment is the patient, never the row, so a
patient's samples all land in one hospital. Every partition is seeded and returns
``{"hospital-a": data, ...}``.
"""

from __future__ import annotations

import numpy as np

from node.data.samples import DataError, DataT, LabelledData, hospital_name

__all__ = [
    "partition",
    "partition_iid",
    "partition_dirichlet",
    "partition_quantity_skew",
    "legacy_scanner",
    "SCHEMES",
]

SCHEMES = ("iid", "dirichlet", "quantity")


def _units(data: LabelledData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each sample, the distinct units, each unit's label: 1 if any sample is positive)."""
    unit_of = (
        np.arange(len(data))
        if data.patients is None
        else np.unique(data.patients, return_inverse=True)[1]
    )
    units = np.unique(unit_of)
    label = np.zeros(len(units), dtype=int)
    np.maximum.at(label, unit_of, (data.y > 0.5).astype(int))
    return unit_of, units, label


def _assemble(
    data: LabelledData, unit_of: np.ndarray, parts: list[np.ndarray]
) -> dict[str, LabelledData]:
    out = {}
    for h, units in enumerate(parts):
        if len(units) == 0:
            raise DataError(
                data.source,
                f"{hospital_name(h)} received no samples; change alpha, the seed or the count",
            )
        out[hospital_name(h)] = data.subset(np.flatnonzero(np.isin(unit_of, units)))
    return out


def _check(n_hospitals: int, n_units: int, where: str) -> None:
    if n_hospitals < 1:
        raise ValueError("need at least one hospital")
    if n_units < n_hospitals:
        raise DataError(where, f"{n_units} patients/rows cannot fill {n_hospitals} hospitals")


def partition_iid(
    data: LabelledData, n_hospitals: int, *, seed: int = 0
) -> dict[str, LabelledData]:
    """Patients (or rows) shuffled and dealt into near-equal hospitals."""
    unit_of, units, _ = _units(data)
    _check(n_hospitals, len(units), data.source)
    rng = np.random.default_rng(seed)
    return _assemble(data, unit_of, np.array_split(rng.permutation(units), n_hospitals))


def partition_dirichlet(
    data: LabelledData,
    n_hospitals: int,
    *,
    alpha: float = 0.5,
    seed: int = 0,
    min_units: int = 2,
    max_tries: int = 100,
) -> dict[str, LabelledData]:
    """Label skew: each class's patients divided by shares drawn from Dirichlet(alpha).

    Redrawn (deterministically from ``seed``) until every hospital has ``min_units`` patients.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    unit_of, units, label = _units(data)
    _check(n_hospitals, len(units), data.source)
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        parts: list[list[int]] = [[] for _ in range(n_hospitals)]
        for c in (0, 1):
            members = rng.permutation(units[label == c])
            shares = rng.dirichlet(np.full(n_hospitals, alpha))
            cuts = np.round(np.cumsum(shares)[:-1] * len(members)).astype(int)
            for h, chunk in enumerate(np.split(members, cuts)):
                parts[h].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_units:
            return _assemble(data, unit_of, [np.asarray(p, dtype=units.dtype) for p in parts])
    raise DataError(
        data.source,
        f"no Dirichlet(alpha={alpha}) draw gave every one of {n_hospitals} hospitals "
        f"{min_units} patients in {max_tries} tries; raise alpha or lower the count",
    )


def partition_quantity_skew(
    data: LabelledData, n_hospitals: int, *, alpha: float = 1.0, seed: int = 0, min_units: int = 2
) -> dict[str, LabelledData]:
    """Quantity skew: hospital sizes ~ Dirichlet(alpha) (at least ``min_units`` each), labels IID."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    unit_of, units, _ = _units(data)
    _check(n_hospitals * min_units, len(units), data.source)
    rng = np.random.default_rng(seed)
    spare = len(units) - n_hospitals * min_units
    sizes = min_units + np.floor(rng.dirichlet(np.full(n_hospitals, alpha)) * spare).astype(int)
    sizes[np.argmax(sizes)] += len(units) - sizes.sum()  # rounding leftovers to the largest
    return _assemble(data, unit_of, np.split(rng.permutation(units), np.cumsum(sizes)[:-1]))


def partition(
    data: LabelledData, n_hospitals: int, scheme: str = "iid", *, alpha: float = 0.5, seed: int = 0
) -> dict[str, LabelledData]:
    """Dispatch by name (for configs): ``"iid"``, ``"dirichlet"`` or ``"quantity"``."""
    if scheme == "iid":
        return partition_iid(data, n_hospitals, seed=seed)
    if scheme == "dirichlet":
        return partition_dirichlet(data, n_hospitals, alpha=alpha, seed=seed)
    if scheme == "quantity":
        return partition_quantity_skew(data, n_hospitals, alpha=alpha, seed=seed)
    raise ValueError(f"unknown partition scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def legacy_scanner(data: DataT, *, noise: float = 0.5, seed: int = 0) -> DataT:
    """``data`` as an older device would record it: Gaussian noise of ``noise`` x the site's own
    spread added to every input (per feature for tables, over all pixels for images; images stay
    in [0, 1]). Uses only this site's data."""
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    x = data.x.astype(np.float64)
    scale = x.std(axis=0) if x.ndim == 2 else x.std()
    noisy = x + rng.normal(size=x.shape) * noise * scale
    if x.ndim > 2:
        noisy = np.clip(noisy, 0.0, 1.0)
    suffix = f" [legacy scanner, noise {noise:g}]"
    return type(data)(
        noisy.astype(np.float32), data.y, data.patients, data.groups, data.source + suffix
    )
