"""Hospital data: labelled samples and splits, file loaders, synthetic datasets, and the feature
scaling a consortium agrees on.
"""

from node.data.samples import (
    DEFAULT_CLASS_SHARES,
    DataError,
    FeatureStats,
    HospitalSplit,
    ImageData,
    LabelledData,
    Standardizer,
    TabularData,
    breast_cancer_split,
    hospital_name,
    split_by_patient,
)

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
