"""IncentiveDistributor on the embedded chain and on anvil, laid out like the contract: set-up,
award (mints, penalties, events), then every rule an award must pass. Reverts are checked by
exact custom error and arguments, events by exact arguments."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from ledger_support import LedgerSetup, events, h32, reverts

from ledger import (
    DistributorClient,
    LedgerClient,
    LedgerError,
    compile_contracts,
    deploy_distributor,
    scheme_id,
)
from ledger.awards import award_hash
from ledger.tx import send

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO = "0x0000000000000000000000000000000000000000"
BUDGET = 1000
MAX_PENALTY = 200  # the distributors here burn at most this from one member per round
NONE, OPEN = 0, 1  # RoundLedger.RoundStatus
SHAPLEY = scheme_id("shapley-gtg")


def _distributor(
    s: LedgerSetup, budget: int = BUDGET, max_penalty: int = MAX_PENALTY
) -> tuple[DistributorClient, DistributorClient]:
    """(admin's client, an outsider's client) of a fresh distributor over ``s``'s consortium."""
    addresses = deploy_distributor(
        s.w3,
        s.admin.account,
        s.deployment,
        budget_per_round=budget,
        max_penalty_per_round=max_penalty,
    )
    return DistributorClient(s.w3, addresses, s.admin.account), DistributorClient(
        s.w3, addresses, s.outsider.account
    )


def _sorted(clients: list[LedgerClient]) -> list[LedgerClient]:
    return sorted(clients, key=lambda h: int(h.address, 16))


def _finalized_round(s: LedgerSetup, accepted: list[LedgerClient]) -> int:
    """A round every hospital commits to, finalized on ``accepted`` by all four votes."""
    rnd = s.hospitals[0].open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(rnd, h32(f"update-{rnd}-{i}"), 100 + i, 0.5, 0)
    for h in s.hospitals:
        h.attest(rnd, h32(f"aggregate-{rnd}"), [a.address for a in accepted])
    s.hospitals[0].finalize(rnd)
    return rnd


# =========================================================================== set-up


def test_distributor_views_and_minter(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    admin, _ = _distributor(s)
    f = admin.distributor.functions
    assert (f.registry().call(), f.roundLedger().call(), f.credit().call()) == (
        s.deployment.addresses["HospitalRegistry"],
        s.deployment.addresses["RoundLedger"],
        admin.credit.address,
    )
    assert admin.budget_per_round() == BUDGET and f.admin().call() == s.admin.address
    assert admin.max_penalty_per_round() == MAX_PENALTY
    assert admin.credit.functions.minter().call() == admin.distributor.address
    assert (
        admin.supply() == 0
        and admin.awarded_in_round(1) == 0
        and not admin.awarded(1, "shapley-gtg")
    )


def test_constructor_rejects_a_zero_budget_or_address(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    art = compile_contracts()["IncentiveDistributor"]
    factory = s.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    registry, ledger = (
        s.deployment.addresses["HospitalRegistry"],
        s.deployment.addresses["RoundLedger"],
    )
    credit = s.deployment.addresses["ContributionCredit"]
    for args, budget in (
        ((registry, ledger, credit, 0, 0), 0),
        ((ZERO, ledger, credit, 5, 0), 5),
        ((registry, ledger, ZERO, 5, 0), 5),
    ):
        with reverts("IncentiveDistributorInvalidSetup", budgetPerRound=budget):
            send(
                s.w3,
                s.admin.account,
                {"data": factory.constructor(s.admin.address, *args).data_in_transaction},
                decoder=s.admin._decoder,
            )
    with reverts("IncentiveDistributorInvalidPenaltyCap", maxPenaltyPerRound=6, budgetPerRound=5):
        send(
            s.w3,
            s.admin.account,
            {
                "data": factory.constructor(
                    s.admin.address, registry, ledger, credit, 5, 6
                ).data_in_transaction
            },
            decoder=s.admin._decoder,
        )
    with pytest.raises(LedgerError, match="budget_per_round must be > 0"):
        deploy_distributor(s.w3, s.admin.account, s.deployment, budget_per_round=0)
    with pytest.raises(LedgerError, match="max_penalty_per_round must be in 0..budget_per_round"):
        deploy_distributor(
            s.w3, s.admin.account, s.deployment, budget_per_round=5, max_penalty_per_round=6
        )


def test_scheme_ids_are_padded_ascii() -> None:
    assert scheme_id("equal") == b"equal" + b"\x00" * 27
    for bad in ("", "x" * 33, "caf\u00e9", "tab\there"):
        with pytest.raises(LedgerError, match="1-32 printable ASCII"):
            scheme_id(bad)


# =========================================================================== award


def test_award_mints_grants_and_burns_penalties(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    admin, _ = _distributor(s)
    a, b, c, d = _sorted(s.hospitals)
    first = _finalized_round(s, [a, b, c, d])
    receipt = admin.award(first, "shapley-gtg", {d.address: 300, a.address: 100, b.address: 0})
    assert receipt.minted == {a.address: 100, d.address: 300} and receipt.burned == {}
    log = admin.last_receipt
    assert events(admin.distributor, "CreditsAwarded", log) == [
        {
            "round": first,
            "scheme": SHAPLEY,
            "awarder": s.admin.address,
            "total": 400,
            "recipients": 2,
        }
    ]
    assert events(admin.distributor, "CreditAwarded", log) == [
        {"round": first, "scheme": SHAPLEY, "account": a.address, "amount": 100},
        {"round": first, "scheme": SHAPLEY, "account": d.address, "amount": 300},
    ]
    assert events(admin.credit, "Transfer", log) == [
        {"from": ZERO, "to": a.address, "value": 100},
        {"from": ZERO, "to": d.address, "value": 300},
    ]
    # a second scheme shares the round's budget: 600 left
    with reverts("IncentiveDistributorBudgetExceeded", round=first, requested=601, remaining=600):
        admin.award(first, "equal", {a.address: 601})
    admin.award(first, "equal", {a.address: 600})
    assert admin.awarded_in_round(first) == BUDGET and admin.awarded(first, "equal")

    # round 2 leaves d out: it is penalized (balance 300, penalty 120), b and c are paid
    second = _finalized_round(s, [a, b, c])
    receipt = admin.award(second, "shapley-gtg", {b.address: 7, c.address: 8}, {d.address: 120})
    assert receipt.minted == {b.address: 7, c.address: 8} and receipt.burned == {d.address: 120}
    log = admin.last_receipt
    assert events(admin.distributor, "ContributorPenalized", log) == [
        {"round": second, "scheme": SHAPLEY, "account": d.address, "penalty": 120, "burned": 120}
    ]
    assert [admin.balance(h.address) for h in (a, b, c, d)] == [700, 7, 8, 180]
    assert admin.supply() == 895
    # a fresh scheme shares the member's penalty cap for the round: 80 of 200 left
    with reverts(
        "IncentiveDistributorPenaltyCapExceeded",
        round=second,
        account=d.address,
        requested=10**6,
        remaining=MAX_PENALTY - 120,
    ):
        admin.award(second, "reputation", {}, {d.address: 10**6})
    receipt = admin.award(second, "reputation", {}, {d.address: 80})
    assert receipt.burned == {d.address: 80} and admin.balance(d.address) == 100
    assert admin.penalized_in_round(second, d.address) == MAX_PENALTY


def test_penalties_under_new_scheme_names_stay_within_the_cap(
    ledger_consortium: LedgerSetup,
) -> None:
    """Issue 14: penalty-only awards repeated under new scheme names burned a left-out
    member's credits from another round, 30 -> 0. All penalties of a round, whatever the
    scheme, now burn at most the cap from one member; a balance below the penalty still
    charges the full penalty against the cap, and a cap of 0 means no penalties."""
    s = ledger_consortium
    admin, _ = _distributor(s, max_penalty=10)
    a, b, c, d = _sorted(s.hospitals)
    first = _finalized_round(s, [a, b, c, d])
    admin.award(first, "equal", {a.address: 30, b.address: 30, c.address: 30, d.address: 30})
    second = _finalized_round(s, [a, b, c])  # d is left out
    assert admin.award(second, "reputation", {}, {d.address: 10}).burned == {d.address: 10}
    for scheme in ("reputation-2", "reputation-3", "loo"):
        with reverts(
            "IncentiveDistributorPenaltyCapExceeded",
            round=second,
            account=d.address,
            requested=10,
            remaining=0,
        ):
            admin.award(second, scheme, {}, {d.address: 10})
    assert admin.balance(d.address) == 20 and not admin.awarded(second, "reputation-2")
    # another distributor without penalties refuses every penalty
    plain, _ = _distributor(s, max_penalty=0)
    with reverts(
        "IncentiveDistributorPenaltyCapExceeded",
        round=second,
        account=d.address,
        requested=1,
        remaining=0,
    ):
        plain.award(second, "reputation", {}, {d.address: 1})


def test_award_rules(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    admin, outsider = _distributor(s)
    a, b, c, d = _sorted(s.hospitals)
    with reverts("IncentiveDistributorRoundNotFinalized", round=1, status=NONE):
        admin.award(1, "equal", {a.address: 1})
    rnd = _finalized_round(s, [a, b, c])
    with reverts("ConsortiumAdminUnauthorizedAccount", account=s.outsider.address):
        outsider.award(rnd, "equal", {a.address: 1})
    with reverts("IncentiveDistributorInvalidScheme"):
        _raw(admin, admin.distributor.functions.award(rnd, b"\x00" * 32, [(a.address, 1)], []))
    with reverts("IncentiveDistributorEmptyAward", round=rnd, scheme=scheme_id("equal")):
        admin.award(rnd, "equal", {a.address: 0})
    with reverts("IncentiveDistributorNotAccepted", round=rnd, account=d.address):
        admin.award(rnd, "equal", {a.address: 1, d.address: 1})
    with reverts("IncentiveDistributorNotLeftOut", round=rnd, account=c.address):
        admin.award(rnd, "equal", {a.address: 1}, {c.address: 1})
    with reverts("IncentiveDistributorNotLeftOut", round=rnd, account=s.outsider.address):
        admin.award(rnd, "equal", {a.address: 1}, {s.outsider.address: 1})
    award = admin.distributor.functions.award
    unsorted, repeated = [(b.address, 1), (a.address, 1)], [(a.address, 1), (a.address, 1)]
    for entries in (unsorted, repeated):
        with reverts("IncentiveDistributorAccountsNotSorted", position=1):
            _raw(admin, award(rnd, scheme_id("equal"), entries, []))
    with reverts("IncentiveDistributorZeroAmount", account=a.address):
        _raw(admin, award(rnd, scheme_id("equal"), [(a.address, 0)], []))
    admin.award(rnd, "equal", {a.address: 1})
    with reverts("IncentiveDistributorAlreadyAwarded", round=rnd, scheme=scheme_id("equal")):
        admin.award(rnd, "equal", {b.address: 1})

    # an open round is not paid; a member suspended since its round is not paid either
    nxt = s.hospitals[0].open_round()
    with reverts("IncentiveDistributorRoundNotFinalized", round=nxt, status=OPEN):
        admin.award(nxt, "equal", {a.address: 1})
    for voter in (b, c, d):  # more than 2/3 of the 4 members, the target counted
        voter.suspend(a.address)
    with reverts("IncentiveDistributorNotActiveMember", account=a.address):
        admin.award(rnd, "shapley-gtg", {a.address: 1})


def _raw(client: DistributorClient, fn: object) -> object:
    return send(client.w3, client.account, fn, decoder=client._decoder, action="award")


# =========================================================================== member quorum


def test_award_hash_is_abi_encoded_by_hand(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    admin, _ = _distributor(s)
    a, _, _, d = _sorted(s.hospitals)
    # by hand: round, scheme, then each dynamic array's offset, length and (account, amount) words
    word = lambda v: int(v).to_bytes(32, "big")  # noqa: E731
    addr = lambda x: bytes(12) + bytes.fromhex(x[2:])  # noqa: E731
    body = word(7) + SHAPLEY + word(4 * 32) + word(4 * 32 + 32 + 2 * 64)
    body += word(2) + addr(a.address) + word(5) + addr(d.address) + word(3)
    body += word(1) + addr(d.address) + word(2)
    expected = keccak(body)
    assert award_hash(7, "shapley-gtg", {d.address: 3, a.address: 5}, {d.address: 2}) == expected
    f = admin.distributor.functions
    assert (
        f.awardHash(7, SHAPLEY, [(a.address, 5), (d.address, 3)], [(d.address, 2)]).call()
        == expected
    )


def test_a_member_quorum_awards_what_it_endorsed(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    addresses = deploy_distributor(
        s.w3,
        s.admin.account,
        s.deployment,
        budget_per_round=BUDGET,
        max_penalty_per_round=MAX_PENALTY,
    )
    a, b, c, d = (DistributorClient(s.w3, addresses, h.account) for h in _sorted(s.hospitals))
    stranger = DistributorClient(s.w3, addresses, s.outsider.account)
    A, B, C, D = (x.account.address for x in (a, b, c, d))
    rnd = _finalized_round(s, _sorted(s.hospitals)[:3])
    grants, penalties = {A: 5, B: 3}, {D: 2}
    digest = award_hash(rnd, "shapley-gtg", grants, penalties)
    a.endorse(rnd, "shapley-gtg", grants, penalties)
    assert events(a.distributor, "AwardEndorsed", a.last_receipt) == [
        {"round": rnd, "scheme": SHAPLEY, "member": A, "awardHash": digest, "endorsements": 1}
    ]
    with reverts("IncentiveDistributorAlreadyEndorsed", round=rnd, scheme=SHAPLEY, member=A):
        a.endorse(rnd, "shapley-gtg", {A: 6})
    with reverts("IncentiveDistributorNotActiveMember", account=s.outsider.address):
        stranger.endorse(rnd, "shapley-gtg", grants, penalties)
    b.endorse(rnd, "shapley-gtg", grants, penalties)
    c.endorse(rnd, "shapley-gtg", {A: 6})  # another award: it does not count towards the first
    assert a.endorsements(rnd, "shapley-gtg", digest) == 2
    assert a.distributor.functions.endorsement(rnd, SHAPLEY, C).call() == award_hash(
        rnd, "shapley-gtg", {A: 6}, {}
    )
    with reverts(
        "IncentiveDistributorQuorumNotReached",
        round=rnd,
        scheme=SHAPLEY,
        endorsements=2,
        activeCount=4,
    ):
        stranger.award_by_quorum(rnd, "shapley-gtg", grants, penalties)  # 2 of 4 is not > 2/3
    d.endorse(rnd, "shapley-gtg", grants, penalties)
    receipt = stranger.award_by_quorum(rnd, "shapley-gtg", grants, penalties)  # anyone may send it
    assert receipt.minted == {A: 5, B: 3} and receipt.burned == {D: 0}
    log = stranger.last_receipt
    assert events(a.distributor, "AwardQuorumReached", log) == [
        {"round": rnd, "scheme": SHAPLEY, "awardHash": digest, "endorsements": 3, "activeCount": 4}
    ]
    assert events(a.distributor, "CreditsAwarded", log) == [
        {
            "round": rnd,
            "scheme": SHAPLEY,
            "awarder": s.outsider.address,
            "total": 8,
            "recipients": 2,
        }
    ]
    with reverts("IncentiveDistributorAlreadyAwarded", round=rnd, scheme=SHAPLEY):
        stranger.award_by_quorum(rnd, "shapley-gtg", grants, penalties)
    with reverts("IncentiveDistributorAlreadyAwarded", round=rnd, scheme=SHAPLEY):
        c.endorse(rnd, "shapley-gtg", grants, penalties)
    # a quorum is held to the same rules as the admin: d was left out of the round
    for member in (a, b, c):
        member.endorse(rnd, "equal", {D: 1})
    with reverts("IncentiveDistributorNotAccepted", round=rnd, account=D):
        stranger.award_by_quorum(rnd, "equal", {D: 1})
