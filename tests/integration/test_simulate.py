"""`medmesh simulate` (issue 19 part B): the real round pipeline for 8 members over the in-memory
transport, on the embedded chain.

The byte counts are checked against a count derived by hand from the protocol, not read back
from the simulator: per round the opener publishes one RoundOpened, every member one
UpdateCommitted and one AggregateAttested (compact JSON, keys sorted), each delivered to the
N - 1 others; every member sends its sealed blob, whose SHA-256 is its commitment on chain, to
the N - 1 others.

With a committee of K = 4 the committee is checked against the contract's own draw
(``RoundLedger.committeeSeat`` over the members' registry slots), not the peers' Python draw.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from gossip import PeerHost
from ledger import LedgerClient, connect, deploy, dev_account
from ledger.committee import committee_info, seat_on_chain, slot_of
from node.consensus.committee import committee_size
from node.consensus.update import parameters_hash
from node.peer.pipeline import HospitalPeer
from node.sim.consortium import MAX_PEERS, SimConfig, simulate
from node.sim.hosts import DIAL_DEGREE

N, K, ROUNDS, PARAMS = 8, 4, 2, 2_000


def _simulate(check, committee: int | None = None) -> dict:
    return simulate(
        SimConfig(peers=N, committee=committee, rounds=ROUNDS, params=PARAMS, rows=16), check
    )


def _control(kind: str, **fields) -> int:
    """Length of one control message as the protocol defines it: compact JSON, sorted keys."""
    return len(json.dumps({"type": kind, **fields}, sort_keys=True, separators=(",", ":")))


@pytest.mark.slow
def test_eight_members_two_rounds_finalize_with_hand_counted_bytes() -> None:
    checked: list[int] = []

    def check(row: dict, peers: list[HospitalPeer]) -> None:
        rnd = row["round"]
        ledger = peers[0].ledger
        commits = ledger.commitments(rnd)
        assert len(commits) == N
        # each member's blob as its receivers hold it, found by its on-chain hash
        size: dict[str, int] = {}
        for p in peers:
            for q in peers:
                if q is p:
                    continue
                blob = q.intake.held_blobs(rnd)[p.address]
                assert hashlib.sha256(blob).digest() == commits[p.address].update_hash
                size.setdefault(p.address, len(blob))
                assert len(blob) == size[p.address]
        # a sealed float32 update of PARAMS values, plus bounded envelope overhead
        assert all(4 * PARAMS < s < 4 * PARAMS + 8 * 1024 for s in size.values())
        opener = peers[(rnd - 1) % N].address
        agg = row["aggregate_hash"]
        published = {
            p.address: _control(
                "UpdateCommitted",
                round=rnd,
                sender=p.address,
                update_hash=commits[p.address].update_hash.hex(),
                size=size[p.address],
            )
            + _control("AggregateAttested", round=rnd, sender=p.address, aggregate_hash=agg)
            + (_control("RoundOpened", round=rnd, opener=p.address) if p.address == opener else 0)
            for p in peers
        }
        total_control = sum(published.values())
        for p, (sent, received) in zip(peers, row["members"], strict=True):
            assert sent == (N - 1) * size[p.address] + published[p.address]
            others = [q.address for q in peers if q is not p]
            assert received == sum(size[a] for a in others) + total_control - published[p.address]
        assert row["blobs"] == N * (N - 1)
        assert row["control_messages_sent"] == 2 * N + 1
        assert row["control_messages_delivered"] == (2 * N + 1) * (N - 1)
        checked.append(rnd)

    report = _simulate(check)
    assert checked == [1, 2]
    assert report["all_finalized_one_hash"]
    for row in report["rounds"]:
        assert row["finalized"] and row["aggregate_hash"]
        assert row["accepted"] == N
        # every member commits and attests, one member opens: at least 2N + 1 transactions
        assert row["transactions"] >= 2 * N + 1 and row["gas"] > 0
    assert report["rounds"][0]["aggregate_hash"] != report["rounds"][1]["aggregate_hash"]


@pytest.mark.slow
def test_a_committee_of_four_among_eight_attests_and_every_member_adopts_the_chains_hash() -> None:
    checked: list[int] = []

    def check(row: dict, peers: list[HospitalPeer]) -> None:
        rnd = row["round"]
        ledger = peers[0].ledger
        info = ledger.round_info(rnd)
        assert info.status == "finalized" and info.attest_count == K
        assert row["aggregate_hash"] == info.aggregate_hash.hex()
        drawn = committee_info(ledger, rnd)
        assert drawn.size == K and drawn.key is not None
        seated = {
            p.address
            for p in peers
            if seat_on_chain(ledger, drawn.key, slot_of(ledger, p.address).slot, drawn.domain) < K
        }
        assert len(seated) == K
        assert {p.address for p in peers if ledger.attestation(rnd, p.address)} == seated
        commits = ledger.commitments(rnd)
        assert len(commits) == N  # every member, seated or not, commits its update
        for p in peers:
            held = p.intake.held_blobs(rnd)
            if p.address in seated:  # every other member's update, as committed on chain
                assert set(held) == {q.address for q in peers if q is not p}
                assert all(
                    hashlib.sha256(b).digest() == commits[a].update_hash for a, b in held.items()
                )
            else:  # a follower receives no update, only the aggregate it fetched
                assert not held
            assert parameters_hash(p.global_params) == info.aggregate_hash
        assert row["committee"] == row["attestations"] == K
        roles = row["bytes_by_role"]
        assert roles["committee"]["members"] == K and roles["follower"]["members"] == N - K
        checked.append(rnd)

    report = _simulate(check, committee=K)
    assert checked == [1, 2]
    assert report["all_finalized_one_hash"] and report["config"]["committee"] == K


@pytest.mark.parametrize("committee", [0, N + 1])
def test_a_committee_outside_one_to_n_is_refused_in_one_line(committee: int) -> None:
    with pytest.raises(ValueError, match=r"--committee must be within 1\.\.--peers") as err:
        SimConfig(peers=N, committee=committee)
    assert "\n" not in str(err.value)


def test_a_committee_with_robust_ckks_is_refused_in_one_line(capsys) -> None:
    # ckks with FedAvg runs with a committee (docs/secagg.md#ckks-with-a-committee); with Krum or
    # Multi-Krum a follower never gets the scalars whose row it must check: `medmesh simulate`
    # refuses it before it starts, in one line
    from node.cli import main

    assert SimConfig(peers=N, committee=K, protection="ckks").demo().committee == K
    argv = ["simulate", "--peers", str(N), "--committee", str(K), "--protection", "ckks"]
    assert main([*argv, "--rule", "multi-krum"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not run with a committee" in err and "\n" not in err
    assert SimConfig(peers=N, committee=N, protection="ckks").demo().committee == 0
    assert SimConfig(peers=N, committee=K, protection="secagg", rule="fedavg").demo().committee == K


def test_medmesh_simulate_parses_committee_from_its_own_parser() -> None:
    from node.cli import build_parser

    argv = ["simulate", "--peers", "16", "--committee", "4"]
    args = build_parser(argv).parse_args(argv)
    assert (args.peers, args.committee, args.func.__name__) == (16, 4, "_cmd_simulate")


@pytest.mark.slow
def test_four_real_libp2p_hosts_in_one_process_finalize_on_the_chains_hash() -> None:
    """``--transport libp2p``: every member a real PeerHost on 127.0.0.1, connected to the three
    others, each member's update carried over real streams to the others (checked against the
    hashes committed on chain), and every member adopting the chain's aggregate."""
    n = 4
    checked: list[int] = []

    def check(row: dict, peers: list[HospitalPeer]) -> None:
        rnd, ledger = row["round"], peers[0].ledger
        info = ledger.round_info(rnd)
        assert info.status == "finalized"
        commits = ledger.commitments(rnd)
        for p in peers:
            assert isinstance(p.host, PeerHost) and len(p.host.connected_peers()) == n - 1
            held = p.intake.held_blobs(rnd)
            assert set(held) == {q.address for q in peers if q is not p}
            assert all(
                hashlib.sha256(b).digest() == commits[a].update_hash for a, b in held.items()
            )
            assert parameters_hash(p.global_params) == info.aggregate_hash
        checked.append(rnd)

    report = simulate(
        SimConfig(peers=n, rounds=1, params=PARAMS, rows=16, transport="libp2p"), check
    )
    assert checked == [1] and report["all_finalized_one_hash"] and report["connect_s"] > 0


@pytest.mark.slow
def test_sixteen_real_libp2p_hosts_on_a_partial_graph_finalize() -> None:
    """``--transport libp2p`` past ``DIAL_DEGREE + 1`` members: each host dials or accepts about
    ``DIAL_DEGREE`` others (GossipSub runs over that graph), the committee seats drawn on chain
    are reached by dials made on demand, each seat holds every other member's update as
    committed on chain, and every member adopts the chain's aggregate."""
    n, k = 16, committee_size(16, 1)
    assert n - 1 > DIAL_DEGREE
    checked: list[int] = []

    def check(row: dict, peers: list[HospitalPeer]) -> None:
        rnd, ledger = row["round"], peers[0].ledger
        info = ledger.round_info(rnd)
        assert info.status == "finalized" and row["aggregate_hash"] == info.aggregate_hash.hex()
        drawn = committee_info(ledger, rnd)
        seated = {
            p.address
            for p in peers
            if seat_on_chain(ledger, drawn.key, slot_of(ledger, p.address).slot, drawn.domain) < k
        }
        assert len(seated) == k
        commits = ledger.commitments(rnd)
        for p in peers:
            assert isinstance(p.host, PeerHost)
            held = p.intake.held_blobs(rnd)
            if p.address in seated:
                assert set(held) == {q.address for q in peers if q is not p}
                assert all(
                    hashlib.sha256(b).digest() == commits[a].update_hash for a, b in held.items()
                )
            else:  # its planned links and the seats it sent to and fetched from, no more
                assert not held and len(p.host.connected_peers()) <= DIAL_DEGREE + k < n - 1
            assert parameters_hash(p.global_params) == info.aggregate_hash
        checked.append(rnd)

    report = simulate(
        SimConfig(peers=n, committee=k, rounds=1, params=PARAMS, rows=16, transport="libp2p"),
        check,
    )
    assert checked == [1] and report["all_finalized_one_hash"]


def test_an_unknown_transport_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError) as err:
        SimConfig(peers=N, transport="carrier-pigeon")
    assert str(err.value) == "--transport must be one of memory, libp2p, got 'carrier-pigeon'"


def test_more_members_than_a_round_takes_commitments_are_refused_in_one_line() -> None:
    w3 = connect()
    deployment = deploy(w3, dev_account(w3))
    limit = LedgerClient(w3, deployment).round_ledger.functions.MAX_COMMITTERS().call()
    assert limit == MAX_PEERS  # the simulator's bound is the contract's
    SimConfig(peers=MAX_PEERS, committee=4)
    with pytest.raises(ValueError, match=r"--peers must be at most 224.*MAX_COMMITTERS") as err:
        SimConfig(peers=MAX_PEERS + 1, committee=4)
    assert "\n" not in str(err.value)
