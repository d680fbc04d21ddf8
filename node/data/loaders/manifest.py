"""Labelled image files listed in a table (a manifest): one row per file, DICOM / NIfTI / PNG /
JPEG mixed freely, with a label column and optional patient-ID and group columns.

DICOM and NIfTI files carry no diagnosis, so a hospital exports one table next to them::

    file,label,patient,sex
    scans/p001/ct.dcm,1,p001,F
    scans/p002/series/,0,p002,M       <- a folder is read as a DICOM series
    scans/p003/t1.nii.gz,0,p003,F

Paths are relative to the manifest's folder. 3-D inputs (a DICOM series, a NIfTI volume)
feed the 2-D models as slices along ``axis``: the middle slice (``slices="middle"``) or every
slice as its own sample sharing the volume's label, patient and group (``slices="all"``),
so a patient-level split still keeps all of one patient's slices together. Without a
patient-ID column, the DICOM PatientID tag is used where every file has one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from node.data.loaders._common import binary_labels, stack_images
from node.data.loaders.images import IMAGE_SUFFIXES, read_image
from node.data.loaders.medical import read_dicom, read_dicom_series, read_nifti
from node.data.loaders.tables import read_columns
from node.data.samples import DataError, ImageData

__all__ = ["load_manifest"]


def load_manifest(
    manifest: str | Path,
    *,
    file_column: str = "file",
    label: str = "label",
    patient_id: str | None = None,
    group: str | None = None,
    positive: object | Iterable[object] | None = None,
    size: tuple[int, int] | None = None,
    window: tuple[float, float] | None = None,
    slices: str = "middle",
    axis: int = 0,
    channels: int = 1,
) -> ImageData:
    """Load every file a manifest table lists, as one :class:`~node.data.samples.ImageData`."""
    manifest = Path(manifest)
    if slices not in ("middle", "all"):
        raise ValueError(f"slices must be 'middle' or 'all', got {slices!r}")
    columns = read_columns(manifest)
    for role, name in (
        ("file", file_column),
        ("label", label),
        ("patient-ID", patient_id),
        ("group", group),
    ):
        if name is not None and name not in columns:
            raise DataError(
                manifest, f"missing {role} column {name!r} (columns: {', '.join(columns)})"
            )
    n = len(columns[file_column])
    if n == 0:
        raise DataError(manifest, "no data rows")
    labels = binary_labels(columns[label], manifest, label, positive)
    base = manifest.parent
    images: list[tuple[Path, np.ndarray]] = []
    y: list[float] = []
    patients: list[str | None] = []
    groups: list[str] = []
    for i in range(n):
        rel = str(columns[file_column][i] or "").strip()
        if not rel:
            raise DataError(manifest, f"column {file_column!r} is empty at row {i + 1}")
        path = base / rel
        found_patient: str | None = None
        if path.is_dir():
            series = read_dicom_series(path, window=window)
            planes, found_patient = _planes(series.pixels, axis, slices, path), series.patient_id
        elif path.name.lower().endswith((".nii", ".nii.gz")):
            planes = _planes(read_nifti(path), axis, slices, path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            planes = [read_image(path, channels=channels)]
        else:  # DICOM files often have no suffix at all
            if not path.exists():
                raise DataError(
                    path, f"file listed at row {i + 1} of {manifest.name} does not exist"
                )
            image = read_dicom(path, window=window)
            planes, found_patient = [image.pixels], image.patient_id
        for plane in planes:
            if plane.shape[0] != channels:
                plane = (
                    plane.mean(axis=0, keepdims=True)
                    if channels == 1
                    else np.repeat(plane[:1], channels, 0)
                )
            images.append((path, plane))
            y.append(float(labels[i]))
            patients.append(str(columns[patient_id][i]).strip() if patient_id else found_patient)
            if group is not None:
                groups.append(str(columns[group][i]).strip())
    x = stack_images(images, size, manifest)
    ids = np.asarray(patients, dtype=str) if all(p for p in patients) else None
    if patient_id is not None and ids is None:
        raise DataError(manifest, f"patient-ID column {patient_id!r} has empty cells")
    return ImageData(
        x,
        np.asarray(y, dtype=np.float32),
        patients=ids,
        groups=np.asarray(groups, dtype=str) if group is not None else None,
        source=str(manifest),
    )


def _planes(volume: np.ndarray, axis: int, slices: str, path: Path) -> list[np.ndarray]:
    if not -3 <= axis < 3:
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    vol = np.moveaxis(volume, axis, 0)
    if len(vol) == 0:
        raise DataError(path, "volume has no slices")
    chosen = [vol[len(vol) // 2]] if slices == "middle" else list(vol)
    return [np.ascontiguousarray(p[None], dtype=np.float32) for p in chosen]
