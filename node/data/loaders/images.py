"""2-D images: PNG/JPEG files (Pillow), folders with one subfolder per class, and
MedMNIST-style ``.npz`` archives given by path (``train_images``, ``train_labels``, ...).

Pixels become float32 in [0, 1], laid out channels x height x width.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from node.data.loaders._common import binary_labels, existing_file, stack_images
from node.data.samples import DataError, ImageData

__all__ = ["read_image", "load_image_folder", "load_npz", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _pil():
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError(
            "", "reading PNG/JPEG needs the Pillow package (pip install pillow)"
        ) from None
    return Image, UnidentifiedImageError


def read_image(path: str | Path, *, channels: int = 1) -> np.ndarray:
    """One PNG/JPEG as a ``channels`` x H x W float32 array in [0, 1] (1 = grey, 3 = RGB)."""
    Image, Unidentified = _pil()
    path = existing_file(path, "image")
    if channels not in (1, 3):
        raise ValueError("channels must be 1 (grey) or 3 (RGB)")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I") and channels == 1:
                arr = np.asarray(img, dtype=np.float64)
                arr = arr / (65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0))
            else:
                arr = (
                    np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float64)
                    / 255.0
                )
    except (Unidentified, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            path,
            f"unreadable image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
        ) from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return arr.astype(np.float32)


def load_image_folder(
    root: str | Path,
    *,
    positive: object | Iterable[object] | None = None,
    size: tuple[int, int] | None = None,
    channels: int = 1,
    patient_pattern: str | None = None,
    group_pattern: str | None = None,
) -> ImageData:
    """Images under ``root/<class>/``: one subfolder per class, PNG or JPEG files.

    Class folders named ``0`` and ``1`` need no ``positive``; otherwise ``positive`` names the
    positive class folder(s). ``patient_pattern`` / ``group_pattern``: a regular expression whose
    first group, searched in the file name, is the patient ID / group (e.g. ``r"^(P\\d+)_"``).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "image folder does not exist or is not a directory")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(
            root, f"needs one subfolder per class (at least 2), found {len(class_dirs)}"
        )
    files: list[tuple[Path, str]] = []
    for d in class_dirs:
        found = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(d, f"class {d.name!r} has no examples (no .png/.jpg/.jpeg files)")
        files.extend((f, d.name) for f in found)
    y = binary_labels([c for _, c in files], root, "class folder", positive)
    x = stack_images([(f, read_image(f, channels=channels)) for f, _ in files], size, root)
    patients = _from_names([f for f, _ in files], patient_pattern, "patient_pattern")
    groups = _from_names([f for f, _ in files], group_pattern, "group_pattern")
    return ImageData(x, y, patients=patients, groups=groups, source=str(root))


def _from_names(files: list[Path], pattern: str | None, what: str) -> np.ndarray | None:
    if pattern is None:
        return None
    regex = re.compile(pattern)
    out = []
    for f in files:
        m = regex.search(f.name)
        if not m or not (m.group(1) if m.groups() else m.group(0)):
            raise DataError(f, f"file name does not match {what} {pattern!r}")
        out.append(m.group(1) if m.groups() else m.group(0))
    return np.asarray(out, dtype=str)


def load_npz(
    path: str | Path,
    *,
    split: str = "train",
    positive: object | Iterable[object] | None = None,
) -> ImageData:
    """A MedMNIST-style archive: ``{split}_images`` (N x H x W [x C], uint8) and ``{split}_labels``.

    Labels must be one class per image; multi-class sets are binarized with ``positive``
    (e.g. ``positive=[1, 2]``). Multi-label sets (ChestMNIST) are not supported in v1.
    """
    path = existing_file(path, "npz archive")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(
            path, f"not a readable .npz archive ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    with archive:
        keys = set(archive.files)
        ik, lk = f"{split}_images", f"{split}_labels"
        if ik not in keys or lk not in keys:
            raise DataError(
                path, f"missing {ik!r} or {lk!r} (archive has: {', '.join(sorted(keys))})"
            )
        try:
            images, labels = archive[ik], archive[lk]
        except Exception as exc:
            raise DataError(path, f"corrupt array in archive ({type(exc).__name__})") from None
    if images.ndim not in (3, 4):
        raise DataError(path, f"{ik} has shape {images.shape}; expected N x H x W or N x H x W x C")
    labels = labels.reshape(len(labels), -1) if labels.ndim > 1 else labels[:, None]
    if labels.shape[1] != 1:
        raise DataError(
            path, f"{lk} has {labels.shape[1]} labels per image (multi-label); v1 needs one"
        )
    if len(labels) != len(images):
        raise DataError(path, f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise DataError(path, f"{ik} is empty")
    x = images.astype(np.float32)
    if images.dtype == np.uint8:
        x /= 255.0
    elif images.dtype == np.uint16:
        x /= 65535.0
    if not np.isfinite(x).all():
        raise DataError(path, f"{ik} contains NaN or infinite pixels")
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    y = binary_labels(labels[:, 0].tolist(), path, lk, positive)
    return ImageData(np.ascontiguousarray(x), y, source=f"{path}[{split}]")
