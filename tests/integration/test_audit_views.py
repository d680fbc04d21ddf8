"""The audit views (`medmesh audit identities | rounds | round N | credits | peer ID | verify |
report`), the model hash they verify against, and the event index cache."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from ledger_support import LedgerSetup, h32

from ledger import LedgerError, collect, register_commands, save_state
from ledger.index import EventIndex
from ledger.views import parameters_hash, read_model_file

MODEL = np.array([0.5, -1.25, 3.0], dtype=np.float32)


def test_parameters_hash_is_pinned() -> None:
    # by hand: sha256 of the domain and two float32 little-endian values, without numpy
    expected = hashlib.sha256(b"medmesh/params/v1" + struct.pack("<ff", 1.0, -2.5)).hexdigest()
    assert parameters_hash(np.array([1.0, -2.5])).hex() == expected
    assert (
        expected
        == hashlib.sha256(
            b"medmesh/params/v1" + bytes.fromhex("0000803f") + bytes.fromhex("000020c0")
        ).hexdigest()
    )


def test_model_files(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", MODEL.reshape(3, 1))
    (tmp_path / "m.f32").write_bytes(MODEL.astype("<f4").tobytes())
    assert read_model_file(tmp_path / "m.npy").tolist() == MODEL.tolist()
    assert parameters_hash(read_model_file(tmp_path / "m.f32")) == parameters_hash(MODEL)
    (tmp_path / "bad.f32").write_bytes(b"123")
    with pytest.raises(LedgerError, match="not a whole number of float32"):
        read_model_file(tmp_path / "bad.f32")
    np.save(tmp_path / "ints.npy", np.arange(3))
    with pytest.raises(LedgerError, match="expected float parameters"):
        read_model_file(tmp_path / "ints.npy")
    with pytest.raises(LedgerError, match="cannot read model file"):
        read_model_file(tmp_path / "missing.f32")


def _history(s: LedgerSetup) -> None:
    """Round 1 finalized on MODEL's hash without d's update (rejected by a; d dissents);
    round 2 open."""
    a, b, c, d = s.hospitals
    r1 = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(r1, h32(f"u{i}"), 100, 0.25 * (i + 1), 1)
    a.record_rejections(r1, {d.address: "hash-mismatch"})
    accepted = [a.address, b.address, c.address]
    for h in (a, b, c):
        h.attest(r1, parameters_hash(MODEL), accepted)
    d.attest(r1, h32("mine"), [d.address])
    a.finalize(r1)
    r2 = b.open_round()
    a.commit_update(r2, h32("r2"), 100, 0.75, 1)


@pytest.fixture
def audited(tmp_path: Path, ledger_consortium: LedgerSetup) -> tuple[LedgerSetup, Path]:
    _history(ledger_consortium)
    state = tmp_path / "chain.json"
    save_state(ledger_consortium.w3, state, ledger_consortium.deployment)
    return ledger_consortium, state


def _audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="medmesh")
    register_commands(parser.add_subparsers())
    args = parser.parse_args(["audit", *argv])
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_history_records_rejections_dissent_and_exclusions(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    _history(s)
    report = collect(s.w3, s.deployment)
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    a, _, _, d = (h.address for h in s.hospitals)
    r1 = report["rounds"][0]
    assert r1["excluded"] == [d] and r1["dissenters"] == [d]
    assert r1["rejections"] == [
        {"account": d, "reporter": a, "reason": 1, "reason_name": "hash-mismatch"}
    ]
    assert [x["agrees"] for x in r1["attestations"]] == [True, True, True, False]
    assert report["epsilon"][a] == [{"round": 1, "epsilon": 0.25}, {"round": 2, "epsilon": 0.75}]
    assert report["settings"]["ledger"]["credit_scheme"] == "samples"


def test_table_views(audited: tuple[LedgerSetup, Path], capsys: pytest.CaptureFixture[str]) -> None:
    s, state = audited
    a, b, c, d = (h.address for h in s.hospitals)
    code, out, _ = _audit(capsys, "--chain-state", str(state), "rounds", "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["round"], r["status"], r["excluded"], r["dissent"]) for r in rows] == [
        (1, "finalized", 1, 1),
        (2, "open", 0, 0),
    ]
    code, out, _ = _audit(capsys, "round", "1", "--csv", "--chain-state", str(state))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["account"] for r in rows] == [a, b, c, d]
    assert (rows[3]["accepted"], rows[3]["rejected_by"], rows[3]["vote"]) == (
        "no",
        "hash-mismatch",
        "DISSENT",
    )
    assert rows[0]["vote"] == "agrees" and float(rows[0]["credited"]) == pytest.approx(
        100 / 3, abs=1e-5
    )
    code, out, _ = _audit(capsys, "--chain-state", str(state), "identities")
    assert code == 0 and out.splitlines()[0].split()[:4] == [
        "account",
        "peer_id",
        "institution_id",
        "status",
    ]
    assert out.count("genesis") == 4
    code, out, _ = _audit(capsys, "--chain-state", str(state), "credits", "--json")
    assert {r["account"] for r in json.loads(out)} == {a, b, c}
    peer = s.admin.identity(a).peer_id  # type: ignore[union-attr]
    code, out, _ = _audit(capsys, "--chain-state", str(state), "peer", peer, "--json")
    assert code == 0 and [r["round"] for r in json.loads(out)] == [1, 2]
    code, _, err = _audit(capsys, "--chain-state", str(state), "round", "9")
    assert code == 1 and err.startswith("medmesh audit: round 9 never opened")
    code, _, err = _audit(capsys, "--chain-state", str(state), "peer", "12D3KooWnobody")
    assert code == 1 and "no registered identity" in err
    code, _, err = _audit(capsys, "rounds")
    assert code == 1 and "give one of --chain-state FILE or --deployment FILE" in err
    code, _, err = _audit(capsys, "--chain-state", str(state), "--deployment", str(state), "rounds")
    assert code == 1 and "give one of --chain-state FILE or --deployment FILE" in err
    code, _, err = _audit(capsys, "--chain-state", str(state), "--rpc", "http://x", "rounds")
    assert code == 1 and "--rpc goes with --deployment, not --chain-state" in err


def test_verify(
    audited: tuple[LedgerSetup, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    s, state = audited
    np.save(tmp_path / "model.npy", MODEL)
    code, out, _ = _audit(
        capsys, "--chain-state", str(state), "verify", str(tmp_path / "model.npy")
    )
    assert code == 0 and "produced by finalized round 1" in out and "dissent" in out
    code, out, _ = _audit(
        capsys, "--chain-state", str(state), "verify", str(tmp_path / "model.npy"), "--json"
    )
    (found,) = json.loads(out)
    assert found["round"] == 1 and found["hash"] == "0x" + parameters_hash(MODEL).hex()
    assert [c["account"] for c in found["contributors"]] == sorted(
        (h.address for h in s.hospitals[:3]), key=lambda x: int(x, 16)
    )
    assert [x["agrees"] for x in found["attesters"]] == [True, True, True, False]
    (tmp_path / "other.f32").write_bytes(np.ones(3, dtype="<f4").tobytes())
    code, out, _ = _audit(
        capsys, "--chain-state", str(state), "verify", str(tmp_path / "other.f32")
    )
    assert code == 3 and "no finalized round produced this model" in out


def test_html_report_is_self_contained(
    audited: tuple[LedgerSetup, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, state = audited
    code, out, _ = _audit(
        capsys, "--chain-state", str(state), "report", "--out", str(tmp_path / "report")
    )
    assert code == 0 and "transparency report written" in out
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("<svg") == 3 and "<script" not in page and "src=" not in page
    for heading in (
        "Participants",
        "Rounds",
        "epsilon spent per hospital",
        "Rejections",
        "Dissenting",
        "Credits",
    ):
        assert heading in page
    assert "hash-mismatch" in page and "left out of the accepted set" in page
    assert json.loads((tmp_path / "report" / "audit.json").read_text())["ok"] is True


def test_event_index_cache(tmp_path: Path, ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    _history(s)
    first = EventIndex(s.w3, s.deployment, tmp_path).update()
    assert first.cache_file is not None and first.cache_file.exists()
    again = EventIndex(s.w3, s.deployment, tmp_path)
    assert again.last_block == first.last_block and again.events == first.events  # from disk
    s.hospitals[1].commit_update(2, h32("more"), 5, 0.6, 0)
    again.update()
    assert (
        len(again.events) == len(first.events) + 1
        and again.events[-1]["event"] == "UpdateCommitted"
    )
    again.last_hash = "0x" + "00" * 32  # a reorganized chain: read it all again
    again.update()
    assert again.events[: len(first.events)] == first.events
