"""Real peers with an aggregation committee (issue 19): six hospitals on the embedded chain
with real libp2p hosts and sealed updates, a committee of four drawn per round from the beacon.
Every round finalizes on one hash, only the committee attests, and the two followers adopt
the aggregate they fetched because its hash is the chain's.
"""

from __future__ import annotations

import pytest

from ledger import LedgerClient, load_state
from ledger.committee import committee_info
from node.sim.demo import DemoConfig, run_demo

pytestmark = pytest.mark.slow

N, K, ROUNDS = 6, 4, 2


def test_six_peers_with_a_committee_of_four_finalize_and_followers_adopt(tmp_path) -> None:
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            hospitals=N,
            rounds=ROUNDS,
            committee=K,
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
        )
    )
    w3, deployment = load_state(state)
    chain = LedgerClient(w3, deployment)
    for row in report["rounds"]:
        info = chain.round_info(row["round"])
        assert row["finalized"] and info.status == "finalized"
        # every hospital, committee or follower, ends the round on the chain's aggregate
        assert row["aggregate_hash"] == info.aggregate_hash.hex()
        assert committee_info(chain, row["round"]).size == K
        assert info.attest_count == K  # the followers did not (could not) attest
    assert report["peers_agree"]
