"""Medical image formats: DICOM files and series (pydicom), NIfTI volumes (nibabel).

Pixel normalization: DICOM stored values go through the modality LUT (RescaleSlope /
RescaleIntercept, so CT is in Hounsfield units), then either a fixed window
``(center, width)`` (e.g. ``(40, 400)`` for soft tissue) or the image's own min-max is mapped
to [0, 1]. NIfTI volumes are clipped to their 1st-99th percentile, then mapped to [0, 1].
A series or volume is normalized as a whole, never slice by slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from node.data.loaders._common import existing_file
from node.data.samples import DataError

__all__ = ["DicomImage", "read_dicom", "read_dicom_series", "read_nifti", "normalize_window"]


@dataclass(frozen=True)
class DicomImage:
    pixels: np.ndarray  # float32, C x H x W (one frame) or D x H x W (a series), in [0, 1]
    patient_id: str | None
    modality: str | None


def normalize_window(values: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Map ``values`` to [0, 1]: by a (center, width) window, else by their min and max."""
    values = values.astype(np.float64)
    if window is not None:
        center, width = window
        if width <= 0:
            raise ValueError(f"window width must be > 0, got {width}")
        lo, hi = center - width / 2, center + width / 2
    else:
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros_like(values, dtype=np.float32)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _pydicom():
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut
    except ImportError:
        raise DataError(
            "", "reading DICOM needs the pydicom package (pip install pydicom)"
        ) from None
    return pydicom, apply_modality_lut


def _read_dataset(path: Path):
    pydicom, apply_modality_lut = _pydicom()
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # InvalidDicomError, EOFError, struct errors on truncated files...
        raise DataError(
            path,
            f"unreadable DICOM ({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''})",
        ) from None
    if "PixelData" not in ds:
        raise DataError(path, "DICOM file has no pixel data (not an image)")
    try:
        values = apply_modality_lut(ds.pixel_array, ds)
    except Exception as exc:  # compressed without a decoder, inconsistent pixel tags...
        raise DataError(
            path,
            f"cannot decode DICOM pixels ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})",
        ) from None
    if not np.isfinite(values).all():
        raise DataError(path, "DICOM pixels contain NaN or infinite values")
    return ds, np.asarray(values)


def _text(ds, keyword: str) -> str | None:
    value = ds.get(keyword)
    return None if value in (None, "") else str(value)


def read_dicom(path: str | Path, *, window: tuple[float, float] | None = None) -> DicomImage:
    """One single-frame DICOM image as 1 x H x W (grey) or 3 x H x W (RGB) in [0, 1]."""
    path = existing_file(path, "DICOM file")
    ds, values = _read_dataset(path)
    samples = int(ds.get("SamplesPerPixel", 1))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DataError(path, f"multi-frame DICOM ({frames} frames); read it as a volume")
    if samples == 1 and values.ndim == 2:
        img = values[None]
    elif samples == 3 and values.ndim == 3:
        img = values.transpose(2, 0, 1)
    else:
        raise DataError(
            path,
            f"unsupported DICOM pixel layout {values.shape} with {samples} sample(s) per pixel",
        )
    return DicomImage(normalize_window(img, window), _text(ds, "PatientID"), _text(ds, "Modality"))


def read_dicom_series(
    folder: str | Path, *, window: tuple[float, float] | None = None
) -> DicomImage:
    """A folder of single-frame DICOM slices of one series as a D x H x W volume in [0, 1].

    Slices are ordered along the patient axis (ImagePositionPatient), else by InstanceNumber;
    they must share one SeriesInstanceUID, one patient and one size.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "DICOM series folder does not exist or is not a directory")
    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
    if not files:
        raise DataError(folder, "DICOM series folder is empty")
    slices = []
    for f in files:
        ds, values = _read_dataset(f)
        if values.ndim != 2:
            raise DataError(
                f, f"series slices must be single-frame grey images, got pixel shape {values.shape}"
            )
        slices.append((f, ds, values))
    first_f, first, first_v = slices[0]
    for f, ds, v in slices[1:]:
        if _text(ds, "SeriesInstanceUID") != _text(first, "SeriesInstanceUID"):
            raise DataError(f, f"belongs to another series than {first_f.name}")
        if _text(ds, "PatientID") != _text(first, "PatientID"):
            raise DataError(f, f"belongs to another patient than {first_f.name}")
        if v.shape != first_v.shape:
            raise DataError(
                f, f"mixed slice sizes: {v.shape} here, {first_v.shape} in {first_f.name}"
            )

    def position(item) -> tuple[float, float]:
        f, ds, _ = item
        pos = ds.get("ImagePositionPatient")
        orient = ds.get("ImageOrientationPatient")
        if pos is not None and orient is not None and len(orient) == 6:
            normal = np.cross(np.asarray(orient[:3], float), np.asarray(orient[3:], float))
            return float(np.dot(normal, np.asarray(pos, float))), 0.0
        number = ds.get("InstanceNumber")
        if number is None:
            raise DataError(
                f,
                "slice has neither ImagePositionPatient nor InstanceNumber; cannot order the series",
            )
        return float(number), 0.0

    ordered = sorted(slices, key=position)
    keys = [position(s)[0] for s in ordered]
    if len(set(keys)) != len(keys):
        raise DataError(folder, "two slices share one position; is this more than one series?")
    volume = np.stack([v for _, _, v in ordered])
    return DicomImage(
        normalize_window(volume, window), _text(first, "PatientID"), _text(first, "Modality")
    )


def read_nifti(path: str | Path) -> np.ndarray:
    """A NIfTI volume (``.nii`` / ``.nii.gz``) as float32 X x Y x Z in [0, 1].

    Intensities are clipped to the volume's 1st-99th percentile before scaling (robust to a
    few extreme voxels). A 4-D file must have a single volume.
    """
    try:
        import nibabel as nib
        from nibabel.dataobj_images import DataobjImage
    except ImportError:
        raise DataError(
            path, "reading NIfTI needs the nibabel package (pip install nibabel)"
        ) from None
    path = existing_file(path, "NIfTI file")
    try:
        image = nib.load(str(path))
        if not isinstance(image, DataobjImage):
            raise TypeError(f"{type(image).__name__} holds no voxel array")
        data = np.asarray(image.get_fdata(dtype=np.float32))
    except Exception as exc:
        raise DataError(
            path,
            f"unreadable NIfTI ({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''})",
        ) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(path, f"expected a 3-D volume, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise DataError(
            path, f"volume contains NaN or infinite voxels ({int((~np.isfinite(data)).sum())})"
        )
    lo, hi = np.percentile(data, [1, 99])
    return normalize_window(np.clip(data, lo, hi), None)
