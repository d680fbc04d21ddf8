"""A committee with real node processes (issue 19): `medmesh node run` x 5 on anvil, the ledger
drawing a committee of 4 per round (LocalNet's ``committee``, as `medmesh devnet --committee 4`).

Two rounds finalize on one hash each; exactly the four seated nodes attest; the follower of
each round logs a ``round_done`` naming the aggregate it adopted, and that hash is the chain's.
The campaign ends after round 2 (``stop_after_round``): every node exits 0, and the follower of
that last round still gets its aggregate (the seats used to exit half a second after
finalization, and the follower waited out its deadline without it).
The nodes come up one after another: the opener waits for their beacon secrets for round 1
(node.peer.roundbeacon's ``committed``), or round 1 would have no committee and fail.
Every wait is on a node's JSON log line.
"""

from __future__ import annotations

import pytest
from node_support import SHORT_CAMPAIGN, Pace, started

from ledger import Anvil
from ledger.committee import committee_info
from node.service.localnet import LocalNet

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

N, K, ROUNDS = 5, 4, 2
WINDOW = 20  # seconds to commit and to attest, on the chain's clock


def test_five_processes_with_a_committee_of_four(tmp_path) -> None:
    with (
        Anvil(block_time=1) as rpc,
        started(
            LocalNet(
                tmp_path,
                rpc,
                N,
                commit_window=WINDOW,
                attest_window=WINDOW,
                overrides={
                    **SHORT_CAMPAIGN,
                    "rounds": {**SHORT_CAMPAIGN["rounds"], "stop_after_round": ROUNDS},
                },
                committee=K,
            )
        ) as net,
    ):
        pace = Pace(net)
        pace.started()
        done = {
            (name, r): proc.wait_for(
                lambda e, r=r: e["event"] == "round_done" and e["round"] == r,
                pace.rounds(r),
                f"round {r}",
            )
            for name, proc in net.procs.items()
            for r in range(1, ROUNDS + 1)
        }
        reader = net.client("hospital-a")
        for r in range(1, ROUNDS + 1):
            info = reader.round_info(r)
            assert info.status == "finalized" and committee_info(reader, r).size == K
            final = info.aggregate_hash.hex()
            attested = {
                name
                for name, ident in net.identities.items()
                if reader.attestation(r, ident.address) is not None
            }
            followers = set(net.names) - attested
            assert len(attested) == K and len(followers) == N - K
            for name in net.names:  # one hash: every node, seated or not, names the chain's
                event = done[(name, r)]
                assert event["finalized"] and event["aggregate_hash"] == final, (name, event)
            for name in followers:  # the follower adopted it: it was fetched, not computed
                assert done[(name, r)]["params_round"] == r
        for name, proc in net.procs.items():  # the planned end: everyone exits, none failed
            exited = proc.wait_for(
                lambda e: e["event"] == "exited", pace.rounds(1), "the campaign's end"
            )
            assert exited["code"] == 0, (name, exited)
