"""The four forgeries of issue 14, section 2, each made for real and each failing the audit
with exit status 2 and a line naming what it found:

(a) an edited value in the py-evm store of a saved chain-state file, head hash unchanged;
(b) a deployment file naming a rogue RoundLedger wired to a registry of 4 Sybil members,
    deployed on the same chain;
(c) a fresh anvil serving a fake history under the same chain id and the same addresses;
(d) a saved chain whose last round was rewritten.

The honest chain passes the same audit (exit 0) in each, so the failures are the forgeries'.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ledger_support import COHORT, LedgerSetup, h32, keys, peer_id, register_all, setup_on

from ledger import (
    Anvil,
    Deployment,
    LedgerClient,
    LedgerError,
    collect,
    connect,
    deploy,
    dev_account,
    fork_embedded,
    institution_id,
    load_state,
    save_state,
)
from ledger.anchors import read_record, write_record
from ledger.chain import read_state
from ledger.cli import register_commands
from ledger.embedded import pack_store, unpack_store, web3_from_store
from ledger.integrity import verify_store
from ledger.views import parameters_hash, verify_model


def audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``medmesh audit ARGV`` in this process: (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="medmesh")
    register_commands(parser.add_subparsers())
    args = parser.parse_args(["audit", *argv])
    capsys.readouterr()
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def _round(s: LedgerSetup, aggregate: bytes, updates: str = "update") -> int:
    """One round: every hospital commits an update labelled ``updates``, the first three
    attest ``aggregate`` over every committer, the third finalizes."""
    a = s.hospitals[0]
    rnd = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(rnd, h32(f"{updates}-{rnd}-{i}"), 100 + i, 0.5 * rnd, 0)
    accepted = [h.address for h in s.hospitals]
    voters = s.hospitals[:3]
    for h in voters:
        h.attest(rnd, aggregate, accepted)
    voters[-1].finalize(rnd)
    return rnd


def _honest_rounds(s: LedgerSetup, n: int) -> None:
    for i in range(n):
        _round(s, h32(f"aggregate-{i}"))


# --------------------------------------------------------------------------- (a)


def test_a_an_edited_store_fails_the_audit(
    tmp_path: Path, ledger_consortium: LedgerSetup, capsys: Any
) -> None:
    s = ledger_consortium
    _honest_rounds(s, 2)
    last = s.hospitals[0].round_info(2)
    state = tmp_path / "chain.json"
    save_state(s.w3, state, s.deployment)
    code, out, _ = audit(capsys, "--chain-state", str(state), "--json")
    assert code == 0, out
    passed = {c["check"].split(":")[0] for c in json.loads(out)["checks"] if c["ok"]}
    assert "chain-state store verified" in passed
    assert {
        "round 1",
        "round 2",
    } <= passed  # incl. "every attested chain head is a block of this chain"
    # the attack: replace the last round's aggregate hash wherever the store holds it (its
    # storage slot, its event logs), leaving the head hash as it was
    inverted = -np.linspace(-1.0, 1.0, 31, dtype=np.float32)  # an "inverted classifier"
    np.save(tmp_path / "model.npy", inverted)
    doc = json.loads(state.read_text())
    store = unpack_store(doc["store"]["data"])
    real, fake = last.aggregate_hash, parameters_hash(inverted)
    assert real is not None
    edited = {k: v.replace(real, fake) for k, v in store.items() if real in v}
    assert edited, "the aggregate hash is in the store"
    store.update(edited)
    doc["store"]["data"] = pack_store(store)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    assert doc["head"]["hash"] == json.loads(state.read_text())["head"]["hash"]

    # read without verification (as the audit used to), the edit takes: round 2 "made" the model
    unchecked = web3_from_store(
        unpack_store(doc["store"]["data"]), bytes.fromhex(doc["head"]["hash"][2:])
    )
    assert verify_model(collect(unchecked, s.deployment), tmp_path / "model.npy")["round"] == 2

    code, out, _ = audit(capsys, "--chain-state", str(forged))
    assert code == 2
    assert "does not hash to its key: its value was edited" in out
    code, out, err = audit(
        capsys, "verify", str(tmp_path / "model.npy"), "--chain-state", str(forged)
    )
    assert code == 2 and "failed verification" in err and "does not hash to its key" in err
    assert "produced by" not in out
    with pytest.raises(LedgerError, match="failed verification: store entry 0x"):
        load_state(forged)


def test_a_store_checks_name_each_kind_of_edit(ledger_consortium: LedgerSetup) -> None:
    from ledger.embedded import export_store

    store, head = export_store(ledger_consortium.w3)
    assert verify_store(store, head).ok
    node = next(k for k in sorted(store) if len(k) == 32 and k != head)
    dropped = {k: v for k, v in store.items() if k != node}
    assert any("is missing" in p for p in verify_store(dropped, head).problems)
    renumbered = {**store, b"block-number-to-hash:1": store[b"block-number-to-hash:2"]}
    assert verify_store(renumbered, head).problems == [
        "block 1's canonical hash in the store disagrees with the verified headers"
    ]
    extra = {**store, b"injected": b"x"}
    assert any("of no kind py-evm writes" in p for p in verify_store(extra, head).problems)


# --------------------------------------------------------------------------- (b)


def _rogue_over_sybils(w3: Any) -> Deployment:
    """The attack's contracts, deployed on the same chain by an outsider: the real compiled
    code, a RoundLedger wired to a registry whose 4 members the outsider admitted."""
    attacker = dev_account(w3, 5)
    rogue = deploy(w3, attacker)
    boss = LedgerClient(w3, rogue, attacker)
    for i in range(4):
        sybil = LedgerClient(w3, rogue, dev_account(w3, 6 + i))
        seal, sign = keys(10 + i)
        sybil.register(institution_id(f"Sybil {i}"), peer_id(10 + i), seal, sign, COHORT)
        boss.admit(sybil.address)
    assert len(boss.identities()) == 4
    return rogue


def _forged_files(honest: Deployment, rogue: Deployment) -> dict[str, Deployment]:
    swaps = {
        "rogue ledger and registry": ("RoundLedger", "HospitalRegistry"),
        "rogue ledger only": ("RoundLedger",),
    }
    files = {}
    for name, swapped in swaps.items():
        addresses = {**honest.addresses, **{k: rogue.addresses[k] for k in swapped}}
        files[name] = Deployment(**{**honest.to_dict(), "addresses": addresses})
    return files


def _assert_wiring_failures(code: int, out: str, name: str) -> None:
    assert code == 2, name
    assert "FAIL ContributionCredit.minter() is the deployment's RoundLedger" in out, name
    assert "FAIL RoundLedger.credit() is the deployment's ContributionCredit" in out, name
    assert ("FAIL RoundLedger.registry() is the deployment's HospitalRegistry" in out) == (
        name == "rogue ledger only"
    )
    assert "FAIL code of RoundLedger" not in out  # the rogue runs the real compiled code


def test_b_a_rogue_ledger_over_sybils_fails_the_audit(
    tmp_path: Path, ledger_consortium: LedgerSetup, capsys: Any
) -> None:
    s = ledger_consortium
    _honest_rounds(s, 1)
    rogue = _rogue_over_sybils(s.w3)
    honest = tmp_path / "honest.json"
    save_state(s.w3, honest, s.deployment)
    assert audit(capsys, "--chain-state", str(honest))[0] == 0
    for name, forged in _forged_files(s.deployment, rogue).items():
        path = tmp_path / "forged.json"
        save_state(s.w3, path, forged)
        _assert_wiring_failures(*audit(capsys, "--chain-state", str(path))[:2], name)


def test_b_on_anvil(tmp_path: Path, _ledger_anvil: Any, capsys: Any) -> None:
    chain = _ledger_anvil
    with chain.isolated() as w3:
        s = setup_on(w3, chain.consortium)
        _honest_rounds(s, 1)
        rogue = _rogue_over_sybils(w3)
        s.deployment.save(tmp_path / "honest.json")
        assert (
            audit(capsys, "--deployment", str(tmp_path / "honest.json"), "--cache", "none")[0] == 0
        )
        for name, forged in _forged_files(s.deployment, rogue).items():
            forged.save(tmp_path / "forged.json")
            code, out, _ = audit(
                capsys, "--deployment", str(tmp_path / "forged.json"), "--cache", "none"
            )
            _assert_wiring_failures(code, out, name)


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
        _round(real, h32("the consortium's model"))
        real.deployment.save(tmp_path / "deployment.json")
        member = str(tmp_path / "member.json")
        record = write_record(member, real.hospitals[1].attestation_records[1])
        fake = _consortium_on(fake_rpc)
        # the fake differs from its first commit on (blocks before it may be identical:
        # the same signed transactions in the same second make the same blocks)
        _round(fake, h32("an inverted classifier"), updates="forged")
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
    _honest_rounds(s, 1)
    fork = setup_on(fork_embedded(s.w3), s.deployment)  # the history both share
    _round(s, h32("the consortium's model"))
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
        _honest_rounds(s, 1)
        before = w3.provider.make_request("evm_snapshot", [])["result"]
        _round(s, h32("the consortium's model"))
        member = str(tmp_path / "member.json")
        record = write_record(member, s.hospitals[1].attestation_records[2])
        s.deployment.save(tmp_path / "deployment.json")
        dep = str(tmp_path / "deployment.json")
        assert (
            audit(capsys, "--deployment", dep, "--cache", "none", "--expect-head", member)[0] == 0
        )
        # the node's operator rewinds and rewrites round 2
        assert w3.provider.make_request("evm_revert", [before])["result"] is True
        _round(s, h32("an inverted classifier"), updates="forged")
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
    _honest_rounds(s, 1)
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


def _deploy_raw_runtime(w3: Any, runtime: bytes) -> str:
    """Deploy ``runtime`` as is: init code that copies it to memory and returns it."""
    from ledger.tx import send

    init = bytes.fromhex("61") + len(runtime).to_bytes(2, "big") + bytes.fromhex("80600a5f395ff3")
    receipt = send(
        w3, dev_account(w3, 5), {"data": "0x" + (init + runtime).hex()}, action="deploy raw"
    )
    return str(receipt["contractAddress"])


def test_b_a_patched_immutable_is_caught(ledger_deployed: LedgerSetup) -> None:
    """The mask hides every immutable; a copy of the RoundLedger whose registry address is
    swapped at one use only (the getter still answers the real registry) must still fail."""
    from ledger import compile_contracts
    from ledger.wiring import code_matches

    s = ledger_deployed
    art = compile_contracts()["RoundLedger"]
    real = bytes(s.w3.eth.get_code(s.deployment.addresses["RoundLedger"]))
    registry_word = bytes(12) + bytes.fromhex(s.deployment.addresses["HospitalRegistry"][2:])
    ((ident, spans),) = [
        (i, sp)
        for i, sp in art["immutableReferences"].items()
        if real[sp[0]["start"] : sp[0]["start"] + 32] == registry_word
    ]
    assert len(spans) > 1, "the registry is used in several places"
    patched = bytearray(real)
    patched[spans[-1]["start"] : spans[-1]["start"] + 32] = bytes(12) + b"\x66" * 20
    copy = _deploy_raw_runtime(s.w3, real)
    forged = _deploy_raw_runtime(s.w3, bytes(patched))
    assert code_matches(s.w3, copy, art) == (True, "")
    assert code_matches(s.w3, forged, art) == (
        False,
        f" (immutable #{ident} holds different values in different places: patched code)",
    )
