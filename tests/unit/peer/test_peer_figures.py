"""Issue 14, section 3, on the peer's side: the verify stage's ``check`` refuses committed sample counts above the
committer's endorsed cohort (the contract refuses them too; this catches a ledger that did
not), and the privacy budget a peer declares on chain is the cap its accountant enforces.
Unit tests: a stand-in object carries only the attributes the method reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ledger import Commitment, Identity
from ledger.records import REJECTION_REASONS, epsilon_to_micros
from node.learning.privacy import DPConfig, PrivacyLedger
from node.peer.outbox import Outbox
from node.peer.pipeline import MODE_SEALED
from node.peer.verify import Verifier
from node.protection import Rejected

SENDER = "0x" + "ab" * 20


def _member(cohort: int) -> Identity:
    return Identity(
        address=SENDER,
        institution_id=b"\x01" * 32,
        peer_id="12D3KooWsender",
        seal_key=b"\x02" * 32,
        sign_key=b"\x03" * 32,
        status="active",
        joined_at=1,
        cohort=cohort,
    )


def test_check_refuses_samples_above_the_members_cohort() -> None:
    verifier = SimpleNamespace(
        intake=SimpleNamespace(blob=lambda round_, sender: None),
        core=SimpleNamespace(protection=SimpleNamespace(code=MODE_SEALED + 1, name="other")),
    )
    greedy = Commitment(SENDER, b"\x04" * 32, 2**64 - 1, 0.5, MODE_SEALED, 0)
    with pytest.raises(Rejected) as info:
        Verifier.check(verifier, 1, SENDER, greedy, {SENDER: _member(500)})
    assert (
        info.value.reason == "samples-above-cohort"
        and info.value.reason in REJECTION_REASONS.values()
    )
    assert f"claims {2**64 - 1} samples, above the cohort of 500" in str(info.value)
    # the whole cohort passes this check (and meets the next one: here, the protection mode)
    honest = Commitment(SENDER, b"\x04" * 32, 500, 0.5, MODE_SEALED, 0)
    with pytest.raises(Rejected) as info:
        Verifier.check(verifier, 1, SENDER, honest, {SENDER: _member(500)})
    assert info.value.reason == "bad-format"


def test_the_declared_budget_is_the_cap_the_accountant_enforces() -> None:
    config = DPConfig(target_epsilon=1.0, delta=1e-5, accountant="rdp", max_grad_norm=0.7, rounds=3)
    privacy = PrivacyLedger(config)
    budget = Outbox.privacy_budget(SimpleNamespace(privacy=privacy))
    assert (budget.epsilon, budget.delta, budget.accountant, budget.clip_norm) == (
        1.0 * 1.001,
        1e-5,
        "rdp",
        0.7,
    )
    assert budget.noise_multiplier == privacy.config.noise_multiplier > 0
    # the largest spend check_round lets through still fits the recorded budget after rounding
    assert epsilon_to_micros(privacy.cap()) <= budget.encode()[0] == 1_001_000

    with pytest.warns(UserWarning, match="differential privacy is OFF"):
        off = PrivacyLedger(DPConfig(enabled=False))
    budget = Outbox.privacy_budget(SimpleNamespace(privacy=off))
    assert (budget.epsilon, budget.accountant, budget.dp) == (0.0, "none", False)
    assert budget.encode()[:3] == (0, 0, 0)
