"""The embedded chain's read shortcuts (:mod:`ledger.embedded`: an ``eth_call`` answered once per
block, or once per storage root for the registry, a block's logs decoded once) answer what
eth-tester itself answers, block after block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from web3 import Web3

from ledger import Deployment, LedgerClient, fork_embedded, institution_id
from ledger.beacon import commit_secret
from ledger.chain import event_topic, fund, get_logs
from ledger.committee import slot_of
from ledger.embedded import embedded_web3
from tests.ledger_support import BUDGET, COHORT, h32, keys, peer_id, reverts, setup_on

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def test_a_repeated_call_follows_the_chain(_ledger_consortium_base: tuple[Web3, Deployment]):
    """The same call at the same head is answered once; a transaction mines a new block and the
    same call is run again: a commit the first simulation let through reverts the second time."""
    s = setup_on(fork_embedded(_ledger_consortium_base[0]), _ledger_consortium_base[1])
    member = s.hospitals[0]
    assert member.current_round() == member.current_round() == 0
    round_ = member.open_round()
    assert member.current_round() == round_ == 1
    assert member.round_info(round_).commit_count == 0
    member.commit_update(round_, h32("update"), 100, 0.5, 1)
    assert member.round_info(round_).commit_count == 1
    with reverts("RoundLedgerAlreadyCommitted", round=round_, account=member.address):
        member.commit_update(round_, h32("update"), 100, 0.5, 1)
    assert member.round_info(round_).commit_count == 1


def test_logs_match_eth_testers_own_filter(_ledger_consortium_base: tuple[Web3, Deployment]):
    """``get_logs`` (each block's logs decoded once) against eth-tester's ``eth_getLogs``, read
    twice at one head and again after more blocks."""
    s = setup_on(fork_embedded(_ledger_consortium_base[0]), _ledger_consortium_base[1])
    ledger_address = s.deployment.addresses["RoundLedger"]
    committed = event_topic(s.admin.round_ledger, "UpdateCommitted")

    def both() -> tuple[list, list]:
        ours = get_logs(s.w3, [ledger_address], 0, [committed])
        theirs = s.w3.eth.get_logs(
            {"address": ledger_address, "fromBlock": 0, "topics": ["0x" + committed.hex()]}
        )
        return [(lg["blockNumber"], lg["logIndex"], bytes(lg["data"])) for lg in ours], [
            (lg["blockNumber"], lg["logIndex"], bytes(lg["data"])) for lg in theirs
        ]

    round_ = s.hospitals[0].open_round()
    s.hospitals[0].commit_update(round_, h32("a"), 100, 0.5, 1)
    first = both()
    assert first[0] == first[1] and len(first[0]) == 1
    assert both() == first
    for i, member in enumerate(s.hospitals[1:], start=1):
        member.commit_update(round_, h32(f"update-{i}"), 100, 0.5, 1)
    ours, theirs = both()
    assert ours == theirs and len(ours) == len(s.hospitals)


def _registry_reads(client: LedgerClient, accounts: list[str]) -> tuple:
    return (
        client.identities(),
        [slot_of(client, a) for a in accounts],
        client._call(client.registry.functions.membership()),
        client.active_count(),
        [client.is_active(a) for a in accounts],
        client.genesis_open(),
    )


@pytest.mark.slow
def test_registry_reads_kept_by_storage_root_are_eth_testers_own(
    _ledger_deployed_base: tuple[Web3, Deployment], monkeypatch: pytest.MonkeyPatch
):
    """With the registry's reads kept per storage root, every registry view answers what a
    second provider on the same chain, without that cache, executes; a block that leaves the
    registry alone (a transfer, a beacon commitment) is answered from the cache, and one that
    changes it (registration, admission, key rotation, exit) is executed again."""
    s = setup_on(fork_embedded(_ledger_deployed_base[0]), _ledger_deployed_base[1])
    provider = s.w3.provider
    registry = s.deployment.addresses["HospitalRegistry"]
    provider.keep_reads_by_storage(registry)  # type: ignore[attr-defined]
    reference = LedgerClient(embedded_web3(provider.ethereum_tester), s.deployment, s.admin.account)  # type: ignore[attr-defined]
    accounts = [h.address for h in s.hospitals]
    executed: list[str] = []
    run = provider._request  # type: ignore[attr-defined]

    def counting(method, params):
        if method == "eth_call" and str(params[0].get("to", "")).lower() == registry.lower():
            executed.append(params[0]["data"][:10])
        return run(method, params)

    monkeypatch.setattr(provider, "_request", counting)

    def agree() -> None:
        assert _registry_reads(s.hospitals[0], accounts) == _registry_reads(reference, accounts)

    def changes(step) -> None:
        agree()
        step()
        executed.clear()
        agree()
        assert executed, "a changed registry must be read again"

    for i, h in enumerate(s.hospitals):
        seal, sign = keys(i)
        changes(lambda: h.register(institution_id(f"h{i}"), peer_id(i), seal, sign, COHORT))  # noqa: B023
        changes(lambda: s.admin.admit(h.address))  # noqa: B023
        h.declare_privacy_budget(BUDGET)  # the RoundLedger's storage, not the registry's
        executed.clear()
        agree()
        assert executed == [], "the registry did not change: its reads are kept"
    fund(s.w3, s.outsider.address, 10**18)
    commit_secret(s.hospitals[0], 1, h32("secret"))
    executed.clear()
    agree()
    assert executed == []
    seal, sign = keys(9)
    changes(lambda: s.hospitals[1].rotate_keys(peer_id(9), seal, sign))
    changes(lambda: s.hospitals[2].exit())


def _functions(source: str):
    """(name, header, body) of every function in a Solidity source (bodies matched by brace)."""
    for m in re.finditer(r"function\s+(\w+)\s*\(([^)]*)\)([^{;]*)\{", source):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(source[i], 0)
            i += 1
        yield m.group(1), m.group(3), source[m.end() : i - 1]


def test_the_registrys_views_read_only_its_own_storage():
    """What makes keeping the registry's reads per storage root exact: no view of it, or of its
    base, reads the block, the transaction or the caller, or calls out of the contract."""
    outside = re.compile(
        r"\b(block|tx|msg)\.|\bgasleft\b|\bthis\b|\.(static|delegate)?call\b|\bI[A-Z]\w*\("
    )
    views = []
    for name in ("HospitalRegistry.sol", "ConsortiumAdmin.sol"):
        for fn, header, body in _functions((CONTRACTS / name).read_text()):
            if re.search(r"\b(view|pure)\b", header):
                views.append(fn)
                assert not outside.search(body), f"{name}: {fn} reads beyond its storage"
    assert {"identities", "slotOf", "membership", "isActive", "admin"} <= set(views)
