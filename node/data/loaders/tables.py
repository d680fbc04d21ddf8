"""CSV and Parquet tables: one row per sample, a label column, optional patient-ID and group
columns; every other column (or the ``features`` named) is a numeric feature.

CSV is read with the standard library; Parquet needs ``pyarrow``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from node.data.loaders._common import binary_labels, existing_file
from node.data.samples import DataError, TabularData

__all__ = ["load_table", "read_columns"]


def read_columns(path: str | Path) -> dict[str, list]:
    """The table at ``path`` (``.csv``, ``.tsv``, ``.parquet``/``.pq``) as column -> values."""
    path = existing_file(path, "table")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path, "\t" if suffix == ".tsv" else ",")
    raise DataError(path, f"unknown table format {suffix!r}; use .csv, .tsv or .parquet")


def _read_csv(path: Path, delimiter: str) -> dict[str, list]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            header = next(reader, None)
            if not header:
                raise DataError(path, "empty file (no header row)")
            header = [h.strip() for h in header]
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise DataError(path, f"duplicate column name(s): {', '.join(dupes)}")
            columns: dict[str, list] = {h: [] for h in header}
            for lineno, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise DataError(
                        path, f"line {lineno} has {len(row)} fields, the header has {len(header)}"
                    )
                for h, cell in zip(header, row, strict=False):
                    columns[h].append(cell)
    except UnicodeDecodeError as exc:
        raise DataError(
            path, f"not a UTF-8 text table ({exc.reason} at byte {exc.start})"
        ) from None
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV: {exc}") from None
    return columns


def _read_parquet(path: Path) -> dict[str, list]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            path, "reading Parquet needs the pyarrow package (pip install pyarrow)"
        ) from None
    try:
        return pq.read_table(path).to_pydict()
    except Exception as exc:  # pyarrow raises its own ArrowInvalid, OSError...
        raise DataError(path, f"unreadable Parquet file ({str(exc).splitlines()[0]})") from None


def load_table(
    path: str | Path,
    label: str,
    *,
    patient_id: str | None = None,
    group: str | None = None,
    features: Sequence[str] | None = None,
    positive: object | Iterable[object] | None = None,
) -> TabularData:
    """Load a table of samples: ``label`` column, optional ``patient_id`` and ``group`` columns.

    Features are ``features`` if given, else every other column. Features must be numeric and
    complete (a NaN, an empty cell or text fails, naming the column and the first bad row).
    """
    columns = read_columns(path)
    n = len(next(iter(columns.values()), []))
    if n == 0:
        raise DataError(path, "no data rows")
    for role, name in (("label", label), ("patient-ID", patient_id), ("group", group)):
        if name is not None and name not in columns:
            raise DataError(
                path, f"missing {role} column {name!r} (columns: {', '.join(list(columns)[:12])})"
            )
    special = {label, patient_id, group} - {None}
    names = list(features) if features is not None else [c for c in columns if c not in special]
    missing = [f for f in names if f not in columns]
    if missing:
        raise DataError(path, f"missing feature column(s): {', '.join(missing)}")
    if not names:
        raise DataError(path, "no feature columns")
    x = np.empty((n, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        x[:, j] = _numeric(columns[name], path, name)
    y = binary_labels(columns[label], path, label, positive)
    ids = None
    if patient_id is not None:
        ids = _strings(columns[patient_id], path, patient_id)
    groups = None if group is None else _strings(columns[group], path, group)
    return TabularData(x, y, patients=ids, groups=groups, source=str(path))


def _numeric(values: list, path: str | Path, column: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if isinstance(v, str):
            v = v.strip()
            if not v:
                raise DataError(path, f"column {column!r} is empty at row {i + 1} (missing value)")
            try:
                v = float(v)
            except ValueError:
                raise DataError(
                    path, f"column {column!r} row {i + 1}: {v[:30]!r} is not a number"
                ) from None
        elif v is None:
            raise DataError(path, f"column {column!r} is empty at row {i + 1} (missing value)")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(
                path, f"column {column!r} row {i + 1}: {type(v).__name__} is not a number"
            )
        if not math.isfinite(v):
            bad = sum(1 for w in values if _not_finite(w))
            raise DataError(
                path,
                f"column {column!r} has NaN or infinite values in {bad} row(s), first at row {i + 1}",
            )
        out[i] = v
    return out


def _not_finite(v: object) -> bool:
    try:
        return not math.isfinite(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _strings(values: list, path: str | Path, column: str) -> np.ndarray:
    out = ["" if v is None else str(v).strip() for v in values]
    empty = [i for i, v in enumerate(out) if not v]
    if empty:
        raise DataError(
            path, f"column {column!r} is empty in {len(empty)} row(s), first at row {empty[0] + 1}"
        )
    return np.asarray(out, dtype=str)
