"""Hospital nodes as real OS processes: `medmesh node run` x 4 plus anvil on 127.0.0.1.

One campaign runs through the module, in order:
1. the four nodes complete three rounds, and every one of them attested the finalized hash;
2. an unregistered intruder (a valid libp2p identity) gets no message or blob accepted;
3. a node killed mid-round: the others finalize that round and the next; it restarts with
   the same identity, its privacy ledger and its model, and attests with the others again;
4. a node revoked on chain (registry voteSanction) is cut off from the next round.

Every wait is on an event: a JSON log line of a node, or the chain's state (polled), with a
budget in rounds or start-ups measured on this run (node_support.Pace).
"""

from __future__ import annotations

import base64
import json
import os
import re

import numpy as np
import pytest
import trio
from node_support import Pace, params_hash, running_net, wait_chain

from gossip import GossipError, PeerHost
from ledger import ContractRevert, LedgerError
from ledger.anchors import read_record
from node.consensus import protocol
from node.service.localnet import LocalNet

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

ROUND_TIMEOUT = 5.0
COMMIT_WINDOW = 20  # seconds, on the chain's clock (and as long to attest)
OVERRIDES = {
    "rounds": {
        "round_timeout": ROUND_TIMEOUT,
        "open_fallback": 1.5,
        "attest_grace": 5.0,
        "poll_interval": 0.25,
        "join_margin": 3.0,
    },
    "privacy": {"rounds": 40},  # the noise is calibrated for a campaign longer than this test
    "gossip": {"reconnect_initial": 0.25, "reconnect_max": 2.0},
}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with running_net(tmp_path_factory.mktemp("nodes"), COMMIT_WINDOW, OVERRIDES) as net:
        yield net


@pytest.fixture(scope="module")
def pace(net):
    pace = Pace(net)
    pace.started()
    return pace


def finalized(net: LocalNet, round_: int):
    info = net.client("hospital-a").round_info(round_)
    return info if info.status == "finalized" else None


def attesters(net: LocalNet, round_: int, aggregate: bytes) -> set[str]:
    """Names of the nodes whose on-chain attestation of ``round_`` carries ``aggregate``."""
    reader = net.client("hospital-a")
    names = set()
    for name, ident in net.identities.items():
        att = reader.attestation(round_, ident.address)
        if att is not None and att.aggregate_hash == aggregate:
            names.add(name)
    return names


def test_four_processes_finish_three_rounds_with_one_aggregate(net, pace, capsys):
    for proc in net.procs.values():
        proc.wait_for(
            lambda e: e["event"] == "round_done" and e["round"] == 3, pace.rounds(3), "round 3"
        )
    for round_ in (1, 2, 3):
        info = finalized(net, round_)
        assert info is not None, f"round {round_} not finalized"
        assert attesters(net, round_, info.aggregate_hash) == set(net.names)
    # each node's persisted model is the chain's aggregate of the round it names
    for name in net.names:
        state = json.loads((net.root / name / "state" / "state.json").read_text())
        params = np.frombuffer(
            base64.b64decode(state["params"]), dtype="<f4"
        )  # one atomic file (issue 17.3)
        assert state["params_round"] >= 3
        assert params_hash(params) == finalized(net, state["params_round"]).aggregate_hash
        # and its signed attestations, each anchoring the history it saw (ledger.anchors)
        for round_ in (1, 2, 3):
            record = read_record(
                net.root / name / "state" / "attestations" / f"round-{round_}.json"
            )
            assert (
                record.round == round_
                and record.aggregate_hash == finalized(net, round_).aggregate_hash
            )
    from node.cli import main

    assert main(["node", "status", "--config", str(net.configs["hospital-b"]), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["registry_status"] == "active" and status["completed_round"] >= 3
    assert (
        status["epsilon_spent"] > 0
        and status["peer_id"] == net.multiaddrs["hospital-b"].rsplit("/", 1)[1]
    )
    # issue 14: the cohort registered is a ceiling above the node's row count (issue 15 §2: never N
    # itself); its budget and spend are on chain
    from node.service.config import load_config
    from node.service.sources import load_training_data

    cfg = load_config(net.configs["hospital-b"])
    from node.learning.privacy import cohort_ceiling

    assert (
        status["cohort"]
        == cohort_ceiling(len(load_training_data(cfg.data)))
        > len(load_training_data(cfg.data))
    )
    assert status["privacy_budget_on_chain"]["epsilon"] == pytest.approx(
        cfg.privacy.epsilon * 1.001
    )
    assert status["privacy_budget_on_chain"]["accountant"] == cfg.privacy.accountant
    assert 0 < status["epsilon_on_chain"] <= status["epsilon_spent"] + 1e-6


def test_unregistered_intruder_is_refused(net, pace):
    target = net.procs["hospital-a"]
    addr = net.multiaddrs["hospital-a"]
    outcome: dict[str, object] = {}

    async def intrude() -> None:
        host = PeerHost(os.urandom(32), authorize=None)  # a valid identity, on no chain
        outcome["peer_id"] = host.peer_id
        async with host.running():
            try:
                await host.connect(addr)
            except GossipError as exc:
                outcome["connect"] = str(exc)
            forged = protocol.encode(
                protocol.RoundOpened(999, net.identities["hospital-b"].address)
            )
            await host.publish(protocol.ROUND_TOPIC, forged)
            try:
                await host.send_blob(target_peer_id(addr), b"x" * 1000, kind="update", timeout=10)
                outcome["blob"] = "accepted"
            except GossipError as exc:
                outcome["blob"] = f"refused: {exc}"

    trio.run(intrude)
    assert str(outcome["blob"]).startswith("refused"), outcome
    short = str(outcome["peer_id"])[-8:]
    target.wait_for(
        lambda e: (
            e["event"] == "log" and "not authorized" in e.get("msg", "") and short in e["msg"]
        ),
        30,
        "refusal of the intruder",
    )
    done = target.wait_for(
        lambda e: (
            e["event"] == "round_done" and e["streams_refused"] + e["connections_refused"] >= 1
        ),
        pace.rounds(1),
        "a round counting the refused connection or streams",
    )
    # nothing acted on the forged round: no event is about round 999 (a bare "999" may occur in
    # a hash or a peer ID, so the round field and the word "round 999" are what count)
    acted = [
        e
        for e in target.events
        if e.get("round") == 999 or re.search(r"\bround 999\b", str(e.get("msg", "")))
    ]
    assert done["control_rejected"] >= 0 and acted == [], acted
    # no blob from it was received by anyone
    assert not any(
        short in e.get("msg", "") and "received blob" in e.get("msg", "")
        for p in net.procs.values()
        for e in p.events
    )


def target_peer_id(multiaddr: str) -> str:
    return multiaddr.rsplit("/p2p/", 1)[1]


def test_killed_node_others_go_on_and_it_rejoins(net, pace):
    victim, reader = "hospital-d", net.client("hospital-a")
    address = net.identities[victim].address
    proc = net.procs[victim]
    started = proc.find(lambda e: e["event"] == "started")[0]

    # kill it as soon as it starts a round's work, before it commits: a node that dies after
    # delivering its blob to some peers but not others splits their votes (the round then fails)
    watcher = net.procs["hospital-a"]
    joined = proc.wait_for(
        lambda e: e["event"] == "round_joined",
        pace.rounds(1),
        "a round starting",
        since=proc.mark(),
    )
    killed_at = watcher.mark()
    proc.kill()
    killed_in = joined["round"]
    eps_at_kill = json.loads((net.root / victim / "state" / "privacy.json").read_text())["epsilon"]

    survivors = [n for n in net.names if n != victim]
    for round_ in (killed_in, killed_in + 1):
        info = wait_chain(
            lambda round_=round_: finalized(net, round_),
            pace.rounds(1),
            f"round {round_} finalized",
        )
        assert set(survivors) <= attesters(net, round_, info.aggregate_hash)
    assert reader.commitment(killed_in + 1, address) is None
    watcher.wait_for(
        lambda e: e["event"] == "peer_left" and e["peer_id"] == started["peer_id"],
        30,
        "noticing the departure",
        since=killed_at,
    )

    restarted = net.start(victim)
    back = restarted.wait_for(lambda e: e["event"] == "started", pace.restart(), "restart")
    assert back["resumed"] is True and back["peer_id"] == started["peer_id"]
    assert back["epsilon"] == pytest.approx(eps_at_kill, rel=1e-9)  # the privacy ledger survived
    assert back["completed_round"] == killed_in - 1

    # it rejoins: a later round where it commits with a larger epsilon and all four attest one
    # hash (it may restart mid-round and miss the next round's commit window too)
    def rejoined():
        for event in restarted.find(lambda e: e["event"] == "round_done" and e["finalized"]):
            r = event["round"]
            info = finalized(net, r)
            if info and attesters(net, r, info.aggregate_hash) == set(net.names):
                return r
        return None

    round_ = wait_chain(
        rejoined, pace.rounds(3), f"{victim} attesting with all the others after its restart"
    )
    assert (
        reader.commitment(round_, address).epsilon > eps_at_kill
    )  # spending goes on from the ledger


def test_revoked_peer_is_cut_off_from_the_next_round(net, pace):
    revoked = "hospital-c"
    address = net.identities[revoked].address
    voters = [n for n in net.names if n != revoked]
    reader = net.client("hospital-a")
    # revoke a node that is running rounds (run alone, this test would otherwise revoke it before
    # its set-up ends, and it would refuse to start instead of stopping)
    net.procs[revoked].wait_for(
        lambda e: e["event"] == "round_joined", pace.rounds(2), "the node joining a round"
    )
    for name in voters:  # more than 2/3 of the Active members, the target counted: all three others
        if reader.identity(address).status == "revoked":
            break
        for attempt in range(3):
            try:
                net.client(name).revoke(address)
                break
            except ContractRevert:
                raise
            except LedgerError:  # the voter's own node sent a transaction with the same nonce
                if attempt == 2:
                    raise
    assert reader.identity(address).status == "revoked"
    revoked_at = reader.current_round()

    gone = net.procs[revoked].wait_for(
        lambda e: e["event"] == "stopped", pace.rounds(1), "the revoked node stopping"
    )
    assert "revoked" in gone["reason"]
    assert net.procs[revoked].proc.wait(pace.restart()) == 3

    next_round = revoked_at + 1
    # The round in flight when the revocation landed may be stuck waiting for the revoked peer; it
    # is failed only at its attestation deadline (both windows after it opened: Pace's least
    # round), and then the next round runs in full.
    info = wait_chain(
        lambda: finalized(net, next_round), pace.rounds(2), f"round {next_round} finalized"
    )
    assert reader.commitment(next_round, address) is None
    assert attesters(net, next_round, info.aggregate_hash) == set(voters)
    for name in voters:
        assert address not in reader.attestation(next_round, net.identities[name].address).accepted
