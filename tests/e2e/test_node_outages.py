"""Issue 17.5, 17.6, 17.7 and 17.15: outages, against four real `medmesh node run` processes on anvil.

The nodes reach anvil through a TCP relay in this test (:class:`node_support.TcpRelay`), so
the chain's RPC endpoint can be made unreachable and brought back.

1. Two nodes frozen (SIGSTOP) between two rounds come back (SIGCONT) after the two others
   attested the next round without them: the returning pair must not split that round.
   Before the fix they voted for their own aggregate (all four updates) against the pair
   already attested (two updates): 2 votes against 2, and the round failed at its deadline.
2. One node frozen: the three others finish the round without waiting on their sends to it.
3. The RPC endpoint is unreachable for 9 s: every node logs its retries, none exits, none
   commits twice in a round, and the campaign finalizes again with all four.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from node_support import Pace, TcpRelay, running_net, wait_chain

from node.peer.reveal import CLOCK_SLACK_S
from node.service.localnet import LocalNet

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

WINDOWS = 40  # commit and attest windows: the returning pair must still be able to commit
OUTAGE_S = 9.0  # the RPC outage
OVERRIDES = {
    "rounds": {
        "round_timeout": 5.0,
        "open_fallback": 1.5,
        "attest_grace": 3.0,
        "poll_interval": 0.25,
        "join_margin": 3.0,
        "setup_timeout": 90.0,
    },
    "privacy": {"rounds": 40},
    "gossip": {"reconnect_initial": 0.25, "reconnect_max": 2.0},
}


@pytest.fixture(scope="module")
def relay():
    return TcpRelay(0)


@pytest.fixture(scope="module")
def net(tmp_path_factory, relay):
    with running_net(tmp_path_factory.mktemp("outages"), WINDOWS, OVERRIDES, relay=relay) as net:
        pace = Pace(net)
        pace.started()
        for proc in net.procs.values():
            proc.wait_for(
                lambda e: e["event"] == "round_done" and e["finalized"] and e["round"] >= 2,
                pace.rounds(2),
                "round 2",
            )
        yield net


def attest_hashes(net: LocalNet, round_: int) -> Counter:
    reader = net.client("hospital-a")
    return Counter(
        att.aggregate_hash.hex()
        for ident in net.identities.values()
        if (att := reader.attestation(round_, ident.address)) is not None
    )


def one_hash_per_finalized_round(net: LocalNet) -> None:
    reader = net.client("hospital-a")
    for round_ in range(1, reader.current_round() + 1):
        if reader.round_info(round_).status == "finalized":
            hashes = attest_hashes(net, round_)
            assert len(hashes) == 1, (
                f"round {round_} finalized with attestations split over {dict(hashes)}"
            )


def freeze_between_rounds(net: LocalNet, names: tuple[str, ...]) -> int:
    """SIGSTOP ``names`` once the current round has closed on chain; the last round open at the
    stop. The next round may already have opened (its opener is one block behind the close)
    and they may have committed to it before the stop: only a round opened after the stop,
    one above the returned number, is certain to be without them."""
    reader = net.client("hospital-a")
    k = reader.current_round()
    wait_chain(lambda: reader.round_info(k).status != "open", 3 * WINDOWS, f"round {k} closed")
    for name in names:
        net.procs[name].proc.send_signal(signal.SIGSTOP)
    return reader.current_round()  # read after the stop


def test_nodes_back_from_an_outage_adopt_the_attested_pair(net):
    reader = net.client("hospital-a")
    frozen = ("hospital-c", "hospital-d")
    k = freeze_between_rounds(net, frozen)
    try:
        r = wait_chain(
            lambda: reader.current_round() > k and reader.current_round(),
            3 * WINDOWS,
            f"round {k + 1} open",
        )
        for name in ("hospital-a", "hospital-b"):
            # the pair holds its blobs until the commit window closes (node.peer.reveal), then takes its two waits
            done = net.procs[name].wait_for(
                lambda e: e["event"] == "round_done" and e["round"] == r,
                WINDOWS + CLOCK_SLACK_S + 60,
                f"round {r} without the frozen pair",
            )
            assert not done["finalized"]  # 2 of 4 attested: no quorum
        assert reader.commitment(r, net.identities["hospital-c"].address) is None
    finally:
        for name in frozen:
            net.procs[name].proc.send_signal(signal.SIGCONT)
    info = wait_chain(
        lambda: (i := reader.round_info(r)).status != "open" and i, 3 * WINDOWS, f"round {r} closed"
    )
    joined = [
        n
        for n in frozen
        if net.procs[n].find(lambda e: e["event"] == "round_joined" and e["round"] == r)
    ]
    assert joined, f"neither frozen node joined round {r} after SIGCONT: nothing was tested"
    assert info.status == "finalized", (
        f"round {r} {info.status}: votes {dict(attest_hashes(net, r))}"
    )
    # the quorum (3 of 4) needed a returning node's vote for the pair the other two attested
    voters = {
        n
        for n, i in net.identities.items()
        if (a := reader.attestation(r, i.address)) is not None
        and a.aggregate_hash == info.aggregate_hash
    }
    assert {"hospital-a", "hospital-b"} < voters and voters & set(joined)
    one_hash_per_finalized_round(net)
    # and the campaign goes on with all four
    after = wait_chain(
        lambda: next(
            (
                n
                for n in range(r + 1, reader.current_round() + 1)
                if reader.round_info(n).status == "finalized"
                and sum(attest_hashes(net, n).values()) == 4
            ),
            None,
        ),
        4 * WINDOWS,
        "a later round finalized by all four",
    )
    assert after > r


def test_a_frozen_peer_holds_up_no_sender(net):
    """Issue 17.6: sends run concurrently, each bounded by the round's deadline. With one peer
    frozen, the three others finish the round on their quorum within the round's two waits
    (blobs, then votes: 2 x round_timeout) plus training; a send waiting on the frozen receiver
    (3 attempts x a 60 s blob timeout before) would hold each sender for minutes. The reveal hold
    (node.peer.reveal) adds at most the commit window: the frozen peer never commits."""
    reader = net.client("hospital-a")
    timeout = OVERRIDES["rounds"]["round_timeout"]
    k = freeze_between_rounds(net, ("hospital-d",))
    try:
        r = wait_chain(
            lambda: reader.current_round() > k and reader.current_round(),
            3 * WINDOWS,
            f"round {k + 1} open",
        )
        for name in ("hospital-a", "hospital-b", "hospital-c"):
            done = net.procs[name].wait_for(
                lambda e: e["event"] == "round_done" and e["round"] == r,
                WINDOWS + CLOCK_SLACK_S + 60,
                f"round {r} with a frozen peer",
            )
            assert done["finalized"] and hospital_d_left_out(net, done), done
            # the reveal hold waits for the frozen peer's commit until the commit window closes, no longer
            hold = done["stages"]["hold"]
            assert hold < WINDOWS + CLOCK_SLACK_S + 5, done
            assert done["seconds"] < 2 * timeout + done["stages"]["train"] + hold + 5, (
                done
            )  # 5 s: chain and load slack
    finally:
        net.procs["hospital-d"].proc.send_signal(signal.SIGCONT)
    one_hash_per_finalized_round(net)


def hospital_d_left_out(net: LocalNet, done: dict) -> bool:
    return net.identities["hospital-d"].address not in done["accepted"]


def test_a_nine_second_rpc_outage_is_retried_and_the_campaign_resumes(net, relay):
    reader = net.client("hospital-a")
    marks = {n: p.mark() for n, p in net.procs.items()}
    relay.stop()
    cut = time.monotonic()
    try:
        for name, proc in net.procs.items():
            proc.wait_for(
                lambda e: e["event"] == "chain_unreachable",
                OUTAGE_S + 20,
                "a logged RPC retry",
                since=marks[name],
            )
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut)))  # the outage itself lasts 9 s
    finally:
        relay.start()
    back = reader.current_round()
    for name, proc in net.procs.items():
        retries = proc.find(lambda e: e["event"] == "chain_unreachable")
        assert retries and all(e["retry_in"] > 0 and e["rpc"] == relay.url for e in retries)
        assert retries[0]["attempt"] == 1
        assert proc.proc.poll() is None, f"{name} exited during the outage"
    round_ = wait_chain(
        lambda: next(
            (
                n
                for n in range(back + 1, reader.current_round() + 1)
                if reader.round_info(n).status == "finalized"
                and sum(attest_hashes(net, n).values()) == 4
            ),
            None,
        ),
        4 * WINDOWS,
        "a round after the outage finalized by all four",
    )
    assert round_ > back
    for name, proc in net.procs.items():
        joined = Counter(e["round"] for e in proc.find(lambda e: e["event"] == "round_joined"))
        assert max(joined.values()) == 1, f"{name} joined a round twice: {joined}"
        assert proc.proc.poll() is None
    for n in range(1, reader.current_round() + 1):
        assert reader.round_info(n).commit_count <= 4
    one_hash_per_finalized_round(net)


def test_library_warnings_go_to_the_event_log_not_stderr(net):
    """Issue 17.15: Opacus warns every round; the warning is an event (``event: "log"``), and the
    nodes' stderr stays empty."""
    for name, proc in net.procs.items():
        assert proc.find(lambda e: e["event"] == "log" and e.get("logger") == "py.warnings"), name
        assert "Warning" not in proc.stderr_path.read_text(errors="replace"), name
