"""Issue 14, section 3: self-reported figures must not buy credits or hide privacy spend.

Each test replays an attack from the independent audit of a demo deployment (sample counts
of 2^64-1, an epsilon of 0 or one that goes down, a rejection of an update the reporter itself
accepted) on the embedded chain and on anvil, and checks the exact custom error; then the
credits on capped counts against the samples formula computed here, and the audit's checks
on a history that holds such figures (as a chain written before the contracts refused them
would). Duplicate keys: tests/integration/test_registry.py; distributor penalties:
tests/integration/test_incentive_distributor.py."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from ledger_support import (
    BUDGET,
    COHORT,
    HOSPITALS,
    LedgerSetup,
    events,
    h32,
    keys,
    peer_id,
    raw_send,
    reverts,
)

from ledger import LedgerError, advance_time, institution_id, is_embedded, save_state
from ledger import audit as audit_module
from ledger.audit import build_history, expected_credits
from ledger.cli import register_commands
from ledger.figures import check_figures, privacy_by_hospital
from ledger.index import EventIndex
from ledger.records import PrivacyBudget

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

UINT64_MAX = 2**64 - 1
NO_DP = PrivacyBudget(
    epsilon=0.0, delta=0.0, accountant="none", noise_multiplier=0.0, clip_norm=1.0
)


def _fail(s: LedgerSetup, rnd: int) -> None:
    """Let ``rnd``'s attestation window pass and fail it, so the next round can open."""
    advance_time(s.w3, 2 * 3600 + 1)
    s.hospitals[1].fail_round(rnd)


# =========================================================================== sample counts


def test_a_commit_above_the_declared_cohort_is_refused(ledger_consortium: LedgerSetup) -> None:
    """The audit's attack: samples = 2^64-1 won 100% of the round's credits."""
    s = ledger_consortium
    a, b = s.hospitals[:2]
    rnd = a.open_round()
    with reverts(
        "RoundLedgerSamplesAboveCohort",
        round=rnd,
        account=a.address,
        samples=UINT64_MAX,
        cohort=COHORT,
    ):
        a.commit_update(rnd, h32("greedy"), UINT64_MAX, 1.0, 0)
    with reverts(
        "RoundLedgerSamplesAboveCohort",
        round=rnd,
        account=a.address,
        samples=COHORT + 1,
        cohort=COHORT,
    ):
        a.commit_update(rnd, h32("greedy"), COHORT + 1, 1.0, 0)
    a.commit_update(rnd, h32("a"), COHORT, 1.0, 0)  # the whole cohort is fine
    assert a.commitment(rnd, a.address).samples == COHORT
    b.commit_update(rnd, h32("b"), 1, 1.0, 0)


def test_credits_follow_counts_capped_by_the_cohorts(ledger_consortium: LedgerSetup) -> None:
    """The greediest legal claim (the whole cohort) earns its share by the samples formula,
    credit * samples_i / sum(samples), computed here from the figures, not read back."""
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    claims = (COHORT, 100, 200, 300)
    for h, n in zip(s.hospitals, claims, strict=True):
        h.commit_update(rnd, h32(f"u-{n}"), n, 1.0, 0)
    everyone = [h.address for h in s.hospitals]
    for h in s.hospitals:
        h.attest(rnd, h32("agg"), everyone)
    s.hospitals[0].finalize(rnd)
    per_round = s.admin.ledger_config()["credit_per_round"]
    total = sum(claims)
    for h, n in zip(s.hospitals, claims, strict=True):
        assert h.credit_balance(h.address) == per_round * n // total
    assert (
        s.hospitals[0].credit_balance(s.hospitals[0].address) < per_round
    )  # not "100% of the credits"


def test_registration_records_the_cohort_the_admission_endorses(
    ledger_deployed: LedgerSetup,
) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    receipt = h.register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0), 512)
    assert events(h.registry, "Registered", receipt)[0]["cohort"] == 512
    s.admin.admit(h.address)  # genesis: the admin's admission is the endorsement
    assert h.identity(h.address).cohort == 512 == h.cohort_of(h.address)


# =========================================================================== privacy spend


def test_a_member_must_declare_its_budget_once_before_committing(
    ledger_deployed: LedgerSetup,
) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    h.register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0), COHORT)
    with reverts("RoundLedgerNotActiveMember", account=h.address):
        h.declare_privacy_budget(BUDGET)
    s.admin.admit(h.address)
    rnd = h.open_round()
    with reverts("RoundLedgerBudgetNotDeclared", account=h.address):
        h.commit_update(rnd, h32("u"), 10, 0.5, 0)
    assert h.privacy_budget(h.address) is None
    receipt = h.declare_privacy_budget(BUDGET)
    assert events(h.round_ledger, "PrivacyBudgetDeclared", receipt) == [
        {
            "account": h.address,
            "epsilonMicros": 10_000_000,
            "deltaAtto": 10**13,
            "noiseMicros": 1_100_000,
            "clipMicros": 1_000_000,
            "accountant": b"rdp".ljust(24, b"\x00"),
        }
    ]
    assert h.privacy_budget(h.address) == BUDGET
    with reverts("RoundLedgerBudgetAlreadyDeclared", account=h.address):
        h.declare_privacy_budget(PrivacyBudget(100.0, 1e-5, "rdp", 1.1, 1.0))  # no raising it later
    h.ensure_privacy_budget(BUDGET)  # the same budget again: nothing to do
    with pytest.raises(LedgerError, match="declared privacy budget .* which cannot change"):
        h.ensure_privacy_budget(PrivacyBudget(100.0, 1e-5, "rdp", 1.1, 1.0))
    h.commit_update(rnd, h32("u"), 10, 0.5, 0)
    assert h.epsilon_spent(h.address) == pytest.approx(0.5)


def test_invalid_budgets_are_refused(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    member = s.hospitals[0]
    member.register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0), COHORT)
    s.admin.admit(member.address)
    fn = member.round_ledger.functions.declarePrivacyBudget
    rdp = b"rdp".ljust(24, b"\x00")
    cases = [
        (1_000_000, 0, 1_000_000, 1_000_000, rdp),  # DP without delta
        (1_000_000, 10**18, 1_000_000, 1_000_000, rdp),  # delta = 1
        (1_000_000, 10**13, 0, 1_000_000, rdp),  # DP without noise
        (1_000_000, 10**13, 1_000_000, 0, rdp),  # DP without a clip norm
        (1_000_000, 10**13, 1_000_000, 1_000_000, b"\x00" * 24),  # no accountant
        (0, 10**13, 0, 0, b"none".ljust(24, b"\x00")),  # no DP, but a delta
    ]
    for budget in cases:
        with reverts(
            "RoundLedgerInvalidBudget",
            epsilonMicros=budget[0],
            deltaAtto=budget[1],
            noiseMicros=budget[2],
            clipMicros=budget[3],
            accountant=budget[4],
        ):
            raw_send(member, fn(budget))
    with pytest.raises(LedgerError, match="accountant must be 1-24 printable ASCII"):
        PrivacyBudget(1.0, 1e-5, "x" * 25, 1.0, 1.0).encode()


def test_epsilon_zero_or_decreasing_or_over_budget_is_refused(
    ledger_consortium: LedgerSetup,
) -> None:
    """The audit's attacks: commits with epsilon 0, and a cumulative epsilon going 0.42 -> 0.10."""
    s = ledger_consortium
    a = s.hospitals[0]
    r1 = a.open_round()
    with reverts("RoundLedgerZeroEpsilon", round=r1, account=a.address):
        a.commit_update(r1, h32("r1"), 10, 0.0, 0)
    with reverts(
        "RoundLedgerEpsilonOverBudget",
        round=r1,
        account=a.address,
        epsilonMicros=10_000_001,
        budgetMicros=10_000_000,
    ):
        a.commit_update(r1, h32("r1"), 10, 10.000001, 0)
    a.commit_update(r1, h32("r1"), 10, 0.42, 0)
    _fail(s, r1)
    r2 = a.open_round()
    with reverts(
        "RoundLedgerEpsilonDecreased",
        round=r2,
        account=a.address,
        epsilonMicros=100_000,
        previousMicros=420_000,
    ):
        a.commit_update(r2, h32("r2"), 10, 0.10, 0)
    with reverts("RoundLedgerZeroEpsilon", round=r2, account=a.address):
        a.commit_update(r2, h32("r2"), 10, 0.0, 0)
    a.commit_update(r2, h32("r2"), 10, 0.42, 0)  # no new spend (e.g. no steps) is allowed
    assert a.epsilon_spent(a.address) == pytest.approx(0.42)


def test_a_campaign_without_dp_commits_only_epsilon_zero(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    h = s.hospitals[0]
    h.register(institution_id(HOSPITALS[0]), peer_id(0), *keys(0), COHORT)
    s.admin.admit(h.address)
    h.declare_privacy_budget(NO_DP)
    assert h.privacy_budget(h.address) == NO_DP
    rnd = h.open_round()
    with reverts(
        "RoundLedgerEpsilonOverBudget",
        round=rnd,
        account=h.address,
        epsilonMicros=1,
        budgetMicros=0,
    ):
        h.commit_update(rnd, h32("u"), 10, 0.000001, 0)  # claims a privacy it did not declare
    h.commit_update(rnd, h32("u"), 10, 0.0, 0)


# =========================================================================== rejections


def test_a_member_cannot_reject_an_update_it_accepted(ledger_consortium: LedgerSetup) -> None:
    """The audit's attack: a member rejected an update in its own accepted set. Refused in
    either order: rejection after the attestation, attestation after the rejection."""
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(rnd, h32(f"u{i}"), 10, 1.0, 0)
    a.attest(rnd, h32("agg"), [a.address, b.address, c.address])
    with reverts(
        "RoundLedgerContradictoryRejection", round=rnd, reporter=a.address, account=b.address
    ):
        a.record_rejections(rnd, {d.address: "hash-mismatch", b.address: "robust-rule"})
    assert a.rejection_count(rnd, d.address) == 0  # the whole call reverted
    a.record_rejections(rnd, {d.address: "hash-mismatch"})  # d is outside a's accepted set: fine

    b.record_rejections(rnd, {c.address: "bad-seal"})
    with reverts(
        "RoundLedgerContradictoryRejection", round=rnd, reporter=b.address, account=c.address
    ):
        b.attest(rnd, h32("agg"), [a.address, b.address, c.address])
    b.attest(rnd, h32("agg2"), [a.address, b.address])
    assert [x["account"] for x in events(b.round_ledger, "AggregateAttested", b.last_receipt)] == [
        b.address
    ]


# =========================================================================== the audit


def _history_of(s: LedgerSetup) -> dict[str, Any]:
    """A finalized round 1 and an open round 2, rebuilt from the chain's logs like the audit does."""
    a, b, c, d = s.hospitals
    r1 = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(r1, h32(f"r1-{i}"), 100 * (i + 1), 0.42, 0)
    a.record_rejections(r1, {d.address: "hash-mismatch"})
    for h in (a, b, c):
        h.attest(r1, h32("agg"), [a.address, b.address, c.address])
    a.finalize(r1)
    r2 = b.open_round()
    for h in (a, b):
        h.commit_update(r2, h32(f"r2-{h.address}"), 50, 0.8, 0)
    history = build_history(EventIndex(s.w3, s.deployment).update().events)
    history["privacy"] = privacy_by_hospital(history)
    return history


def _failures(history: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    checks: list[dict[str, Any]] = []
    flags = check_figures(
        history,
        lambda name, ok, detail="": checks.append(
            {"check": name, "ok": bool(ok), "detail": detail}
        ),
    )
    return [c for c in checks if not c["ok"]], flags


def test_the_audit_shows_budgets_and_spend_and_passes_an_honest_history(
    ledger_consortium: LedgerSetup,
) -> None:
    s = ledger_consortium
    history = _history_of(s)
    a, b = s.hospitals[:2]
    assert history["privacy"][a.address] == {
        "budget": {**BUDGET.to_json(), "block": history["privacy"][a.address]["budget"]["block"]},
        "spend": [{"round": 1, "epsilon": 0.42}, {"round": 2, "epsilon": 0.8}],
    }
    failures, flags = _failures(history)
    assert failures == [] and flags == []


def test_the_audit_fails_on_figures_an_older_contract_accepted(
    ledger_consortium: LedgerSetup,
) -> None:
    """The history as a chain written before the contracts refused these figures would hold
    it: each breach fails a check whose line names it."""
    s = ledger_consortium
    a, b, c, d = s.hospitals
    honest = _history_of(s)
    forged = copy.deepcopy(honest)
    r1, r2 = forged["rounds"]
    r1["commits"][0]["samples"] = UINT64_MAX  # the 2^64-1 claim
    r2["commits"][1]["epsilon"] = 0.10  # b: 0.42 -> 0.10
    r1["rejections"].append(
        {"account": b.address, "reporter": c.address, "reason": 6, "reason_name": "robust-rule"}
    )
    forged["privacy"] = privacy_by_hospital(forged)
    failures, flags = _failures(forged)
    lines = {c["check"]: c["detail"] for c in failures}
    cohort = "round 1: every committed sample count is within its committer's declared cohort"
    own_set = "round 1: no member rejected an update in its own accepted set"
    spend = f"privacy spend of {b.address} never decreases and stays within its declared budget"
    assert lines == {
        cohort: f"{r1['commits'][0]['account']} claims {UINT64_MAX} samples, above its cohort {COHORT}",
        own_set: f"{c.address} rejected {b.address} (robust-rule) and accepted it",
        spend: "epsilon decreases in round 2 (0.42 -> 0.1)",
    }
    assert [f["account"] for f in flags] == [
        r1["commits"][0]["account"]
    ]  # also far above the median
    # credits recomputed on capped counts: the 2^64-1 claim weighs its cohort, not 2^64-1
    expected = expected_credits(
        {**r1, "accepted": [x["account"] for x in r1["commits"][:3]]},
        100,
        "samples",
        {i["account"]: i["cohort"] for i in forged["identities"]},
    )
    weights = [COHORT, 200, 300]
    assert list(expected.values()) == [100 * w // sum(weights) for w in weights]

    zero = copy.deepcopy(honest)
    zero["rounds"][0]["commits"][2]["epsilon"] = 0.0
    for budgetless in zero["identities"]:
        if budgetless["account"] == d.address:
            budgetless["privacy_budget"] = None
    zero["privacy"] = privacy_by_hospital(zero)
    details = sorted(c["detail"] for c in _failures(zero)[0])
    assert details == [
        "committed in round 1 without a declared privacy budget",
        "epsilon 0 in round 1 under a DP budget",
    ]


def test_medmesh_audit_exits_2_naming_the_breach(
    ledger_consortium: LedgerSetup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`medmesh audit`'s exit status and its FAIL line (text and --json), on a history doctored
    as an older contract would have let it be written."""
    s = ledger_consortium
    _history_of(s)
    real = audit_module.build_history

    def older_contract(events: list[dict[str, Any]]) -> dict[str, Any]:
        history = real(events)
        history["rounds"][1]["commits"][1]["epsilon"] = 0.10
        return history

    monkeypatch.setattr(audit_module, "build_history", older_contract)
    parser = argparse.ArgumentParser(prog="medmesh")
    register_commands(parser.add_subparsers())
    if is_embedded(s.w3):
        save_state(s.w3, tmp_path / "chain.json", s.deployment)
        source = ["--chain-state", str(tmp_path / "chain.json")]
    else:
        s.deployment.save(tmp_path / "deployment.json")
        source = [
            "--deployment",
            str(tmp_path / "deployment.json"),
            "--rpc",
            s.w3.provider.endpoint_uri,
            "--cache",
            "none",
        ]
    b = s.hospitals[1].address
    line = (
        f"FAIL privacy spend of {b} never decreases and stays within its declared budget "
        f"epsilon decreases in round 2 (0.42 -> 0.1)"
    )
    args = parser.parse_args(["audit", *source])
    assert args.func(args) == 2
    text = capsys.readouterr().out
    assert line in text.splitlines() or f"  {line}" in text.splitlines()
    assert "Privacy budgets and cumulative spend" in text
    args = parser.parse_args(["audit", *source, "--json"])
    assert args.func(args) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["privacy"][b]["spend"] == [
        {"round": 1, "epsilon": 0.42},
        {"round": 2, "epsilon": 0.1},
    ]
    assert report["privacy"][b]["budget"]["epsilon"] == BUDGET.epsilon
