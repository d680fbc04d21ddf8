"""The forgeries of issue 14, section 2, made to the evidence an auditor is handed, each made for
real and each failing the audit with exit status 2 and a line naming what it found:

(a) an edited value in the py-evm store of a saved chain-state file, head hash unchanged;
(b) a deployment file naming a rogue RoundLedger wired to a registry of 4 Sybil members,
    deployed on the same chain (and a RoundLedger copy with one patched immutable).

The honest chain passes the same audit (exit 0) in each, so the failures are the forgeries'.
Forged histories, (c) and (d), and the anchors that catch them:
tests/integration/test_audit_forged_history.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from audit_support import audit, honest_rounds
from ledger_support import COHORT, LedgerSetup, keys, peer_id, setup_on

from ledger import (
    Deployment,
    LedgerClient,
    LedgerError,
    collect,
    deploy,
    dev_account,
    institution_id,
    load_state,
    save_state,
)
from ledger.embedded import pack_store, unpack_store, web3_from_store
from ledger.integrity import verify_store
from ledger.views import parameters_hash, verify_model

# --------------------------------------------------------------------------- (a)


def test_a_an_edited_store_fails_the_audit(
    tmp_path: Path, ledger_consortium: LedgerSetup, capsys: Any
) -> None:
    s = ledger_consortium
    honest_rounds(s, 2)
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
    honest_rounds(s, 1)
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
        honest_rounds(s, 1)
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
