"""Loaders: every bad input fails with one DataError line naming the file and the problem."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from node.data.loaders import (
    load_image_folder,
    load_manifest,
    load_npz,
    load_table,
    read_dicom,
    read_dicom_series,
    read_nifti,
)
from node.data.samples import DataError, ImageData, TabularData, split_by_patient


def one_line(exc: pytest.ExceptionInfo, path, *words: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w in msg, msg


# -- tables ------------------------------------------------------------------------------
def write_csv(path, text: str):
    path.write_text(text)
    return path


def test_csv_with_label_patient_and_group_columns(tmp_path):
    p = write_csv(
        tmp_path / "site.csv",
        "pid,sex,age,marker,dx\nP1,F,50,1.5,M\nP1,F,51,1.7,M\nP2,M,60,0.2,B\nP3,F,45,0.1,B\n",
    )
    data = load_table(p, "dx", patient_id="pid", group="sex", positive="M")
    assert isinstance(data, TabularData) and data.x.shape == (4, 2)
    assert data.y.tolist() == [1, 1, 0, 0] and data.patients.tolist() == ["P1", "P1", "P2", "P3"]
    assert data.groups.tolist() == ["F", "F", "M", "F"] and data.source == str(p)
    numeric = load_table(write_csv(tmp_path / "n.csv", "a,y\n1,0\n2,1\n"), "y")
    assert numeric.y.tolist() == [0, 1]


@pytest.mark.parametrize(
    "text, kwargs, words",
    [
        ("a,b\n1,2\n", {}, ["missing label column 'y'"]),
        ("a,y\n1,0\nnan,1\n", {}, ["'a'", "NaN", "row 2"]),
        ("a,y\n1,0\n,1\n", {}, ["'a'", "empty at row 2"]),
        ("a,y\n1,0\nabc,1\n", {}, ["'abc' is not a number"]),
        ("a,y\n1,0\n2,0\n", {}, ["no examples of class 1"]),
        ("a,y\n1,B\n2,M\n", {}, ["say which is positive"]),
        ("a,y\n1,B\n2,B\n", {"positive": "M"}, ["no examples of the positive class 'M'"]),
        ("a,y\n1,0\n2,1,3\n", {}, ["line 3 has 3 fields"]),
        ("a,y\n", {}, ["no data rows"]),
        ("a,y\n1,0\n2,1\n", {"patient_id": "pid"}, ["missing patient-ID column 'pid'"]),
    ],
)
def test_csv_problems_name_the_file(tmp_path, text, kwargs, words):
    p = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as exc:
        load_table(p, "y", **kwargs)
    one_line(exc, p, *words)


def test_missing_and_unknown_table_files(tmp_path):
    with pytest.raises(DataError) as exc:
        load_table(tmp_path / "absent.csv", "y")
    one_line(exc, tmp_path / "absent.csv", "does not exist")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown table format"):
        load_table(tmp_path / "t.xlsx", "y")


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "site.parquet"
    pq.write_table(
        pa.table({"f1": [0.1, 0.2, 0.3], "f2": [1, 2, 3], "y": [0, 1, 1], "pid": ["a", "b", "c"]}),
        p,
    )
    data = load_table(p, "y", patient_id="pid")
    assert data.x.shape == (3, 2) and data.y.tolist() == [0, 1, 1]
    pq.write_table(pa.table({"f1": [0.1, None], "y": [0, 1]}), p)
    with pytest.raises(DataError) as exc:
        load_table(p, "y")
    one_line(exc, p, "'f1'", "empty at row 2")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="unreadable Parquet"):
        load_table(tmp_path / "junk.parquet", "y")


# -- PNG / JPEG folders --------------------------------------------------------------------
def save_png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder(tmp_path):
    import PIL  # noqa: F401  (a pinned dependency: its absence must fail, not skip)

    rng = np.random.default_rng(0)
    for cls in ("benign", "malignant"):
        for i in range(3):
            save_png(
                tmp_path / "imgs" / cls / f"P{i}_{cls}.png",
                rng.integers(0, 255, (20, 24), dtype=np.uint8),
            )
    data = load_image_folder(tmp_path / "imgs", positive="malignant", patient_pattern=r"^(P\d+)_")
    assert isinstance(data, ImageData) and data.x.shape == (6, 1, 20, 24)
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1] and 0 <= data.x.min() and data.x.max() <= 1
    assert data.patients.tolist() == ["P0", "P1", "P2"] * 2
    # mixed sizes: the odd file is named; with size=... it is resized instead
    save_png(
        tmp_path / "imgs" / "benign" / "P9_big.png", rng.integers(0, 255, (30, 30), dtype=np.uint8)
    )
    with pytest.raises(DataError) as exc:
        load_image_folder(tmp_path / "imgs", positive="malignant")
    one_line(exc, "P9_big.png", "mixed image sizes")
    assert load_image_folder(tmp_path / "imgs", positive="malignant", size=(16, 16)).x.shape == (
        7,
        1,
        16,
        16,
    )


def test_image_folder_problems(tmp_path):
    import PIL  # noqa: F401  (a pinned dependency: its absence must fail, not skip)

    save_png(tmp_path / "a" / "0" / "x.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "a" / "1").mkdir()
    with pytest.raises(DataError) as exc:
        load_image_folder(tmp_path / "a")
    one_line(exc, tmp_path / "a" / "1", "has no examples")
    (tmp_path / "a" / "1" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError) as exc:
        load_image_folder(tmp_path / "a")
    one_line(exc, "broken.png", "unreadable image")


# -- MedMNIST-style npz --------------------------------------------------------------------
def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "pathmnist.npz"
    np.savez(
        p,
        train_images=rng.integers(0, 255, (10, 28, 28, 3), dtype=np.uint8),
        train_labels=np.arange(10).reshape(10, 1) % 3,
        test_images=np.zeros((2, 28, 28, 3), np.uint8),
        test_labels=np.array([[0], [1]]),
    )
    with pytest.raises(DataError) as exc:
        load_npz(p)
    one_line(exc, p, "say which is positive")
    data = load_npz(p, positive=[1, 2])
    assert data.x.shape == (10, 3, 28, 28) and data.y.sum() == 6 and data.x.max() <= 1
    assert load_npz(p, split="test").y.tolist() == [0, 1]
    with pytest.raises(DataError) as exc:
        load_npz(p, split="val")
    one_line(exc, p, "missing 'val_images'")
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_npz(tmp_path / "bad.npz")


# -- DICOM ---------------------------------------------------------------------------------
def dicom_file(name: str) -> str:
    import pydicom.data as pydicom_data

    return pydicom_data.get_testdata_file(name)


def test_dicom_pixels_are_normalized_with_modality_lut_and_window():
    ct = read_dicom(dicom_file("CT_small.dcm"))
    assert ct.pixels.shape == (1, 128, 128) and ct.pixels.min() == 0 and ct.pixels.max() == 1
    assert ct.patient_id == "1CT1" and ct.modality == "CT"
    soft = read_dicom(dicom_file("CT_small.dcm"), window=(40, 400))  # Hounsfield soft-tissue window
    assert (
        soft.pixels.min() >= 0
        and soft.pixels.max() <= 1
        and not np.allclose(soft.pixels, ct.pixels)
    )


def test_dicom_manifest_sizes_patients_and_errors(tmp_path):
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(dicom_file(name), tmp_path / name)
    m = write_csv(tmp_path / "manifest.csv", "file,label\nCT_small.dcm,1\nMR_small.dcm,0\n")
    with pytest.raises(DataError) as exc:
        load_manifest(m)
    one_line(exc, "MR_small.dcm", "mixed image sizes")
    data = load_manifest(m, size=(64, 64))
    assert data.x.shape == (2, 1, 64, 64) and data.patients.tolist() == ["1CT1", "4MR1"]
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 200)
    write_csv(m, "file,label\nCT_small.dcm,1\nbroken.dcm,0\n")
    with pytest.raises(DataError) as exc:
        load_manifest(m)
    one_line(exc, tmp_path / "broken.dcm", "unreadable DICOM")
    write_csv(m, "file,label\nCT_small.dcm,1\nmissing.dcm,0\n")
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(m)


def test_dicom_series_is_ordered_along_the_patient_axis(tmp_path):
    import pydicom

    src = pydicom.dcmread(dicom_file("CT_small.dcm"))
    series = tmp_path / "series"
    series.mkdir()
    z0 = float(src.ImagePositionPatient[2])
    for i, z in enumerate([2, 0, 1]):  # written out of order
        ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
        ds.ImagePositionPatient = [
            src.ImagePositionPatient[0],
            src.ImagePositionPatient[1],
            z0 + 5 * z,
        ]
        ds.InstanceNumber = z + 1
        arr = ds.pixel_array.copy()
        arr[0, 0] = 1000 + 10 * z  # a marker to check the order
        ds.PixelData = arr.tobytes()
        ds.save_as(series / f"slice{i}.dcm")
    vol = read_dicom_series(series)
    assert vol.pixels.shape == (3, 128, 128)
    assert vol.pixels[0, 0, 0] < vol.pixels[1, 0, 0] < vol.pixels[2, 0, 0]
    shutil.copy(dicom_file("CT_small.dcm"), tmp_path / "single.dcm")
    m = write_csv(tmp_path / "m.csv", "file,label\nseries,1\nsingle.dcm,0\n")
    everything = load_manifest(m, slices="all")
    assert everything.x.shape == (4, 1, 128, 128) and everything.y.tolist() == [1, 1, 1, 0]
    assert set(everything.patients) == {"1CT1"}
    other = pydicom.dcmread(dicom_file("CT_small.dcm"))
    other.SeriesInstanceUID = "1.2.3.4"
    other.save_as(series / "stray.dcm")
    with pytest.raises(DataError) as exc:
        read_dicom_series(series)
    one_line(exc, "stray.dcm", "another series")


# -- NIfTI ---------------------------------------------------------------------------------
def test_nifti_volumes_slices_and_patient_split(tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(0)
    rows = ["file,label,patient,site"]
    for i in range(6):
        vol = rng.normal(100, 20, (16, 16, 5)).astype(np.float32)
        nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / f"p{i}.nii.gz")
        rows.append(f"p{i}.nii.gz,{i % 2},p{i},{'north' if i < 3 else 'south'}")
    m = write_csv(tmp_path / "m.csv", "\n".join(rows) + "\n")
    middle = load_manifest(m, patient_id="patient", group="site", axis=2)
    assert middle.x.shape == (6, 1, 16, 16) and middle.groups.tolist()[:4] == ["north"] * 3 + [
        "south"
    ]
    assert 0 <= middle.x.min() and middle.x.max() <= 1
    slices = load_manifest(m, patient_id="patient", axis=2, slices="all")
    assert slices.x.shape == (30, 1, 16, 16)
    train, test = split_by_patient(slices, 0.34, seed=1)
    assert not set(train.patients) & set(test.patients)  # a patient's slices stay on one side
    assert len(test) % 5 == 0
    bad = np.ones((4, 4, 4), np.float32)
    bad[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(bad, np.eye(4)), tmp_path / "nan.nii")
    with pytest.raises(DataError) as exc:
        read_nifti(tmp_path / "nan.nii")
    one_line(exc, tmp_path / "nan.nii", "NaN")
    (tmp_path / "junk.nii").write_bytes(b"junk")
    with pytest.raises(DataError, match="unreadable NIfTI"):
        read_nifti(tmp_path / "junk.nii")
