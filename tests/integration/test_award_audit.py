"""The audit of IncentiveDistributor awards (ledger/award_audit.py): a hand-built chain whose
awards are written out by hand and found again in the report, its views and its checks; a
distributor of another consortium and an address that is no distributor, both caught; and the
rules re-checked on hand-built histories that the contract would never let happen."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import pytest
from ledger_support import LedgerSetup, h32

from ledger import (
    DistributorClient,
    LedgerError,
    collect,
    deploy,
    deploy_distributor,
    dev_account,
    save_state,
)
from ledger.award_audit import award_digest, award_violations
from ledger.awards import award_hash, distributors, scheme_id, scheme_name, with_distributor
from ledger.cli import register_commands

MMC = 10**18


def _rounds(s: LedgerSetup) -> None:
    """Round 1 finalized with all four accepted; round 2 finalized without d; round 3 open."""
    a, b, c, d = s.hospitals
    everyone = [h.address for h in s.hospitals]
    for rnd, accepted in ((1, everyone), (2, everyone[:3])):
        assert a.open_round() == rnd
        for i, h in enumerate(s.hospitals):
            h.commit_update(rnd, h32(f"r{rnd}u{i}"), 100, 0.1, 1)
        for h in s.hospitals:
            h.attest(rnd, h32(f"agg{rnd}"), accepted)
        a.finalize(rnd)
    b.open_round()


def _pay(s: LedgerSetup) -> tuple[dict[str, str], dict[str, str]]:
    """Two distributors (budgets 100 and 50 MMC) and their awards, one by a member quorum;
    returns their addresses."""
    admin = dev_account(s.w3, 0)
    a, b, c, d = (h.address for h in s.hospitals)
    first = deploy_distributor(
        s.w3, admin, s.deployment, budget_per_round=100 * MMC, max_penalty_per_round=10 * MMC
    )
    second = deploy_distributor(
        s.w3, admin, s.deployment, budget_per_round=50 * MMC, max_penalty_per_round=20 * MMC
    )
    one, two = DistributorClient(s.w3, first, admin), DistributorClient(s.w3, second, admin)
    one.award(1, "shapley-gtg", {a: 40 * MMC, b: 30 * MMC, c: 20 * MMC, d: 10 * MMC})
    one.award(2, "shapley-gtg", {a: 50 * MMC, b: 25 * MMC}, {d: 4 * MMC})
    one.award(2, "leave-one-out", {c: 25 * MMC})
    two.award(1, "reputation", {b: 7 * MMC})
    for h in s.hospitals[:3]:  # 3 of 4 members endorse an award; a stranger executes it
        DistributorClient(s.w3, second, h.account).endorse(1, "equal", {a: MMC})
    DistributorClient(s.w3, second, s.outsider.account).award_by_quorum(1, "equal", {a: MMC})
    two.award(2, "reputation", {}, {d: 20 * MMC})  # d holds nothing in this token: nothing burned
    return first, second


@pytest.fixture
def paid(ledger_consortium: LedgerSetup) -> tuple[LedgerSetup, dict[str, str], dict[str, str]]:
    _rounds(ledger_consortium)
    first, second = _pay(ledger_consortium)
    deployment = with_distributor(ledger_consortium.deployment, first["IncentiveDistributor"])
    ledger_consortium.deployment = with_distributor(
        deployment, second["IncentiveDistributor"], "reputation"
    )
    return ledger_consortium, first, second


def test_awards_are_rebuilt_from_the_logs_and_pass_every_check(
    paid: tuple[LedgerSetup, dict[str, str], dict[str, str]],
) -> None:
    s, first, second = paid
    a, b, c, d = (h.address for h in s.hospitals)
    report = collect(s.w3, s.deployment)
    assert report["ok"], [x for x in report["checks"] if not x["ok"]]
    found = report["incentives"]
    assert list(found) == ["IncentiveDistributor", "IncentiveDistributor[reputation]"]

    def awards(key: str) -> list[tuple]:
        return [
            (
                x["round"],
                x["scheme"],
                x["total"],
                x["recipients"],
                x["grants"],
                x["penalties"],
                x["awarder"],
            )
            for x in found[key]["awards"]
        ]

    admin = s.deployment.admin
    assert awards("IncentiveDistributor") == [
        (
            1,
            "shapley-gtg",
            100 * MMC,
            4,
            {a: 40 * MMC, b: 30 * MMC, c: 20 * MMC, d: 10 * MMC},
            {},
            admin,
        ),
        (
            2,
            "shapley-gtg",
            75 * MMC,
            2,
            {a: 50 * MMC, b: 25 * MMC},
            {d: {"penalty": 4 * MMC, "burned": 4 * MMC}},
            admin,
        ),
        (2, "leave-one-out", 25 * MMC, 1, {c: 25 * MMC}, {}, admin),
    ]
    assert awards("IncentiveDistributor[reputation]") == [
        (1, "reputation", 7 * MMC, 1, {b: 7 * MMC}, {}, admin),
        (1, "equal", MMC, 1, {a: MMC}, {}, s.outsider.address),
        (2, "reputation", 0, 0, {}, {d: {"penalty": 20 * MMC, "burned": 0}}, admin),
    ]
    quorum_award = found["IncentiveDistributor[reputation]"]["awards"][1]
    assert quorum_award["quorum"]["endorsements"] == 3 and quorum_award["quorum"]["active"] == 4
    assert found["IncentiveDistributor[reputation]"]["endorsed"] == {
        quorum_award["quorum"]["hash"]: [h.address for h in s.hospitals[:3]]
    }
    # the audit's hash of the award, recomputed from the logs, is the one the contract counted
    assert award_digest(quorum_award) == "0x" + award_hash(1, "equal", {a: MMC}, {}).hex()
    # by hand: a 40 + 50, b 30 + 25, c 20 + 25, d 10 - 4
    assert found["IncentiveDistributor"]["balances"] == {
        k: v * MMC for k, v in {a: 90, b: 55, c: 45, d: 6}.items()
    }
    assert found["IncentiveDistributor"]["supply"] == 196 * MMC
    assert found["IncentiveDistributor[reputation]"]["balances"] == {a: MMC, b: 7 * MMC}
    assert found["IncentiveDistributor"]["token"] == first["ContributionCredit"]
    assert found["IncentiveDistributor[reputation]"]["budget_per_round"] == 50 * MMC
    named = [
        x["check"]
        for x in report["checks"]
        if x["check"].startswith("IncentiveDistributor[reputation]")
    ]
    assert len(named) == 8 and all(x["ok"] for x in report["checks"])
    assert (
        "code of IncentiveDistributor[reputation]'s token matches contracts/ContributionCredit.sol"
        in {x["check"] for x in report["checks"]}
    )
    assert distributors(s.deployment) == {
        "IncentiveDistributor": first["IncentiveDistributor"],
        "IncentiveDistributor[reputation]": second["IncentiveDistributor"],
    }


def _audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="medmesh")
    register_commands(parser.add_subparsers())
    args = parser.parse_args(["audit", *argv])
    code = args.func(args)
    return code, capsys.readouterr().out


def test_credits_and_awards_views(
    paid: tuple[LedgerSetup, dict[str, str], dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s, _, _ = paid
    a, b, c, d = (h.address for h in s.hospitals)
    state = tmp_path / "chain.json"
    save_state(s.w3, state, s.deployment)
    code, out = _audit(capsys, "--chain-state", str(state), "credits", "--json")
    rows = {r["account"]: r for r in json.loads(out)}
    assert code == 0 and {
        n: (r["IncentiveDistributor"], r["reputation"]) for n, r in rows.items()
    } == {a: (90.0, 1.0), b: (55.0, 7.0), c: (45.0, 0.0), d: (6.0, 0.0)}
    code, out = _audit(capsys, "--chain-state", str(state), "awards", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 4 + 3 + 1 + 1 + 1 + 1
    assert [
        (
            r["distributor"],
            r["scheme"],
            r["round"],
            r["account"],
            r["awarded"],
            r["penalty"],
            r["burned"],
        )
        for r in rows
        if r["account"] == d
    ] == [
        ("IncentiveDistributor", "shapley-gtg", "1", d, "10.0", "0.0", "0.0"),
        ("IncentiveDistributor", "shapley-gtg", "2", d, "0.0", "4.0", "4.0"),
        ("reputation", "reputation", "2", d, "0.0", "20.0", "0.0"),
    ]
    code, out = _audit(capsys, "--chain-state", str(state))
    assert code == 0 and "Incentive awards: IncentiveDistributor[reputation]" in out
    assert "Incentive credits by scheme (MMC)" in out and "FAIL" not in out
    code, _ = _audit(
        capsys, "--chain-state", str(state), "report", "--out", str(tmp_path / "report")
    )
    page = (tmp_path / "report" / "index.html").read_text()
    assert (
        code == 0 and "<h2>Incentive awards</h2>" in page and page.count("shapley-gtg") == 7
    )  # 4 + 3 rows


def test_a_foreign_distributor_and_a_non_distributor_fail_their_checks(
    ledger_consortium: LedgerSetup,
) -> None:
    s = ledger_consortium
    admin = dev_account(s.w3, 0)
    other = deploy(s.w3, admin)  # another consortium's contracts on the same chain
    foreign = deploy_distributor(s.w3, admin, other, budget_per_round=MMC)
    deployment = with_distributor(s.deployment, foreign["IncentiveDistributor"], "foreign")
    deployment = with_distributor(deployment, s.deployment.addresses["RoundLedger"], "bogus")
    report = collect(s.w3, deployment)
    failed = {x["check"] for x in report["checks"] if not x["ok"]}
    assert not report["ok"] and failed == {
        "IncentiveDistributor[foreign]: pays for this deployment's RoundLedger and registry",
        "code of IncentiveDistributor[bogus] matches contracts/IncentiveDistributor.sol",
        "IncentiveDistributor[bogus]: answers as an IncentiveDistributor",
    }
    with pytest.raises(LedgerError, match="already lists IncentiveDistributor\\[foreign\\]"):
        with_distributor(deployment, foreign["IncentiveDistributor"], "foreign")
    with pytest.raises(LedgerError, match="without brackets"):
        with_distributor(deployment, foreign["IncentiveDistributor"], "a[b]")


A, B, C, D, ADMIN, MALLORY = (f"0x{i:040x}" for i in (10, 11, 12, 13, 1, 666))


def test_rules_on_hand_built_histories() -> None:
    rounds = [
        {
            "round": 1,
            "finalized": True,
            "accepted": [A, B],
            "commits": [{"account": x} for x in (A, B, C)],
        },
        {"round": 2, "finalized": False, "accepted": [], "commits": [{"account": A}]},
    ]

    def award(
        rnd: int,
        scheme: str,
        grants: dict[str, int],
        penalties: dict[str, tuple[int, int]] | None = None,
        total: int | None = None,
        awarder: str = ADMIN,
    ) -> dict:
        return {
            "round": rnd,
            "scheme": scheme,
            "scheme_id": "0x" + scheme_id(scheme).hex(),
            "awarder": awarder,
            "grants": grants,
            "total": sum(grants.values()) if total is None else total,
            "recipients": len(grants),
            "penalties": {
                k: {"penalty": p, "burned": b} for k, (p, b) in (penalties or {}).items()
            },
        }

    clean = [award(1, "s", {A: 60, B: 30}, {C: (5, 5)}), award(1, "t", {A: 10})]
    assert award_violations(clean, rounds, ADMIN, budget=100) == {
        "sums": [],
        "once": [],
        "grants": [],
        "penalties": [],
        "budget": [],
    }
    bad = [
        award(
            1, "s", {A: 60, C: 30}, {B: (5, 0), D: (1, 0)}, total=80
        ),  # C not accepted; B accepted; D never committed
        award(
            1, "s", {B: 20}, {C: (1, 2)}, awarder=MALLORY
        ),  # again; not the admin; burned more than asked
        award(2, "s", {A: 1}),  # round 2 never finalized
    ]
    assert award_violations(bad, rounds, ADMIN, budget=100) == {
        "sums": ["round 1 s: total 80 over 2 recipients, grants sum to 90 over 2"],
        "once": [
            "round 1 s: awarded again",
            f"round 1 s: sent by {MALLORY}, neither the admin nor on a member quorum",
        ],
        "grants": [
            f"round 1 s: {C} (not in its accepted set)",
            f"round 2 s: {A} (the round is not finalized)",
        ],
        "penalties": [f"round 1 s: {B}", f"round 1 s: {D}", f"round 1 s: {C}"],
        "budget": [],  # 80 + 20 of 100
    }
    assert award_violations(
        [award(1, "s", {A: 70}), award(1, "t", {B: 31})], rounds, ADMIN, budget=100
    )["budget"] == ["round 1: 101 > 100"]
    assert scheme_name("0x" + b"shapley-gtg".ljust(32, b"\0").hex()) == "shapley-gtg"
    assert scheme_name(b"\xff" * 32) == "0x" + "ff" * 32


def test_quorum_awards_on_hand_built_histories() -> None:
    """An award sent by someone other than the admin passes only on a quorum of endorsements of
    its own hash: more than 2/3 of the active members, each endorsement in the logs."""
    rounds = [
        {
            "round": 1,
            "finalized": True,
            "accepted": [A, B, C],
            "commits": [{"account": x} for x in (A, B, C)],
        }
    ]
    base = {
        "round": 1,
        "scheme": "s",
        "scheme_id": "0x" + scheme_id("s").hex(),
        "awarder": MALLORY,
        "grants": {A: 5},
        "penalties": {},
        "total": 5,
        "recipients": 1,
    }
    digest = award_digest(base)

    def once(
        endorsements: int, active: int, endorsers: list[str], claimed: str = digest
    ) -> list[str]:
        award = {
            **base,
            "quorum": {"hash": claimed, "endorsements": endorsements, "active": active},
        }
        return award_violations([award], rounds, ADMIN, 100, {claimed: endorsers}, (2, 3))["once"]

    assert once(3, 4, [A, B, C]) == []  # 3 of 4 > 2/3
    refused = [f"round 1 s: sent by {MALLORY}, neither the admin nor on a member quorum"]
    assert once(2, 3, [A, B]) == refused  # 2 of 3 is exactly 2/3: not more
    assert once(3, 4, [A, B, B]) == refused  # two endorsements in the logs, three claimed
    other = award_digest({**base, "grants": {A: 6}})
    assert (
        other != digest and once(3, 4, [A, B, C], claimed=other) == refused
    )  # endorsed another award
    assert award_violations([base], rounds, ADMIN, 100)["once"] == refused  # no quorum at all
