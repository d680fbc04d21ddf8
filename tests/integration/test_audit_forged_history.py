"""The forgeries of issue 14, section 2, that rewrite the history itself, each made for real
and each failing the audit with exit status 2 and a line naming what it found:

(c) a fresh anvil serving a fake history under the same chain id and the same addresses;
(d) a saved chain whose last round was rewritten, caught by a member's signed attestation.

The honest chain passes the same audit (exit 0) in each, so the failures are the forgeries';
bad anchor inputs are one-line errors. Forged evidence, (a) and (b):
tests/integration/test_audit_forgeries.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from audit_support import audit, honest_rounds, one_round
from ledger_support import COHORT, LedgerSetup, h32, register_all, setup_on

from ledger import (
    Anvil,
    Deployment,
    connect,
    deploy,
    dev_account,
    fork_embedded,
    save_state,
)
from ledger.anchors import read_record, write_record
from ledger.chain import read_state

# --------------------------------------------------------------------------- (c)


def _consortium_on(rpc: str) -> LedgerSetup:
    w3 = connect(rpc)
    s = setup_on(w3, deploy(w3, dev_account(w3, 0)))
    register_all(s)
    return s


def test_c_a_fresh_anvil_with_a_fake_history_fails_the_audit(tmp_path: Path, capsys: Any) -> None:
    # anvil's genesis is its settings and its start time: the forger copies the real one's
    genesis_time = ("--timestamp", str(int(time.time())))
    with Anvil(extra_args=genesis_time) as real_rpc, Anvil(extra_args=genesis_time) as fake_rpc:
        real = _consortium_on(real_rpc)
        one_round(real, h32("the consortium's model"))
        real.deployment.save(tmp_path / "deployment.json")
        member = str(tmp_path / "member.json")
        record = write_record(member, real.hospitals[1].attestation_records[1])
        fake = _consortium_on(fake_rpc)
        # the fake differs from its first commit on (blocks before it may be identical:
        # the same signed transactions in the same second make the same blocks)
        one_round(fake, h32("an inverted classifier"), updates="forged")
        assert fake.deployment.addresses == real.deployment.addresses
        assert fake.w3.eth.chain_id == real.w3.eth.chain_id
        assert fake.w3.eth.get_block(0)["hash"] == real.w3.eth.get_block(0)["hash"]

        dep = str(tmp_path / "deployment.json")
        code, out, _ = audit(
            capsys, "--deployment", dep, "--cache", "none", "--expect-head", member
        )
        assert code == 0, out
        assert f"read from {real_rpc}" in out
        # the fake node passes every internal check; the genesis anchor cannot tell either
        code, out, _ = audit(
            capsys, "--deployment", dep, "--rpc", fake_rpc, "--cache", "none", "--json"
        )
        report = json.loads(out)
        assert code == 0 and report["chain"]["rpc"] == fake_rpc
        # one member's signed attestation exposes it
        code, out, _ = audit(
            capsys,
            "--deployment",
            dep,
            "--rpc",
            fake_rpc,
            "--cache",
            "none",
            "--expect-head",
            member,
        )
        assert code == 2
        assert f"read from {fake_rpc}" in out
        who = f"{record.sender}'s signed attestation of round 1"
        assert f"FAIL {who}: the head it saw is on this chain" in out and "history rewritten" in out
        assert f"FAIL {who} is on this chain" in out
        # as does a head the auditor knows
        number, head = record.seen.number, "0x" + record.seen.hash.hex()
        code, out, _ = audit(
            capsys,
            "--deployment",
            dep,
            "--rpc",
            fake_rpc,
            "--cache",
            "none",
            "--expect-head",
            f"{number}:{head}",
        )
        assert code == 2 and f"FAIL expected head: block {number} is on this chain" in out


# --------------------------------------------------------------------------- (d)


def test_d_a_rewritten_last_round_fails_the_audit(
    tmp_path: Path, ledger_consortium: LedgerSetup, capsys: Any
) -> None:
    s = ledger_consortium
    honest_rounds(s, 1)
    fork = setup_on(fork_embedded(s.w3), s.deployment)  # the history both share
    one_round(s, h32("the consortium's model"))
    member = str(tmp_path / "member.json")
    write_record(member, s.hospitals[1].attestation_records[2])
    # the forger rewrites round 2 on the copy: other updates, another aggregate; re-mined,
    # so the store verifies and the head hash is the new chain's own
    a, b, c, _ = fork.hospitals
    rnd = a.open_round()
    for i, h in enumerate((a, b, c)):
        h.commit_update(rnd, h32(f"forged-{i}"), COHORT, 0.5 * rnd, 0)
    for h in (a, b, c):
        h.attest(rnd, h32("an inverted classifier"), [a.address, b.address, c.address])
    c.finalize(rnd)
    forged = tmp_path / "forged.json"
    save_state(fork.w3, forged, s.deployment)
    assert read_state(forged).verification.ok
    genesis = "0x" + bytes(s.w3.eth.get_block(0)["hash"]).hex()

    code, out, _ = audit(capsys, "--chain-state", str(forged), "--expect-genesis", genesis)
    assert code == 0, out  # consistent, same genesis: only an anchor past the fork tells
    code, out, _ = audit(capsys, "--chain-state", str(forged), "--expect-head", member)
    assert code == 2
    record = read_record(member)
    assert (
        f"FAIL {record.sender}'s signed attestation of round 2: the head it saw is on this chain"
        in out
    )
    honest = tmp_path / "honest.json"
    save_state(s.w3, honest, s.deployment)
    assert (
        audit(
            capsys,
            "--chain-state",
            str(honest),
            "--expect-head",
            member,
            "--expect-genesis",
            genesis,
        )[0]
        == 0
    )
    code, out, _ = audit(capsys, "--chain-state", str(honest), "--expect-genesis", "0x" + "11" * 32)
    assert code == 2 and "FAIL the chain's genesis is the expected genesis" in out


def test_d_on_anvil(tmp_path: Path, _ledger_anvil: Any, capsys: Any) -> None:
    chain = _ledger_anvil
    with chain.isolated() as w3:
        s = setup_on(w3, chain.consortium)
        honest_rounds(s, 1)
        before = w3.provider.make_request("evm_snapshot", [])["result"]
        one_round(s, h32("the consortium's model"))
        member = str(tmp_path / "member.json")
        record = write_record(member, s.hospitals[1].attestation_records[2])
        s.deployment.save(tmp_path / "deployment.json")
        dep = str(tmp_path / "deployment.json")
        assert (
            audit(capsys, "--deployment", dep, "--cache", "none", "--expect-head", member)[0] == 0
        )
        # the node's operator rewinds and rewrites round 2
        assert w3.provider.make_request("evm_revert", [before])["result"] is True
        one_round(s, h32("an inverted classifier"), updates="forged")
        assert (
            audit(capsys, "--deployment", dep, "--cache", "none")[0] == 0
        )  # consistent on its own
        code, out, _ = audit(
            capsys, "--deployment", dep, "--cache", "none", "--expect-head", member
        )
        assert code == 2
        assert (
            f"FAIL {record.sender}'s signed attestation of round 2: the head it saw is on this chain"
            in out
        )
        assert f"FAIL {record.sender}'s signed attestation of round 2 is on this chain" in out


def test_anchor_inputs_are_checked(
    tmp_path: Path, ledger_consortium: LedgerSetup, capsys: Any
) -> None:
    """Bad anchors are one-line errors (exit 1); a record whose signed bytes were edited no
    longer anchors anything it claims (its signer and its transaction change)."""
    s = ledger_consortium
    honest_rounds(s, 1)
    state = tmp_path / "chain.json"
    save_state(s.w3, state, s.deployment)
    for bad, message in (
        ("garbage", "--expect-head takes NUMBER:HASH or an attestation record file"),
        ("5:0x12", "--expect-head must be a 32-byte hex hash"),
    ):
        code, _, err = audit(capsys, "--chain-state", str(state), "--expect-head", bad)
        assert code == 1 and message in err and err.count("\n") == 1
    other_genesis = Deployment(**{**s.deployment.to_dict(), "genesis": "0x" + "22" * 32})
    save_state(s.w3, tmp_path / "other-genesis.json", other_genesis)
    code, out, _ = audit(capsys, "--chain-state", str(tmp_path / "other-genesis.json"))
    assert (
        code == 2
        and "FAIL the chain's genesis is the deployment file's genesis expected 0x2222" in out
    )
    code, _, err = audit(capsys, "--chain-state", str(state), "--expect-genesis", "0x1234")
    assert code == 1 and "--expect-genesis must be a 32-byte hex hash" in err
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    code, _, err = audit(
        capsys, "--chain-state", str(state), "--expect-head", str(tmp_path / "other.json")
    )
    assert code == 1 and "is not a medmesh attestation record" in err

    raw = s.hospitals[0].attestation_records[1]
    record = write_record(tmp_path / "member.json", raw)
    assert record.sender == s.hospitals[0].address and record.round == 1
    assert record.round_ledger == s.deployment.addresses["RoundLedger"]
    assert (
        audit(capsys, "--chain-state", str(state), "--expect-head", str(tmp_path / "member.json"))[
            0
        ]
        == 0
    )
    # move the claimed head one block back inside the signed bytes: the signature no longer
    # belongs to the member, and the edited transaction is on no chain
    doc = json.loads((tmp_path / "member.json").read_text())
    number = record.seen.number.to_bytes(32, "big")
    edited = raw.replace(number, (record.seen.number - 1).to_bytes(32, "big"))
    assert edited != raw
    doc["raw_tx"] = "0x" + edited.hex()
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    forged = read_record(tmp_path / "edited.json")
    assert forged.sender != record.sender
    code, out, _ = audit(
        capsys, "--chain-state", str(state), "--expect-head", str(tmp_path / "edited.json")
    )
    assert (
        code == 2
        and f"FAIL {forged.sender}'s signed attestation of round 1 is on this chain" in out
    )
