"""Commit before reveal (node/peer/reveal.py): a copier cannot get a current-round update before its
own commit deadline.

Real chain (embedded py-evm, the compiled contracts), real libp2p hosts on 127.0.0.1, real sealed
updates. One of four hospitals is an adaptive copier (Fraboni et al., 2021's disguised
free-rider, copying the current round): it trains, then waits for another site's blob and, the
moment one arrives, commits that update plus 30 % noise instead of its own (30 % passes the
free-rider screen: docs/incentive-gaming.md). Before the fix the honest peers sent their blobs
right after committing, so the copier got one within a second and was paid for the copy.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import trio

from ledger import collect, load_state
from node.peer.mods import PeerMod
from node.sim.demo import DemoConfig, run_demo

pytestmark = pytest.mark.slow

COMMIT_WINDOW = (
    12  # seconds: three honest sites train and commit well inside it on a loaded machine
)


class Copier(PeerMod):
    """Waits for any other site's current-round blob (up to its commit deadline and past it),
    then commits a noisy copy of it as its own update."""

    first_blob_at: dict[int, float] = {}  # round -> wall-clock time the first other blob arrived
    deadline: dict[int, int] = {}  # round -> the round's commit deadline (chain time)
    copied: dict[int, str] = {}  # round -> whose update it committed a copy of

    async def train(self, peer, round_, call_next):
        update = await call_next(round_)
        Copier.deadline[round_] = deadline = peer.ledger.round_info(round_).commit_deadline
        others = {i.address: i for i in peer.others()}
        patience = deadline - time.time() + peer.settings.round_timeout

        async with trio.open_nursery() as nursery:  # the first other blob to arrive ends the wait

            async def first(address: str) -> None:
                await peer.intake.await_blobs(round_, {address}, patience)
                nursery.cancel_scope.cancel()

            for address in others:
                nursery.start_soon(first, address)
        inbox = peer.intake.inbox(round_)
        if not inbox:
            return update
        Copier.first_blob_at[round_] = time.time()
        sender, blob = sorted(inbox.items())[0]
        source = peer.protection.open(
            round_, sender, blob, peer.ledger.commitment(round_, sender), others[sender]
        )
        noise = np.random.default_rng(round_).normal(size=source.delta.size)
        noise *= 0.3 * np.linalg.norm(source.delta) / np.linalg.norm(noise)
        Copier.copied[round_] = sender
        return replace(update, delta=(source.delta + noise).astype(np.float32))


def test_a_copier_sees_no_current_round_update_before_its_commit_deadline(tmp_path):
    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(
            rounds=1,
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
            commit_window=COMMIT_WINDOW,
            round_timeout=20.0,
        ),
        mods={3: [Copier()]},
    )
    names = list(report["hospitals"])
    copier = report["hospitals"][names[3]]["address"].lower()
    # the first blob reached the copier only after the contract stopped taking commitments
    assert Copier.first_blob_at[1] > Copier.deadline[1]
    audit = collect(*load_state(state))
    r = audit["rounds"][0]
    assert copier not in {
        c["account"].lower() for c in r["commits"]
    }  # its late copy was refused on chain
    assert r["status"] == "finalized" and len(r["accepted"]) == 3
    assert copier not in {a.lower() for a in r["accepted"]}
    assert audit["credits"].get(report["hospitals"][names[3]]["address"], 0) == 0
