"""RoundLedger as compiled and deployed, on the embedded chain and on anvil: the artifacts come from
the sources, the constructor's checks, custom errors as selector + arguments, a revert sends
nothing, and the gas of a round. A round's life: test_round_commits.py, test_round_votes.py,
test_round_credits.py (HospitalRegistry: test_registry.py, ContributionCredit: test_credit.py).
Reverts are checked by exact custom error and arguments, events by exact arguments."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from ledger_support import (
    LedgerSetup,
    commit_all,
    h32,
    reverts,
)
from web3.exceptions import ContractCustomError

from ledger import (
    LedgerError,
    compile_contracts,
    deploy,
    dev_account,
)
from ledger.compile import EVM_VERSION, error_decoder
from ledger.tx import send

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)

ZERO = "0x0000000000000000000000000000000000000000"
NONE_R = 0


def test_compiled_artifacts_come_from_the_sources() -> None:
    artifacts = compile_contracts()
    assert set(artifacts) == {
        "HospitalRegistry",
        "RoundLedger",
        "RoundBeacon",
        "ContributionCredit",
        "IncentiveDistributor",
    }
    for art in artifacts.values():
        # the CBOR metadata trailer names the compiler: "solc" 0x000825 = 0.8.37
        assert art["deployedBytecode"].endswith("64736f6c63430008250033")
        assert art["bytecode"].endswith(art["deployedBytecode"][2:]) or len(art["bytecode"]) > len(
            art["deployedBytecode"]
        )
    assert EVM_VERSION == "prague"
    assert compile_contracts() == artifacts  # cached, identical


@pytest.mark.parametrize(
    ("quorum", "windows", "error", "args"),
    [
        ((1, 3), (60, 60), "RoundLedgerInvalidQuorum", {"numerator": 1, "denominator": 3}),
        ((3, 3), (60, 60), "RoundLedgerInvalidQuorum", {"numerator": 3, "denominator": 3}),
        ((0, 1), (60, 60), "RoundLedgerInvalidQuorum", {"numerator": 0, "denominator": 1}),
        ((2, 3), (0, 60), "RoundLedgerInvalidWindows", {"commitWindow": 0, "attestWindow": 60}),
    ],
)
def test_round_ledger_constructor_checks(
    ledger_deployed: LedgerSetup,
    quorum: tuple[int, int],
    windows: tuple[int, int],
    error: str,
    args: dict,
) -> None:
    with reverts(error, **args):
        deploy(
            ledger_deployed.w3,
            dev_account(ledger_deployed.w3, 0),
            quorum=quorum,
            commit_window=windows[0],
            attest_window=windows[1],
        )


def test_round_ledger_scheme_check(ledger_deployed: LedgerSetup) -> None:
    s = ledger_deployed
    with pytest.raises(LedgerError, match="credit_scheme must be one of"):
        deploy(s.w3, dev_account(s.w3, 0), credit_scheme="lottery")
    art = compile_contracts()["RoundLedger"]
    factory = s.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    ctor = factory.constructor(ZERO, ZERO, (60, 60, 0, 2, 3, 2, 0))
    with reverts("RoundLedgerInvalidScheme", scheme=2):
        send(s.w3, s.admin.account, {"data": ctor.data_in_transaction}, decoder=error_decoder())


def test_custom_error_data_is_selector_plus_args(ledger_consortium: LedgerSetup) -> None:
    """The decoder's input, checked against a selector computed here from the signature."""
    s = ledger_consortium
    outsider = s.outsider
    with pytest.raises(ContractCustomError) as info:
        outsider.round_ledger.functions.openRound().call({"from": outsider.address})
    expected = keccak(text="RoundLedgerNotActiveMember(address)")[:4] + abi_encode(
        ["address"], [outsider.address]
    )
    assert info.value.data == "0x" + expected.hex()


def test_a_revert_sends_nothing(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h = s.hospitals[0]
    nonce, block = s.w3.eth.get_transaction_count(h.address), s.w3.eth.block_number
    with reverts("RoundLedgerRoundNotOpen", round=7, status=NONE_R):
        h.commit_update(7, h32("u"), 1, 1.0, 0)
    assert (s.w3.eth.get_transaction_count(h.address), s.w3.eth.block_number) == (nonce, block)
    assert "commit_update" not in h.gas_used


def test_gas_budget(ledger_consortium: LedgerSetup) -> None:
    """commit and attest stay cheap (figures in the report; budgets here guard regressions)."""
    s = ledger_consortium
    rnd = s.hospitals[0].open_round()
    commit_all(s, rnd)
    for h in s.hospitals:
        h.attest(rnd, h32("agg"), [x.address for x in s.hospitals])
    s.hospitals[0].finalize(rnd)
    commits = [g for h in s.hospitals for g in h.gas_used["commit_update"]]
    attests = [g for h in s.hospitals for g in h.gas_used["attest"]]
    assert max(commits) < 120_000
    assert attests[0] < 120_000  # the first vote for a pair stores the pair
    assert max(attests[1:]) < 100_000
    assert s.hospitals[0].gas_used["finalize"][0] < 300_000


def test_gas_budget_for_a_split_vote(ledger_consortium: LedgerSetup) -> None:
    """The first vote for a pair that does not lead stores a new tally and stays under 120k."""
    s = ledger_consortium
    a, b, c, d = s.hospitals
    rnd = a.open_round()
    commit_all(s, rnd)
    everyone = [h.address for h in s.hospitals]
    a.attest(rnd, h32("x"), everyone)
    b.attest(rnd, h32("y"), everyone)  # a new pair, not leading
    c.attest(rnd, h32("y"), everyone)  # takes the lead
    d.attest(rnd, h32("x"), everyone[:3])  # a new pair with a smaller set
    attests = [h.gas_used["attest"][0] for h in s.hospitals]
    assert max(attests) < 120_000, attests
