"""A node's training data, from its config's ``[data]`` section.

Built-in splits (``breast-cancer``, ``synthetic-imaging``) give site ``k`` of a split every
node draws identically from its seed, for demos, tests and benchmarks. The other sources
read the hospital's own files through :mod:`node.data.loaders` and fail with one
:class:`~node.data.samples.DataError` line naming the file and the problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.data.samples import LabelledData
from node.service.config import DATA_SOURCES, ConfigError, DataSection

if TYPE_CHECKING:
    from node.data.scaling import FeatureBounds

__all__ = ["load_training_data", "feature_bounds"]


def load_training_data(data: DataSection) -> LabelledData:
    if data.source == "breast-cancer":
        from node.data.samples import breast_cancer_split

        cohort = breast_cancer_split(data.sites, seed=data.seed)
        return list(cohort.hospitals.values())[data.site]
    if data.source == "synthetic-imaging":
        from node.data.datasets import synthetic_imaging_split

        images = synthetic_imaging_split(data.sites, seed=data.seed)
        return list(images.hospitals.values())[data.site]
    # config validation catches these two first
    if data.source not in DATA_SOURCES:
        raise ValueError(f"[data].source: unknown source {data.source!r}")
    if data.path is None:
        raise ConfigError(f"[data].path: required for source {data.source!r}")
    from node.data import loaders

    positive = list(data.positive) or None
    if data.source == "table":
        return loaders.load_table(data.path, data.label, positive=positive)
    if data.source == "image-folder":
        return loaders.load_image_folder(data.path, positive=positive)
    if data.source == "npz":
        return loaders.load_npz(data.path, positive=positive)
    return loaders.load_manifest(data.path, label=data.label, positive=positive)


def feature_bounds(data: DataSection) -> FeatureBounds | None:
    """The public feature ranges the node scales by, or None for federated sums (``[data].scaling``)."""
    from node.data.scaling import BREAST_CANCER_BOUNDS, load_bounds

    if data.scaling == "federated":
        return None
    if data.bounds is not None:
        return load_bounds(data.bounds)
    if data.source == "breast-cancer":
        return BREAST_CANCER_BOUNDS
    return None  # auto, and nothing published: federated sums (the node warns)
