"""Hospitals on separate networks: four real ``medmesh node run`` processes, each in its own
network namespace behind a WAN link (100 Mbit/s, 50 ms RTT, 1 % loss), and anvil in a namespace
of its own (tests/netlab/lab.py draws the topology). One campaign runs through the module:

1. WAN: three rounds finalize, every member attests the one hash;
2. minority partition: one hospital is cut off from the others for two rounds;
3. even split 2 | 2: nothing finalizes, the round fails at its deadline, then the campaign resumes;
4. the chain unreachable for 30 s: nodes retry with backoff, no crash, no double commit;
5. a thin link: one hospital at 10 Mbit/s.

The model is the default logistic regression (31 parameters), so each scenario takes well under a
minute here; scripts/bench_netlab.py runs the 1M-parameter model across bandwidths and RTTs.
Every wait is on a node's JSON log event or the chain's state (polled), never a bare sleep.
"""

from __future__ import annotations

import pytest
from node_support import wait_chain

from netlab.campaign import (
    OVERRIDES,
    ROUND_S,
    WINDOWS,
    attesters,
    chain_round,
    reader,
    status,
    wait_caught_up,
    wait_finalized,
)
from netlab.consortium import running_lab
from netlab.lab import CHAIN, LinkSpec

pytestmark = [pytest.mark.slow, pytest.mark.anvil]


@pytest.fixture(scope="module")
def net(make_lab, tmp_path_factory):
    lab = make_lab(4, rtt_ms=50, link=LinkSpec(mbit=100, loss=1.0))
    with running_lab(lab, tmp_path_factory.mktemp("netlab"), WINDOWS, OVERRIDES) as net:
        yield net


def test_wan_three_rounds_one_hash(net):
    for proc in net.procs.values():
        proc.wait_for(
            lambda e: e["event"] == "round_done" and e["round"] == 3, 4 * ROUND_S, "round 3"
        )
    for round_ in (1, 2, 3):
        info = reader(net).round_info(round_)
        assert info.status == "finalized", f"round {round_}: {info.status}"
        assert attesters(net, round_) == {name: info.aggregate_hash for name in net.names}
    for name in net.names:
        wait_caught_up(net, name, 3, ROUND_S)


def test_minority_partition(net):
    cut = "hospital-d"
    majority = [n for n in net.names if n != cut]
    start = chain_round(net)
    net.lab.partition(majority, [cut])
    try:
        first = wait_finalized(net, start, 2 * ROUND_S)
        second = wait_finalized(net, first, 2 * ROUND_S)
    finally:
        net.lab.heal()
    for round_ in (first, second):
        info = reader(net).round_info(round_)
        votes = attesters(net, round_)
        assert {n for n, digest in votes.items() if digest == info.aggregate_hash} == set(majority)
        # the cut-off node put its name to no other aggregate, and accused no one of withholding
        assert cut not in votes, (
            f"round {round_}: the cut-off node attested {votes[cut].hex()[:12]}"
        )
        for name in majority:
            assert reader(net).rejection_count(round_, net.identities[name].address) == 0, name
    wait_caught_up(net, cut, second, 2 * ROUND_S)
    for name in net.names:
        assert net.procs[name].proc.poll() is None, f"{name} exited"


def test_even_split_fails_the_round_then_resumes(net):
    start = chain_round(net)
    net.lab.partition(["hospital-a", "hospital-b"], ["hospital-c", "hospital-d"])
    try:
        failed = wait_chain(
            lambda: next(
                (r for r in range(start + 1, chain_round(net) + 1) if status(net, r) == "failed"),
                None,
            ),
            3 * ROUND_S,
            "a failed round",
        )
        assert not [
            r for r in range(start + 1, chain_round(net) + 1) if status(net, r) == "finalized"
        ]
    finally:
        net.lab.heal()
    resumed = wait_finalized(net, failed, 3 * ROUND_S)
    for name in net.names:
        wait_caught_up(net, name, resumed, 2 * ROUND_S)


def test_chain_unreachable_for_30_s(net):
    """The chain's RPC refuses connections for 30 s (a dropped link instead only stalls the nodes'
    calls, each bounded by the RPC client's 30 s timeout)."""
    start = chain_round(net)
    marks = {n: p.mark() for n, p in net.procs.items()}
    net.lab.refuse(CHAIN)
    net.lab.at(30.0, net.lab.heal)
    for name, proc in net.procs.items():
        proc.wait_for(
            lambda e: e["event"] == "chain_unreachable", 60, "chain_unreachable", since=marks[name]
        )
    wait_finalized(net, start, 30 + 3 * ROUND_S)
    for name, proc in net.procs.items():
        assert proc.proc.poll() is None, f"{name} exited"
        retries = proc.find(lambda e: e["event"] == "chain_unreachable")
        delays = [e["retry_in"] for e in retries[-5:]]
        assert delays == sorted(delays), f"{name}: retry delays do not back off: {delays}"
    for name, proc in net.procs.items():  # no node committed twice in any round
        commits = [
            e["round"] for e in proc.events if str(e.get("msg", "")).startswith("committed update")
        ]
        assert len(commits) == len(set(commits)), f"{name} committed twice: {sorted(commits)}"


def test_thin_link_finalizes_and_catches_up(net):
    thin = "hospital-d"
    net.lab.set_link(thin, LinkSpec(mbit=10, loss=1.0))
    try:
        start = chain_round(net)
        done = wait_finalized(net, start, 2 * ROUND_S)
        info = reader(net).round_info(done)
        address = net.identities[thin].address
        votes = [reader(net).attestation(done, i.address) for i in net.identities.values()]
        accepted = {
            a.lower()
            for v in votes
            if v is not None and v.aggregate_hash == info.aggregate_hash
            for a in v.accepted
        }
        # its update is in the finalized aggregate, or it is left out and the chain says so: no
        # commitment from it, or its committed update recorded as rejected
        assert (
            address.lower() in accepted
            or address not in reader(net).commitments(done)
            or reader(net).rejection_count(done, address) > 0
        )
        nxt = wait_finalized(net, done, 2 * ROUND_S)
        wait_caught_up(net, thin, nxt, 2 * ROUND_S)
    finally:
        net.lab.set_link(thin, LinkSpec(mbit=100, loss=1.0))
