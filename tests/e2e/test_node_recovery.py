"""Issue 17: what hospitals do to their nodes, against real `medmesh node run` processes.

One campaign of four nodes on anvil, planned for ``PLANNED`` rounds, runs through the module:
1. a second `node run` on a busy port exits at once with one line (17.12);
2. hospital-d gets SIGTERM and ends promptly (17.13); its whole state directory is then lost:
   `node run` refuses, in one line, to run below the ε the chain records for it (17.2); with
   ``--restore-privacy-from-chain`` it rebuilds its ledger at or above that ε, fetches the
   agreed standardizer from a majority of members and the model by its chain hash, and
   attests with all the others again (17.3: a node with an empty state dir rejoins);
3. hospital-c is killed and restarted over a torn version-1 state pair (params.npy newer than
   state.json): it keeps its rounds, fetches the chain's model by hash and attests again (17.3);
4. hospital-e, admitted by endorsement after the start, fetches the standardizer and the model
   and attests with all the others (17.4);
5. after their planned rounds, hospital-a and hospital-b stop on their own with status 0 and
   say so (17.9); the three left (which missed rounds) cannot reach the chain's quorum, so
   they wait and spend no ε (17.8);
6. a chain reset under the running nodes stops them with one line (17.7).

Waits are budgeted in rounds and start-ups measured on this run (node_support.Pace).
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from node_support import Pace, running_net, wait_chain

from ledger import ContractRevert, LedgerError
from ledger.tx import RECEIPT_TIMEOUT_S
from node.service.localnet import REPO_ROOT, LocalNet

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

PLANNED = 40  # rounds the DP noise is calibrated for: each node's budget ends after them
COMMIT_WINDOW = ATTEST_WINDOW = 20
OVERRIDES = {
    "rounds": {
        "round_timeout": 5.0,
        "open_fallback": 1.5,
        "attest_grace": 3.0,
        "poll_interval": 0.25,
        "join_margin": 3.0,
        "setup_timeout": 90.0,
    },
    "privacy": {"rounds": PLANNED},
    "gossip": {"reconnect_initial": 0.25, "reconnect_max": 2.0},
}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with running_net(tmp_path_factory.mktemp("recovery"), COMMIT_WINDOW, OVERRIDES) as net:
        yield net


@pytest.fixture(scope="module")
def pace(net):
    pace = Pace(net)
    pace.started()
    return pace


def run_cli(net: LocalNet, name: str, *extra: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "node.cli",
            "node",
            "run",
            "--config",
            str(net.configs[name]),
            *extra,
        ],
        cwd=REPO_ROOT,
        env=net.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def attesters(net: LocalNet, round_: int, aggregate: bytes) -> set[str]:
    reader = net.client("hospital-a")
    return {
        name
        for name, ident in net.identities.items()
        if (att := reader.attestation(round_, ident.address)) is not None
        and att.aggregate_hash == aggregate
    }


def rejoined_with_all(net: LocalNet, name: str, since: int):
    """A round after ``since`` in which ``name`` committed and which finalized with every node
    attesting its hash (on a loaded machine a node may miss a round's commit window and only attest)."""
    reader = net.client("hospital-a")
    for event in net.procs[name].find(lambda e: e["event"] == "round_done" and e["finalized"]):
        info = reader.round_info(event["round"])
        if (
            event["round"] > since
            and info.status == "finalized"
            and reader.commitment(event["round"], net.identities[name].address) is not None
            and attesters(net, event["round"], info.aggregate_hash) == set(net.names)
        ):
            return event["round"]
    return None


def chain_epsilon(net: LocalNet, name: str) -> float:
    """The highest ε ``name`` committed, read round by round from the chain."""
    reader, address = net.client("hospital-a"), net.identities[name].address
    found = [
        c.epsilon
        for r in range(1, reader.current_round() + 1)
        if (c := reader.commitment(r, address)) is not None
    ]
    return max(found, default=0.0)


def test_campaign_starts_and_a_busy_port_is_one_line(net, pace):
    for proc in net.procs.values():
        proc.wait_for(
            lambda e: e["event"] == "round_done" and e["round"] >= 2 and e["finalized"],
            pace.rounds(2),
            "round 2",
        )
    out = run_cli(
        net, "hospital-a", timeout=pace.restart()
    )  # hospital-a's own port is taken by hospital-a
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "[node].listen" in lines[0] and "cannot listen" in lines[0], (
        out.stderr
    )
    # the running hospital-a was not disturbed
    assert net.procs["hospital-a"].proc.poll() is None


def test_lost_state_dir_refuses_below_chain_epsilon_then_restores_and_rejoins(net, pace):
    name = "hospital-d"
    proc = net.procs[name]
    proc.wait_for(
        lambda e: e["event"] == "round_joined",
        pace.rounds(1),
        "a round starting",
        since=proc.mark(),
    )
    sent = time.time()  # the events' clock
    proc.proc.send_signal(signal.SIGTERM)
    # the node leaves its round, saves its state and logs ``exited`` promptly; the interpreter's
    # own teardown after that only needs CPU (beside two burners it took over 30 s)
    code = proc.proc.wait(pace.restart())
    exited = proc.wait_for(lambda e: e["event"] == "exited", 5, "exited")
    assert exited["ts"] - sent < 10, "SIGTERM took longer than 10 s to end the node"
    assert code == 0
    floor = chain_epsilon(net, name)
    assert floor > 0
    shutil.rmtree(net.root / name / "state")  # privacy.json, state.json: all of it

    out = run_cli(net, name, timeout=pace.restart())
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "the chain records epsilon" in lines[0] and f"{floor:.6f}" in lines[0]
    ), out.stderr

    since = net.client("hospital-a").current_round()
    back = net.start(name, "--restore-privacy-from-chain")
    restored = back.wait_for(
        lambda e: e["event"] == "privacy_restored", pace.restart(), "privacy restored"
    )
    assert restored["epsilon"] >= floor - 1e-6 and restored["chain_epsilon"] == pytest.approx(floor)
    started = back.wait_for(lambda e: e["event"] == "started", pace.restart(), "start")
    assert started["epsilon"] >= floor - 1e-6
    back.wait_for(
        lambda e: e["event"] == "standardizer_fetched", pace.rounds(1), "the standardizer"
    )
    ours = json.loads((net.root / name / "state" / "state.json").read_text())["standardizer"]
    theirs = json.loads((net.root / "hospital-a" / "state" / "state.json").read_text())[
        "standardizer"
    ]
    assert ours == theirs
    round_ = wait_chain(
        lambda: rejoined_with_all(net, name, since),
        pace.rounds(3),
        f"{name} attesting with all the others",
    )
    assert net.client("hospital-a").commitment(round_, net.identities[name].address).epsilon > floor


def test_torn_state_pair_recovers_the_model_by_chain_hash(net, pace):
    name = "hospital-c"
    proc = net.procs[name]
    proc.wait_for(
        lambda e: e["event"] == "round_joined",
        pace.rounds(1),
        "a round starting",
        since=proc.mark(),
    )
    proc.kill()
    state_dir = net.root / name / "state"
    stored = json.loads((state_dir / "state.json").read_text())
    params = np.frombuffer(base64.b64decode(stored.pop("params")), dtype="<f4")
    # the version-1 layout, torn: params.npy already the next round's, state.json still the old
    stored["version"] = 1
    (state_dir / "state.json").write_text(json.dumps(stored))
    np.save(state_dir / "params.npy", params + 0.5)

    since = net.client("hospital-a").current_round()
    back = net.start(name)
    recovered = back.wait_for(
        lambda e: e["event"] == "state_recovered", pace.restart(), "state recovery"
    )
    assert "hash" in recovered["reason"]
    started = back.wait_for(lambda e: e["event"] == "started", pace.restart(), "start")
    assert started["completed_round"] == stored["completed_round"]
    caught = back.wait_for(lambda e: e["event"] == "caught_up", pace.rounds(1), "catch-up")
    info = net.client("hospital-a").round_info(caught["round"])
    assert bytes.fromhex(caught["params_hash"]) == info.aggregate_hash
    wait_chain(
        lambda: rejoined_with_all(net, name, since),
        pace.rounds(3),
        f"{name} attesting with all the others",
    )


def test_member_admitted_by_endorsement_runs_with_the_others(net, pace):
    """Issue 17.4: a hospital admitted after the consortium started fetches the agreed
    standardizer and the current model, and takes part like the others."""
    name = "hospital-e"
    pending = net.add_member(name, site=0)
    assert pending["status"] == "pending"
    address = net.identities[name].address
    reader = net.client("hospital-a")
    for member in ("hospital-a", "hospital-b", "hospital-c", "hospital-d"):
        if reader.endorsements(address) >= reader.endorsements_needed():
            break
        for attempt in range(3):
            try:
                net.client(member).endorse(address)
                break
            except ContractRevert:
                raise
            except LedgerError:  # the member's own node sent a transaction with the same nonce
                if attempt == 2:
                    raise
    assert net.admit(name)["status"] == "active"
    since = reader.current_round()
    late = net.start(name)
    late.wait_for(
        lambda e: e["event"] == "standardizer_fetched",
        pace.restart() + pace.rounds(1),
        "the agreed standardizer",
    )
    ours = json.loads((net.root / name / "state" / "state.json").read_text())["standardizer"]
    assert (
        ours
        == json.loads((net.root / "hospital-a" / "state" / "state.json").read_text())[
            "standardizer"
        ]
    )
    round_ = wait_chain(
        lambda: rejoined_with_all(net, name, since),
        pace.rounds(3),
        f"{name} attesting with all the others",
    )
    assert reader.commitment(round_, address) is not None


def test_planned_rounds_end_nodes_stop_and_the_rest_never_train_alone(net, pace):
    def stops_on_its_own(name: str) -> None:
        joined = net.procs[name].find(lambda e: e["event"] == "round_joined" and not e["vote_only"])
        done = net.procs[name].wait_for(
            lambda e: e["event"] == "campaign_done",
            pace.rounds(max(PLANNED - len(joined), 1)),  # the rounds its budget has left
            "the campaign's end",
        )
        assert done["action"] == "stop" and done["epsilon"] <= 1.0 * (1 + 1e-3)
        assert net.procs[name].proc.wait(pace.restart()) == 0
        stopped = net.procs[name].find(lambda e: e["event"] == "stopped")
        assert stopped and "campaign done" in stopped[0]["reason"]

    for name in ("hospital-a", "hospital-b"):
        stops_on_its_own(name)
    last = max(
        net.procs[n].find(lambda e: e["event"] == "round_done")[-1]["round"]
        for n in ("hospital-a", "hospital-b")
    )
    reader = net.client("hospital-a")
    num, den = reader.ledger_config()["quorum"]
    waited = []
    for name in (
        "hospital-c",
        "hospital-d",
        "hospital-e",
    ):  # those that missed rounds have budget left
        proc = net.procs[name]
        event = proc.wait_for(
            lambda e: (
                e["event"] == "campaign_done"
                or (e["event"] == "waiting_for_members" and e["round"] > last)
            ),
            pace.rounds(2),
            "its end or a wait for members",
        )
        if event["event"] == "campaign_done":
            stops_on_its_own(name)
            continue
        waited.append(name)
        assert (
            event["need"] == -(-reader.active_count() * num // den)
            and event["reachable"] < event["need"]
        )
        eps = json.loads((net.root / name / "state" / "privacy.json").read_text())["epsilon"]
        assert eps == pytest.approx(event["epsilon"]) and eps < 1.0
        assert reader.commitment(event["round"], net.identities[name].address) is None
        assert not proc.find(
            lambda e, event=event: e["event"] == "round_joined" and e["round"] >= event["round"]
        )
    assert "hospital-e" in waited  # admitted last: it cannot have spent its budget
    for proc in net.procs.values():  # 17.15: a round that did not finalize says why
        assert all(
            e["error"]
            for e in proc.find(lambda e: e["event"] == "round_done" and not e["finalized"])
        )


def test_a_member_cannot_park_blobs_for_other_rounds(net):
    """Issue 17.10: blobs are held only for the chain's current and next round. A registered member
    (hospital-a's identity, its node stopped) sends sealed, signed blobs for rounds ahead."""
    import trio

    from gossip import BlobRejected, PeerHost
    from node.crypto.sealing import Recipient, SealContext, seal

    target = next(
        n for n in ("hospital-c", "hospital-d", "hospital-e") if net.procs[n].proc.poll() is None
    )
    me, them = net.identities["hospital-a"], net.identities[target]
    chain_round = net.client("hospital-a").current_round()
    outcome: dict[int, str] = {}

    async def park() -> None:
        host = PeerHost(me.libp2p_seed, authorize=None)
        async with host.running():
            await host.connect(net.multiaddrs[target])
            for round_ in (chain_round + 3, chain_round + 50):
                ctx = SealContext(
                    net.deployment.chain_id,
                    net.deployment.addresses["RoundLedger"],
                    round_,
                    me.address.lower(),
                )
                blob = seal(
                    b"x" * 200_000,
                    ctx,
                    me.sign_private,
                    [Recipient(them.address, them.seal_public)],
                )
                try:
                    await host.send_blob(target_peer(net, target), blob, kind="update", timeout=20)
                    outcome[round_] = "accepted"
                except BlobRejected as exc:
                    outcome[round_] = f"rejected: {exc}"

    trio.run(park)
    assert all(v.startswith("rejected") for v in outcome.values()), outcome


def target_peer(net: LocalNet, name: str) -> str:
    return net.multiaddrs[name].rsplit("/p2p/", 1)[1]


def test_chain_reset_is_reported_in_one_line_and_stops_the_node(net, pace):
    """Issue 17.7: a new chain on the same RPC (anvil_reset) is detected, not silently sat out."""
    left = [
        n for n in ("hospital-c", "hospital-d", "hospital-e") if net.procs[n].proc.poll() is None
    ]
    assert left
    marks = {n: net.procs[n].mark() for n in left}
    net.w3.provider.make_request("anvil_reset", [])
    for name in left:
        proc = net.procs[name]
        # a node notices the reset between chain calls; one with a transaction in flight (the
        # parking member above counts as reachable, so a node may be mid-round) first waits out
        # that transaction's receipt
        stopped = proc.wait_for(
            lambda e: e["event"] == "stopped",
            RECEIPT_TIMEOUT_S + pace.rounds(1),
            "the reset being noticed",
            since=marks[name],
        )
        assert "was reset" in stopped["reason"] and "\n" not in stopped["reason"]
        assert proc.proc.wait(pace.restart()) == 4
