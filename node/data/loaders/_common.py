"""Checks shared by the loaders: labels to 0/1, image stacking, file existence."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TypeGuard

import numpy as np

from node.data.samples import DataError

__all__ = ["binary_labels", "stack_images", "existing_file", "resize"]


def existing_file(path: str | Path, what: str = "file") -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(path, f"{what} does not exist")
    if not path.is_file():
        raise DataError(path, f"{what} is not a regular file")
    return path


def _as_number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def binary_labels(
    values: Sequence[object],
    where: object,
    column: str,
    positive: object | Iterable[object] | None = None,
) -> np.ndarray:
    """Map raw label values to float32 0/1.

    Numeric labels that are exactly {0, 1} need no ``positive``. Otherwise ``positive`` names
    the positive class (or several classes, e.g. to binarize a multi-class MedMNIST set); every
    class must then have examples on both sides.
    """
    raw = list(values)
    if not raw:
        raise DataError(where, "no samples")
    missing = [
        i
        for i, v in enumerate(raw)
        if v is None
        or (isinstance(v, str) and not v.strip())
        or (isinstance(v, float) and np.isnan(v))
    ]
    if missing:
        raise DataError(
            where,
            f"label column {column!r} is empty in {len(missing)} row(s), first at row {missing[0] + 1}",
        )
    canon = [_canon(v) for v in raw]
    classes = sorted(set(canon), key=str)
    if positive is None:
        if set(canon) <= {"0", "1"}:
            if len(classes) < 2:
                raise DataError(
                    where,
                    f"label column {column!r} has no examples of class "
                    f"{'1' if classes == ['0'] else '0'}; both classes are needed",
                )
            return np.asarray([c == "1" for c in canon], dtype=np.float32)
        raise DataError(
            where,
            f"label column {column!r} has classes {', '.join(map(repr, classes[:6]))}"
            f"{'...' if len(classes) > 6 else ''}; say which is positive "
            f"([data].positive in a node config, positive= in the API)",
        )
    wanted = {_canon(p) for p in (positive if _is_collection(positive) else [positive])}
    unknown = wanted - set(canon)
    if unknown:
        raise DataError(
            where,
            f"label column {column!r} has no examples of the positive class "
            f"{', '.join(map(repr, sorted(unknown)))} (classes: {', '.join(map(repr, classes[:6]))})",
        )
    y = np.asarray([c in wanted for c in canon], dtype=np.float32)
    if y.all():
        raise DataError(where, f"label column {column!r} has no negative examples")
    return y


def _is_collection(value: object) -> TypeGuard[Collection[object]]:
    return isinstance(value, (list, tuple, set, frozenset))


def _canon(value: object) -> str:
    """'1', 1, 1.0 and np.int64(1) are the same class; strings are stripped."""
    if isinstance(value, str):
        value = value.strip()
        number = _as_number(value)
        return value if number is None or not float(number).is_integer() else str(int(number))
    number = _as_number(value)
    if number is not None and float(number).is_integer():
        return str(int(number))
    return str(value)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased) resize of a C x H x W float image to ``size`` = (H, W)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    out = torch.nn.functional.interpolate(
        t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True
    )
    return out[0].numpy()


def stack_images(
    images: list[tuple[Path, np.ndarray]], size: tuple[int, int] | None, where: object
) -> np.ndarray:
    """Stack C x H x W images into N x C x H x W; mixed sizes fail unless ``size`` is given."""
    if not images:
        raise DataError(where, "no images")
    out = []
    first_path, first = images[0]
    for path, img in images:
        if img.shape[0] != first.shape[0]:
            raise DataError(
                path, f"has {img.shape[0]} channel(s), {first_path.name} has {first.shape[0]}"
            )
        if size is not None:
            if img.shape[1:] != tuple(size):
                img = resize(img, size)
        elif img.shape[1:] != first.shape[1:]:
            raise DataError(
                path,
                f"mixed image sizes: {img.shape[2]}x{img.shape[1]} here, "
                f"{first.shape[2]}x{first.shape[1]} in {first_path.name}; pass size=(H, W) to resize",
            )
        if not np.isfinite(img).all():
            raise DataError(path, "image contains NaN or infinite pixels")
        out.append(img.astype(np.float32, copy=False))
    return np.stack(out)
