"""RoundBeacon (issue 15, section 3): commit-reveal randomness among the members.

The reference value is computed here with eth_abi and keccak from the secrets the test chose:
keccak256(abi.encode(mix, round, chainid, beacon)), mix the XOR over revealed members of
keccak256(abi.encode(secret, member)); the needed reveals are more than 2/3 of the members.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak
from ledger_support import LedgerSetup, events, reverts

from ledger import LedgerClient, advance_time, collect, connect, deploy, dev_account
from ledger.beacon import (
    beacon_info,
    commit_secret,
    record_withheld,
    reveal_secret,
    revealed_secrets,
    secret_commitment,
    value_from_reveals,
    withheld_count,
)
from ledger.beacon_audit import CKKS_MODE
from ledger.errors import LedgerError
from ledger.randomness import beacon_value
from node.protection import MODE_CODES

LEDGER_BACKENDS = ("embedded", "anvil")  # every ledger test runs on both (conftest.py)


def _secret(i: int, round_: int = 1) -> bytes:
    return keccak(text=f"secret-{round_}-{i}")


def _reference(s: LedgerSetup, round_: int, members: list[LedgerClient]) -> bytes:
    mix = 0
    for i, h in enumerate(s.hospitals):
        if h in members:
            mix ^= int.from_bytes(
                keccak(encode(["bytes32", "address"], [_secret(i, round_), h.address])), "big"
            )
    return keccak(
        encode(
            ["bytes32", "uint256", "uint256", "address"],
            [mix.to_bytes(32, "big"), round_, s.w3.eth.chain_id, s.hospitals[0].beacon.address],
        )
    )


def _past(s: LedgerSetup, deadline: int) -> None:
    """Move the chain's clock past ``deadline`` (the embedded chain's next block is a second later
    than the one time travel mines, so a simulated call and its mined transaction agree)."""
    advance_time(s.w3, deadline - int(s.w3.eth.get_block("latest")["timestamp"]) + 2)


def _commit_all(s: LedgerSetup, round_: int = 1) -> None:
    for i, h in enumerate(s.hospitals):
        commit_secret(h, round_, _secret(i, round_))


def test_value_mixes_every_reveal_in_any_order(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h0 = s.hospitals[0]
    receipt = commit_secret(h0, 1, _secret(0))
    assert events(h0.beacon, "SecretCommitted", receipt) == [
        {
            "round": 1,
            "account": h0.address,
            "commitment": keccak(
                encode(
                    ["bytes32", "address", "uint256", "address"],
                    [_secret(0), h0.address, 1, h0.beacon.address],
                )
            ),
        }
    ]
    for i, h in enumerate(s.hospitals[1:], start=1):
        commit_secret(h, 1, _secret(i))
    assert beacon_info(h0, 1).status == "committing"
    h0.open_round()
    for i in (2, 0, 3):  # any order
        receipt = reveal_secret(s.hospitals[i], 1, _secret(i))
        assert events(h0.beacon, "SecretRevealed", receipt) == [
            {"round": 1, "account": s.hospitals[i].address, "secret": _secret(i)}
        ]
    info = beacon_info(h0, 1)
    assert (info.status, info.value, info.reveals, info.commits, info.needed) == (
        "revealing",
        None,
        3,
        4,
        3,
    )
    reveal_secret(s.hospitals[1], 1, _secret(1))
    info = beacon_info(h0, 1)  # every committer revealed: final before the deadline
    assert info.status == "ready" and info.value == _reference(s, 1, s.hospitals)
    assert beacon_value(h0, 1) == info.value
    reveals = revealed_secrets(h0, 1)
    assert reveals == {h.address: _secret(i) for i, h in enumerate(s.hospitals)}
    assert value_from_reveals(s.w3.eth.chain_id, h0.beacon.address, 1, reveals) == info.value


def test_commit_errors(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h0, h1 = s.hospitals[:2]
    commitment = secret_commitment(_secret(5), s.outsider.address, 1, h0.beacon.address)
    with reverts("RoundBeaconNotActiveMember", account=s.outsider.address):
        s.outsider._send("c", s.outsider.beacon.functions.commit(1, commitment))
    with reverts("RoundBeaconCommitClosed", round=2, current=0):
        commit_secret(h0, 2, _secret(0, 2))
    with reverts("RoundBeaconInvalidCommitment", round=1):
        h0._send("c", h0.beacon.functions.commit(1, b"\x00" * 32))
    commit_secret(h0, 1, _secret(0))
    with reverts("RoundBeaconAlreadyCommitted", round=1, account=h0.address):
        commit_secret(h0, 1, _secret(9))
    with reverts("RoundBeaconRoundNotOpened", round=1):
        reveal_secret(h0, 1, _secret(0))
    h1.open_round()
    with reverts(
        "RoundBeaconCommitClosed", round=1, current=1
    ):  # the opening closed round 1's commits
        commit_secret(h1, 1, _secret(1))


def test_reveal_errors(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    h0, h1 = s.hospitals[:2]
    _commit_all(s)
    h0.open_round()
    with reverts("RoundBeaconWrongSecret", round=1, account=h0.address):
        reveal_secret(h0, 1, _secret(1))  # another member's secret
    with reverts("RoundBeaconNotRoundMember", round=1, account=s.outsider.address):
        reveal_secret(s.outsider, 1, _secret(0))
    reveal_secret(h0, 1, _secret(0))
    with reverts("RoundBeaconAlreadyRevealed", round=1, account=h0.address):
        reveal_secret(h0, 1, _secret(0))
    deadline = beacon_info(h0, 1).reveal_deadline
    assert deadline == h0.round_info(1).opened_at + h0.beacon.functions.revealWindow().call()
    _past(s, deadline)
    with reverts("RoundBeaconRevealClosed", round=1, deadline=deadline):
        reveal_secret(h1, 1, _secret(1))
    assert beacon_info(h0, 1).status == "failed"  # 1 of 4 revealed, 3 needed
    with pytest.raises(
        LedgerError, match=r"the beacon is failed \(1 of 4 secrets revealed, 3 needed\)"
    ):
        beacon_value(h0, 1)  # no draw from a failed beacon


def test_a_withholder_is_recorded_and_biases_by_one_choice(ledger_consortium: LedgerSetup) -> None:
    """The last committer sees three reveals and withholds: the value is the three-secret one,
    one of the only two it could choose between; its withholding goes on the record."""
    s = ledger_consortium
    h0, h3 = s.hospitals[0], s.hospitals[3]
    _commit_all(s)
    h0.open_round()
    for i in range(3):
        reveal_secret(s.hospitals[i], 1, _secret(i))
    with reverts(
        "RoundBeaconRevealStillOpen", round=1, deadline=beacon_info(h0, 1).reveal_deadline
    ):
        record_withheld(h0, 1, h3.address)
    assert beacon_info(h0, 1).status == "revealing"
    _past(s, beacon_info(h0, 1).reveal_deadline)
    info = beacon_info(h0, 1)
    assert info.status == "ready" and info.value == _reference(s, 1, s.hospitals[:3])
    assert info.value != _reference(s, 1, s.hospitals)  # the other choice it had
    receipt = record_withheld(s.outsider, 1, h3.address)  # anyone may record it
    assert events(h0.beacon, "RevealWithheld", receipt) == [
        {"round": 1, "account": h3.address, "recorder": s.outsider.address}
    ]
    assert withheld_count(h0, h3.address) == 1
    for account in (
        h3.address,
        h0.address,
        s.outsider.address,
    ):  # again, a revealer, a non-committer
        with reverts("RoundBeaconNothingWithheld", round=1, account=account):
            record_withheld(h0, 1, account)


def test_reveal_window_must_fit_in_the_commit_window() -> None:
    w3 = connect()
    with reverts("RoundBeaconInvalidWindow", revealWindow=60, commitWindow=60):
        deploy(w3, dev_account(w3, 0), commit_window=60, reveal_window=60)


def _audit_checks(s: LedgerSetup, round_: int) -> tuple[dict[str, Any], dict[str, bool]]:
    report = collect(s.w3, s.deployment)
    ours = ("beacon", "ckks")
    return report["rounds"][round_ - 1], {
        c["check"]: c["ok"]
        for c in report["checks"]
        if c["check"].startswith(f"round {round_}:") and any(w in c["check"] for w in ours)
    }


def test_audit_redraws_the_ckks_pair_from_the_reveals(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    _commit_all(s)
    s.hospitals[0].open_round()
    for i, h in enumerate(s.hospitals):
        reveal_secret(h, 1, _secret(i))
        h.commit_update(1, keccak(text=f"update-{i}"), 100, 0.5, MODE_CODES["ckks"])
    r, checks = _audit_checks(s, 1)
    assert checks == {
        "round 1: every beacon reveal matches its commitment": True,
        "round 1: the beacon value recomputed from 4 reveals matches RoundBeacon.beacon()": True,
        "round 1: its ckks roles come from a beacon with a quorum of reveals": True,
    }
    # the pair by the rule, here: x = keccak(label head + value); holder = members[x mod n], ...
    head = (
        f"medmesh/round-seed/v1|ckks-roles|{s.w3.eth.chain_id}|"
        f"{s.deployment.addresses['RoundLedger'].lower()}|1|"
    ).encode()
    x = int.from_bytes(keccak(head + _reference(s, 1, s.hospitals)), "big")
    members = sorted((h.address for h in s.hospitals), key=str.lower)
    holder = members[x % 4]
    rest = [m for m in members if m != holder]
    assert r["ckks_roles"] == {"key_holder": holder, "aggregator": rest[(x // 4) % 3]}
    assert r["beacon"]["value"] == "0x" + _reference(s, 1, s.hospitals).hex()


def test_audit_flags_ckks_updates_without_a_beacon(ledger_consortium: LedgerSetup) -> None:
    """Members that commit ckks updates in a round nobody drew a pair for: the audit says so."""
    s = ledger_consortium
    commit_secret(s.hospitals[0], 1, _secret(0))
    s.hospitals[0].open_round()
    reveal_secret(s.hospitals[0], 1, _secret(0))
    for i, h in enumerate(s.hospitals):
        h.commit_update(1, keccak(text=f"update-{i}"), 100, 0.5, MODE_CODES["ckks"])
    r, checks = _audit_checks(s, 1)
    assert checks["round 1: its ckks roles come from a beacon with a quorum of reveals"] is False
    assert "ckks_roles" not in r and r["beacon"]["value"] is None


def test_the_audit_knows_the_ckks_mode_code() -> None:
    assert CKKS_MODE == MODE_CODES["ckks"]


def test_an_opener_waits_for_the_commitments_a_beacon_needs(
    ledger_consortium: LedgerSetup, caplog: pytest.LogCaptureFixture
) -> None:
    """Commitments close when a round opens, so the opener waits for them (the netlab ckks round
    1 failed when a node opened before two others had committed their first secret): for every
    member's up to ``everyone`` seconds, then for a quorum's (more than 2/3: 3 of 4) up to
    ``quorum`` seconds, then opens anyway and says so."""
    import logging

    import trio

    from node.peer.roundbeacon import RoundSecrets

    class RoundLog(logging.LoggerAdapter):  # the peer's log takes the round as a keyword
        def process(self, msg, kwargs):
            return f"r{kwargs.pop('round', '-')} {msg}", kwargs

    s = ledger_consortium
    a = s.hospitals[0]
    log = RoundLog(logging.getLogger("test.beacon"), {})
    secrets = RoundSecrets(
        a, a.address, log, poke=lambda: None, chain_changed=lambda: trio.sleep(0.05)
    )

    def wait(everyone: float, quorum: float) -> tuple[int, float]:
        async def go() -> tuple[int, float]:
            start = trio.current_time()
            got = await secrets.committed(1, 4, everyone=everyone, quorum=quorum)
            return got, trio.current_time() - start

        return trio.run(go)

    for i in (0, 1):
        commit_secret(s.hospitals[i], 1, _secret(i))
    with caplog.at_level(logging.WARNING, logger="test.beacon"):
        got, took = wait(everyone=0.2, quorum=1.0)
    assert got == 2 and took >= 1.0  # below the quorum: waited it all, then gave up
    assert "r1 opening with 2 of 4 beacon secrets committed (3 needed" in caplog.text

    async def third_commits_meanwhile() -> tuple[int, float]:
        async with trio.open_nursery() as nursery:
            result: list[tuple[int, float]] = []

            async def waiter() -> None:
                start = trio.current_time()
                got = await secrets.committed(1, 4, everyone=0.3, quorum=30.0)
                result.append((got, trio.current_time() - start))

            nursery.start_soon(waiter)
            await trio.sleep(0.1)
            commit_secret(s.hospitals[2], 1, _secret(2))
        return result[0]

    got, took = trio.run(third_commits_meanwhile)
    assert got == 3 and 0.3 <= took < 30.0  # a quorum: waited `everyone` for the fourth, no more
    commit_secret(s.hospitals[3], 1, _secret(3))
    got, took = wait(everyone=30.0, quorum=60.0)
    assert got == 4 and took < 30.0  # everyone: no wait at all
