"""Loaders for a hospital's own files. Each validates its input and fails with one
:class:`~node.data.samples.DataError` line naming the file and the problem.

| function | reads |
|---|---|
| :func:`load_table` | CSV / TSV (standard library) and Parquet (pyarrow): label, optional patient-ID and group columns |
| :func:`load_image_folder` | PNG / JPEG under one subfolder per class (Pillow) |
| :func:`load_npz` | MedMNIST-style ``.npz`` archives given by path |
| :func:`load_manifest` | DICOM files and series (pydicom), NIfTI volumes (nibabel) and PNG/JPEG listed in a table with their labels |
| :func:`read_dicom`, :func:`read_dicom_series`, :func:`read_nifti`, :func:`read_image` | one file / series / volume, normalized to [0, 1] |
"""

from node.data.loaders.images import load_image_folder, load_npz, read_image
from node.data.loaders.manifest import load_manifest
from node.data.loaders.medical import DicomImage, read_dicom, read_dicom_series, read_nifti
from node.data.loaders.tables import load_table, read_columns
from node.data.samples import DataError

__all__ = [
    "DataError",
    "load_table",
    "read_columns",
    "load_image_folder",
    "load_npz",
    "load_manifest",
    "read_image",
    "read_dicom",
    "read_dicom_series",
    "read_nifti",
    "DicomImage",
]
