"""Data sets for simulation: partitioners that split one cohort across hospitals, and the
SYNTHETIC imaging task. Real cohorts: :func:`node.data.samples.breast_cancer_split`; hospital files:
:mod:`node.data.loaders`."""

from node.data.datasets.partition import (
    SCHEMES,
    legacy_scanner,
    partition,
    partition_dirichlet,
    partition_iid,
    partition_quantity_skew,
)
from node.data.datasets.synthetic import (
    DEFAULT_STYLES,
    LEGACY_STYLE,
    SiteStyle,
    synthetic_imaging_split,
    synthetic_lesions,
)

__all__ = [
    "SCHEMES",
    "partition",
    "partition_iid",
    "partition_dirichlet",
    "partition_quantity_skew",
    "legacy_scanner",
    "SiteStyle",
    "synthetic_lesions",
    "synthetic_imaging_split",
    "DEFAULT_STYLES",
    "LEGACY_STYLE",
]
