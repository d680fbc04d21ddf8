"""Real peers with an aggregation committee (issue 19): six hospitals on the embedded chain
with real libp2p hosts and sealed updates, a committee of four drawn per round from the beacon,
Multi-Krum as the rule, and one poisoner seated on the committee every round.

Every round finalizes on one hash, only the committee attests, the poisoner's update is left
out of the finalized aggregate, and the two followers adopt the aggregate they fetched because
its hash is the chain's (all six end on the same model).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger import LedgerClient, collect, load_state
from ledger.committee import committee_info
from node.peer.mods import PeerMod
from node.sim.demo import DemoConfig, run_demo

pytestmark = pytest.mark.slow

N, K, ROUNDS = 6, 4, 2


class PoisonFromTheFirstSeat(PeerMod):
    """Run by every peer; only the committee member with the lowest address poisons (its update
    scaled a hundredfold, as tests/integration/test_misbehaviour.py's Poison), so each round
    has exactly one poisoner and it sits on the committee (f = 1 < k/3)."""

    def __init__(self, poisoners: dict[int, str]) -> None:
        self.poisoners = poisoners

    async def train(self, peer, round_, call_next):
        update = await call_next(round_)
        seats = peer.committee.members(round_)
        if not seats or peer.address.lower() != min(seats):
            return update
        self.poisoners[round_] = peer.name
        return replace(update, delta=(update.delta * 100.0).astype(update.delta.dtype))


def test_six_peers_with_a_committee_of_four_finalize_and_followers_adopt(tmp_path) -> None:
    state = tmp_path / "chain.json"
    poisoners: dict[int, str] = {}
    report = run_demo(
        DemoConfig(
            hospitals=N,
            rounds=ROUNDS,
            committee=K,
            rule="multi-krum",
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
        ),
        mods=[PoisonFromTheFirstSeat(poisoners)],
    )
    w3, deployment = load_state(state)
    chain = LedgerClient(w3, deployment)
    assert sorted(poisoners) == list(range(1, ROUNDS + 1))
    for row in report["rounds"]:
        info = chain.round_info(row["round"])
        assert row["finalized"] and info.status == "finalized"
        # every hospital, committee member or follower, ends the round on the chain's aggregate
        assert row["aggregate_hash"] == info.aggregate_hash.hex()
        assert committee_info(chain, row["round"]).size == K
        assert info.attest_count == K  # the followers did not (could not) attest
        assert row["left_out"] == [poisoners[row["round"]]], (poisoners, row)
    assert report["peers_agree"]
    assert report["rounds"][-1]["auc"] > 0.9  # the poison did not reach the model
    # the audit counts the quorum over the committee (k from the CommitteeSizeSet event)
    failed = [c["check"] for c in collect(w3, deployment)["checks"] if not c["ok"]]
    assert failed == []
