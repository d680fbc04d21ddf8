"""A peer that misbehaves is caught, put on the record, and cannot stop the round.

Real chain, real libp2p hosts, real sealed updates: one of four hospitals commits one blob on
chain and sends different (validly sealed and signed) bytes to the others — equivocation.
"""

from __future__ import annotations

import pytest

from ledger import collect, load_state
from node.demo import DemoConfig, run_demo
from node.peer import HospitalPeer
from node.sealing import blob_hash

pytestmark = pytest.mark.slow


class Equivocator(HospitalPeer):
    """Commits the hash of one sealing of its update, then sends another sealing."""

    def _protect(self, update):
        self._committed_blob = super()._protect(update)
        return self._committed_blob

    async def _send(self, round_, blob):
        other = super()._protect(self._last_update)  # same update, fresh keys: different bytes
        assert blob_hash(other) != blob_hash(blob)
        await super()._send(round_, other)

    def _commit(self, update, blob):
        self._last_update = update
        super()._commit(update, blob)


def test_equivocation_is_rejected_recorded_and_outvoted(tmp_path):
    state = tmp_path / "chain.json"
    report = run_demo(DemoConfig(rounds=1, chain_state=state, progress=False, state_dir=tmp_path),
                      peer_class={3: Equivocator})
    names = list(report["hospitals"])
    cheat = report["hospitals"][names[3]]["address"]
    row = report["rounds"][0]
    for honest in names[:3]:
        assert row["rejected"][honest] == {cheat: "hash-mismatch"}
    audit = collect(*load_state(state))
    r = audit["rounds"][0]
    assert r["status"] == "finalized"
    assert cheat.lower() not in {a.lower() for a in r["accepted"]}
    assert len(r["accepted"]) == 3
    recorded = {(x["reporter"].lower(), x["account"].lower(), x["reason_name"]) for x in r["rejections"]}
    honest_addrs = {report["hospitals"][n]["address"].lower() for n in names[:3]}
    assert recorded == {(a, cheat.lower(), "hash-mismatch") for a in honest_addrs}
    assert audit["credits"].get(cheat, 0) == 0
