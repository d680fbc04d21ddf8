"""Issue 14, section 3: self-reported figures must not buy credits or hide privacy spend.

Each test replays an attack from the independent audit of a demo deployment (sample counts
of 2^64-1, an epsilon of 0 or one that goes down, a rejection of an update the reporter itself
accepted) on the embedded chain and on anvil, and checks the exact custom error; then the
credits on capped counts against the samples formula computed here. The audit's checks on a
history that holds such figures: tests/integration/test_audit_figures.py. Duplicate keys:
tests/integration/test_registry.py; distributor penalties:
tests/integration/test_incentive_distributor.py."""

from __future__ import annotations

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

from ledger import LedgerError, advance_time, institution_id
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
