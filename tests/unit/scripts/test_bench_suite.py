"""`make bench` goes on without Flower when Flower's virtualenv cannot be built."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


def load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[f"_bench_{name}"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_flower_part_is_skipped_with_one_line_when_pip_cannot_install(
    tmp_path, monkeypatch, capsys
):
    flower, suite = load("bench_flower"), load("bench")
    monkeypatch.setattr(flower, "VENV", tmp_path / "flower-venv")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as with no package registry
    monkeypatch.setattr(
        "sys.argv", ["bench_flower.py", "--quick", "--out", str(tmp_path / "f.json")]
    )
    with pytest.raises(SystemExit) as exit_:
        flower.main()
    assert exit_.value.code == suite.FLOWER_SKIPPED == flower.SKIPPED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "flower: skipped, pip could not install flwr==1.41.0"
    )
    assert not (tmp_path / "f.json").exists()
