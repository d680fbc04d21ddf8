"""RoundLedger on the embedded chain and on anvil, what a finalized round mints: credits in
proportion to samples (or equal), the dust left by integer division, and the slashing of
left-out committers. Reverts are checked by exact custom error and arguments, events by exact
arguments."""

from __future__ import annotations

from ledger_support import (
    LedgerSetup,
    commit_all,
    events,
    h32,
    register_all,
    setup_on,
)

from ledger import (
    deploy,
    dev_account,
)

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO = "0x0000000000000000000000000000000000000000"
CREDIT = 100 * 10**18
WINDOW = 3600


def test_credits_are_proportional_to_samples(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    commit_all(s, rnd, samples=(100, 200, 300, 7))
    accepted = [h.address for h in s.hospitals[:3]]  # the fourth update is rejected
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), accepted)
    s.hospitals[0].finalize(rnd)
    receipt = s.hospitals[0].last_receipt  # the settle transaction mints
    assert receipt is not None and s.admin.round_info(rnd).settled
    expected = {
        s.hospitals[0].address: CREDIT // 6,
        s.hospitals[1].address: CREDIT // 3,
        s.hospitals[2].address: CREDIT // 2,
    }
    mints = events(s.hospitals[0].credit, "Transfer", receipt)
    assert {m["to"]: m["value"] for m in mints} == expected and all(
        m["from"] == ZERO for m in mints
    )
    for account, amount in expected.items():
        assert s.admin.credit_balance(account) == amount
    assert s.admin.credit_balance(s.hospitals[3].address) == 0
    assert s.admin.credit_supply() == sum(expected.values())
    assert CREDIT - s.admin.credit_supply() < len(accepted)  # the rounding dust goes to nobody


def test_equal_samples_split_evenly_and_leave_dust(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    commit_all(s, rnd, samples=(5, 5, 5))
    accepted = [h.address for h in s.hospitals[:3]]
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), accepted)
    s.hospitals[0].finalize(rnd)
    assert [s.admin.credit_balance(a) for a in accepted] == [33333333333333333333] * 3
    assert s.admin.credit_supply() == CREDIT - 1


def _deploy_with(s: LedgerSetup, **kwargs: object) -> LedgerSetup:
    t = setup_on(s.w3, deploy(s.w3, dev_account(s.w3, 0), **kwargs))  # type: ignore[arg-type]
    register_all(t)
    return t


def test_equal_credit_scheme(ledger_deployed: LedgerSetup) -> None:
    s = _deploy_with(ledger_deployed, credit_scheme="equal")
    assert s.admin.ledger_config()["credit_scheme"] == "equal"
    rnd = s.hospitals[0].open_round()
    commit_all(s, rnd, samples=(1, 1000, 5))
    accepted = [h.address for h in s.hospitals[:3]]
    for h in s.hospitals[:3]:
        h.attest(rnd, h32("agg"), accepted)
    s.hospitals[0].finalize(rnd)
    assert [s.admin.credit_balance(a) for a in accepted] == [CREDIT // 3] * 3


def test_slashing_burns_credits_of_left_out_committers(ledger_deployed: LedgerSetup) -> None:
    s = _deploy_with(ledger_deployed, slash_per_rejection=10 * 10**18)
    a, b, c, d = s.hospitals
    assert s.admin.ledger_config() == {
        "commit_window": WINDOW,
        "attest_window": WINDOW,
        "credit_per_round": CREDIT,
        "quorum": (2, 3),
        "credit_scheme": "samples",
        "slash_per_rejection": 10 * 10**18,
    }
    rnd = a.open_round()
    commit_all(s, rnd, samples=(1, 1, 1, 1))
    for h in (a, b, c):
        h.attest(rnd, h32("r1"), [a.address, b.address, c.address, d.address])
    a.finalize(rnd)
    assert s.admin.credit_balance(d.address) == CREDIT // 4
    rnd = a.open_round()
    commit_all(s, rnd, samples=(1, 1, 1, 1))
    for h in (a, b, c):
        h.attest(rnd, h32("r2"), [a.address, b.address, c.address])  # d's update left out
    a.finalize(rnd)
    receipt = a.last_receipt  # the settle transaction slashes
    penalty = 10 * 10**18
    assert events(a.round_ledger, "ContributorSlashed", receipt) == [
        {"round": rnd, "account": d.address, "amount": penalty}
    ]
    assert events(a.credit, "Slashed", receipt) == [{"account": d.address, "amount": penalty}]
    assert s.admin.credit_balance(d.address) == CREDIT // 4 - penalty
    assert s.admin.credit_supply() == CREDIT // 4 * 4 + CREDIT // 3 * 3 - penalty


def test_slashing_takes_at_most_the_balance(ledger_deployed: LedgerSetup) -> None:
    s = _deploy_with(ledger_deployed, slash_per_rejection=10**30)
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    commit_all(s, rnd)
    for h in (a, b, c):
        h.attest(rnd, h32("agg"), [a.address])
    a.finalize(rnd)
    receipt = a.last_receipt
    assert [e["account"] for e in events(a.round_ledger, "ContributorSlashed", receipt)] == [
        b.address,
        c.address,
        d.address,
    ]
    assert all(e["amount"] == 0 for e in events(a.round_ledger, "ContributorSlashed", receipt))
