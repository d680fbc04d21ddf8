"""The ledger against a real anvil node (node_modules/.bin/anvil), started by the fixture."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_support import BUDGET, COHORT, HOSPITALS, h32, keys, peer_id, reverts, setup_on
from web3 import Web3

from ledger import (
    Anvil,
    Deployment,
    LedgerClient,
    LedgerError,
    advance_time,
    collect,
    connect,
    deploy,
    dev_account,
    fund,
    institution_id,
)
from ledger.devnet import rpc_answers

pytestmark = pytest.mark.anvil
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ledger_anvil_rpc() -> Iterator[str]:
    """A real anvil devnet for this module."""
    with Anvil() as rpc:
        yield rpc


@pytest.fixture(scope="module")
def ledger_anvil_deployment(ledger_anvil_rpc: str) -> Deployment:
    w3 = connect(ledger_anvil_rpc)
    return deploy(w3, dev_account(w3, 0), commit_window=600, attest_window=600)


def test_full_round_on_anvil(ledger_anvil_rpc: str, ledger_anvil_deployment: Deployment) -> None:
    w3 = connect(ledger_anvil_rpc)
    assert w3.eth.chain_id == 31337 and ledger_anvil_deployment.rpc == ledger_anvil_rpc
    s = setup_on(w3, ledger_anvil_deployment)
    for i, h in enumerate(s.hospitals):
        h.register(institution_id(HOSPITALS[i]), peer_id(i), *keys(i), COHORT)
        s.admin.admit(h.address)
        h.declare_privacy_budget(BUDGET)
    assert s.admin.active_count() == 4
    assert [i.peer_id for i in s.admin.identities()] == [peer_id(i) for i in range(4)]

    rnd = s.hospitals[0].open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(rnd, h32(f"anvil-{i}"), 100 * (i + 1), 0.75, 1)
    with reverts("RoundLedgerAlreadyCommitted", round=rnd, account=s.hospitals[0].address):
        s.hospitals[0].commit_update(rnd, h32("again"), 1, 0.75, 1)
    accepted = [h.address for h in s.hospitals]
    for h in s.hospitals:
        h.attest(rnd, h32("anvil-aggregate"), accepted)
    assert s.hospitals[0].quorum_reached(rnd)
    s.hospitals[3].finalize(rnd)

    info = s.admin.round_info(rnd)
    assert info.status == "finalized" and info.aggregate_hash == h32("anvil-aggregate")
    assert [s.admin.credit_balance(a) for a in accepted] == [
        10 * 10**18,
        20 * 10**18,
        30 * 10**18,
        40 * 10**18,
    ]
    commits = s.admin.commitments(rnd)
    assert [c.samples for c in commits.values()] == [100, 200, 300, 400]
    assert all(c.epsilon == pytest.approx(0.75) for c in commits.values())
    assert (
        len(s.hospitals[0].gas_used["attest"]) == 1 and s.hospitals[3].gas_used["finalize"][0] > 0
    )

    report = collect(w3, ledger_anvil_deployment)
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert (
        report["rounds"][0]["status"] == "finalized"
        and len(report["rounds"][0]["attestations"]) == 4
    )


def test_a_round_without_quorum_fails_on_anvil(
    ledger_anvil_rpc: str, ledger_anvil_deployment: Deployment
) -> None:
    w3 = connect(ledger_anvil_rpc)
    s = setup_on(w3, ledger_anvil_deployment)
    if s.admin.active_count() == 0:  # this test also runs alone
        for i, h in enumerate(s.hospitals):
            h.register(institution_id(HOSPITALS[i]), peer_id(i), *keys(i), COHORT)
            s.admin.admit(h.address)
            h.declare_privacy_budget(BUDGET)
    rnd = s.hospitals[1].open_round()
    s.hospitals[1].commit_update(rnd, h32("lonely"), 10, 1.0, 0)
    s.hospitals[1].attest(rnd, h32("agg"), [s.hospitals[1].address])
    deadline = s.admin.round_info(rnd).attest_deadline
    with reverts("RoundLedgerAttestStillOpen", round=rnd, deadline=deadline):
        s.hospitals[2].fail_round(rnd)
    assert advance_time(w3, 1201) > deadline
    s.hospitals[2].fail_round(rnd)
    assert s.admin.round_info(rnd).status == "failed"


def test_deployment_save_and_load(
    tmp_path: Path, ledger_anvil_rpc: str, ledger_anvil_deployment: Deployment
) -> None:
    path = tmp_path / "nested" / "deployment.json"
    ledger_anvil_deployment.save(path)
    assert json.loads(path.read_text())["addresses"] == ledger_anvil_deployment.addresses
    assert [p.name for p in path.parent.iterdir()] == ["deployment.json"]  # no temp file left
    loaded = Deployment.load(path)
    assert loaded == ledger_anvil_deployment
    client = LedgerClient(connect(loaded.rpc), loaded, dev_account(connect(loaded.rpc), 7))
    assert client.credit.functions.symbol().call() == "MMC"
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(LedgerError, match="not a medmesh deployment"):
        Deployment.load(tmp_path / "bad.json")
    with pytest.raises(LedgerError, match="cannot read deployment file"):
        Deployment.load(tmp_path / "missing.json")


def test_audit_command_reads_a_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ledger_anvil_deployment: Deployment
) -> None:
    import argparse

    from ledger import register_commands

    path = tmp_path / "deployment.json"
    ledger_anvil_deployment.save(path)
    parser = argparse.ArgumentParser(prog="medmesh")
    register_commands(parser.add_subparsers())
    args = parser.parse_args(["audit", "--deployment", str(path), "--json"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["chain"]["chain_id"] == 31337
    args = parser.parse_args(["audit", "--deployment", str(path), "--rpc", "http://127.0.0.1:9"])
    assert args.func(args) == 1
    assert capsys.readouterr().err.startswith("medmesh audit: no Ethereum JSON-RPC node answers")


def test_fresh_keys_are_funded_and_sign_locally(
    ledger_anvil_rpc: str, ledger_anvil_deployment: Deployment
) -> None:
    from eth_account import Account

    w3 = connect(ledger_anvil_rpc)
    key = Account.create()
    fund(w3, key.address, 10**18)
    assert w3.eth.get_balance(key.address) == 10**18
    client = LedgerClient(w3, ledger_anvil_deployment, key)
    client.register(institution_id("Fresh Clinic"), "12D3KooWfresh", *keys(42), COHORT)
    assert client.identity(key.address).status == "pending"  # type: ignore[union-attr]
    with pytest.raises(LedgerError, match="chain id"):
        LedgerClient(connect(), ledger_anvil_deployment, key)


def test_connect_to_nothing_is_one_clear_line() -> None:
    with pytest.raises(LedgerError) as info:
        connect("http://127.0.0.1:9")
    assert "no Ethereum JSON-RPC node answers at http://127.0.0.1:9" in str(info.value)


def test_anvil_stops_on_exit_and_reports_a_missing_binary(tmp_path: Path) -> None:
    with Anvil() as rpc:
        assert rpc_answers(rpc)
    assert not rpc_answers(rpc)
    with pytest.raises(LedgerError, match="run `make setup`"), Anvil(binary=tmp_path / "anvil"):
        pass


def test_devnet_command_deploys_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "deployment.json"
    code = (
        "import argparse, sys; from ledger.cli import register_commands; "
        "p = argparse.ArgumentParser(); register_commands(p.add_subparsers()); "
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "devnet", "--port", str(port), "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # started with SIGINT ignored, as a shell's background job or a pytest-xdist worker
        # hands it down: Ctrl-C must stop the devnet all the same
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "Ctrl-C" in line:
                break
        assert f"http://127.0.0.1:{port}" in "".join(lines), "".join(lines) + proc.stderr.read()  # type: ignore[union-attr]
        deployment = Deployment.load(out)
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        assert w3.eth.get_code(deployment.addresses["RoundLedger"])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not rpc_answers(f"http://127.0.0.1:{port}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_membership_rejections_and_dissent_on_anvil(ledger_anvil_rpc: str) -> None:
    """The new flows on a real node, on a deployment of their own: endorsed admission, a
    suspension by quorum, a recorded rejection, a late dissent; exact errors and events."""
    from eth_abi import encode as abi_encode
    from eth_utils import keccak
    from ledger_support import events

    w3 = connect(ledger_anvil_rpc)
    s = setup_on(w3, deploy(w3, dev_account(w3, 0), genesis_seats=3))
    for i, h in enumerate(s.hospitals):
        h.register(institution_id(HOSPITALS[i]), peer_id(i), *keys(i), COHORT)
    a, b, c, d = s.hospitals
    for h in (a, b, c):
        s.admin.admit(h.address)
    # more than 2/3 of the 3 Active members: all three
    with reverts(
        "HospitalRegistryNotEnoughEndorsements", candidate=d.address, endorsements=0, needed=3
    ):
        s.admin.admit(d.address)
    a.endorse(d.address)
    with reverts("HospitalRegistryAlreadyEndorsed", candidate=d.address, endorser=a.address):
        a.endorse(d.address)
    b.endorse(d.address)
    c.endorse(d.address)
    receipt = d.admit(d.address)
    assert events(a.registry, "Admitted", receipt) == [
        {"account": d.address, "admittedBy": d.address, "endorsements": 3, "genesis": False}
    ]

    rnd = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.declare_privacy_budget(BUDGET)
        h.commit_update(rnd, h32(f"m-{i}"), 10 * (i + 1), 0.5, 1)
    receipt = a.record_rejections(rnd, {d.address: "bad-seal"})
    assert events(a.round_ledger, "UpdateRejected", receipt) == [
        {"round": rnd, "account": d.address, "reporter": a.address, "reason": 3}
    ]
    accepted = sorted([a.address, b.address, c.address], key=lambda x: int(x, 16))
    for h in (a, b, c):
        h.attest(rnd, h32("agg"), accepted)
    a.finalize(rnd)
    receipt = d.attest(rnd, h32("mine"), [d.address])
    # accepted masks over the commit order a, b, c, d
    win = keccak(abi_encode(["bytes32", "uint256"], [h32("agg"), 0b0111]))
    mine = keccak(abi_encode(["bytes32", "uint256"], [h32("mine"), 0b1000]))
    assert events(a.round_ledger, "DissentRecorded", receipt) == [
        {"round": rnd, "account": d.address, "voteKey": mine, "winningKey": win}
    ]
    assert a.dissent_count(rnd) == 1
    assert max(g for h in s.hospitals for g in h.gas_used["commit_update"]) < 120_000
    assert max(g for h in s.hospitals for g in h.gas_used["attest"]) < 120_000

    a.suspend(d.address)
    b.suspend(d.address)
    receipt = c.suspend(d.address)  # more than 2/3 of the 4 Active members, d counted
    assert events(a.registry, "Suspended", receipt) == [{"account": d.address, "votes": 3}]
    with reverts("RoundLedgerNotActiveMember", account=d.address):
        d.open_round()
    report = collect(w3, s.deployment)
    assert report["ok"], [x for x in report["checks"] if not x["ok"]]
    r = report["rounds"][0]
    assert (r["excluded"], r["dissenters"]) == ([d.address], [d.address])
    assert [i["status"] for i in report["identities"]] == ["active"] * 3 + ["suspended"]
