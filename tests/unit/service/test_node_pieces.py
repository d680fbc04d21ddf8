"""Fast tests of the node process's pieces other than its config: opener turns, backoff, model
offers, persisted state, event lines, the retrying send and the chain-outage test. The config's
own tests are in test_node_config.py; the real processes in tests/e2e/test_node_process.py."""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np
import pytest

from node.service.events import EventLog
from node.service.liveness import Backoff
from node.service.modelsync import (
    ModelOffer,
    decode_offer,
    decode_request,
    encode_offer,
    encode_request,
)
from node.service.schedule import opener_rank
from node.service.state import NodeState, StateError


def test_opener_rank_takes_turns_by_address_order():
    members = ["0xCC", "0xaa", "0xBb"]  # address order, case-insensitive: aa, bb, cc
    # hand-worked: round 1 -> aa first; round 2 -> bb first, then cc, then aa
    assert [opener_rank(1, members, m) for m in ("0xaa", "0xbb", "0xcc")] == [0, 1, 2]
    assert [opener_rank(2, members, m) for m in ("0xaa", "0xbb", "0xcc")] == [2, 0, 1]
    assert [opener_rank(4, members, m) for m in ("0xaa", "0xbb", "0xcc")] == [0, 1, 2]
    with pytest.raises(ValueError, match="not an active member"):
        opener_rank(1, members, "0xdd")


def test_backoff_doubles_up_to_the_cap_and_resets():
    b = Backoff(0.5, 3.0)
    assert [b.failed(10.0) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert b.next_at == 13.0 and not b.due(12.9) and b.due(13.0)
    b.reset()
    assert b.failed(0.0) == 0.5


def test_model_offer_codec_and_request():
    params = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    data = encode_offer(ModelOffer(7, params))
    # independent layout: magic, 8-byte big-endian round, float32 little-endian values
    assert (
        data
        == b"medmesh/model/v1"
        + (7).to_bytes(8, "big")
        + np.array([1.5, -2.0, 3.25], "<f4").tobytes()
    )
    back = decode_offer(data, 3)
    assert back.round == 7 and np.array_equal(back.params, params)
    with pytest.raises(ValueError, match="not a model offer of 4"):
        decode_offer(data, 4)
    assert decode_request(encode_request(5)) == 5
    with pytest.raises(ValueError):
        decode_request(b'{"round": 0}')


def test_node_state_is_one_atomic_file_and_drops_tampered_parameters(tmp_path):
    """Issue 17.3: the state is one file (no pair to tear); parameters that do not match their
    hash are dropped (to be fetched from the chain by hash), the rest of the state is kept."""
    import base64

    from node.data.samples import Standardizer

    params = np.arange(5, dtype=np.float32)
    std = Standardizer(np.array([1.0, 2.0]), np.array([0.5, 4.0]))
    NodeState("12D3KooWme", 4, 3, params, std).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert os.stat(tmp_path / "state.json").st_mode & 0o777 == 0o600
    stored = json.loads((tmp_path / "state.json").read_text())
    expected = hashlib.sha256(b"medmesh/params/v1" + params.astype("<f4").tobytes()).hexdigest()
    assert stored["params_hash"] == expected
    assert base64.b64decode(stored["params"]) == params.astype("<f4").tobytes()
    state = NodeState.load(tmp_path, "12D3KooWme")
    assert (state.completed_round, state.params_round, state.recovered) == (4, 3, None)
    assert np.array_equal(state.params, params) and np.array_equal(
        state.standardizer.std, [0.5, 4.0]
    )
    assert NodeState.load(tmp_path / "fresh", "x") is None
    with pytest.raises(StateError, match="belongs to peer 12D3KooWme"):
        NodeState.load(tmp_path, "12D3KooWother")
    stored["params"] = base64.b64encode((params + 1).astype("<f4").tobytes()).decode()
    (tmp_path / "state.json").write_text(json.dumps(stored))
    state = NodeState.load(tmp_path, "12D3KooWme")
    assert (
        state.params is None
        and state.params_round == 0
        and "do not match the hash" in state.recovered
    )
    assert state.completed_round == 4 and np.array_equal(state.standardizer.mean, [1.0, 2.0])


def test_torn_version_1_pair_recovers_instead_of_refusing(tmp_path):
    """The version-1 layout crashed between its two writes: params.npy new, state.json old."""
    old, new = np.zeros(3, dtype=np.float32), np.ones(3, dtype=np.float32)
    np.save(tmp_path / "params.npy", new)
    (tmp_path / "state.json").write_text(
        json.dumps(
            {
                "version": 1,
                "peer_id": "12D3KooWme",
                "completed_round": 2,
                "params_round": 2,
                "params_hash": hashlib.sha256(
                    b"medmesh/params/v1" + old.astype("<f4").tobytes()
                ).hexdigest(),
                "standardizer": None,
            }
        )
    )
    state = NodeState.load(tmp_path, "12D3KooWme")
    assert state.params is None and state.params_round == 0 and state.completed_round == 2
    np.save(tmp_path / "params.npy", old)  # an untorn version-1 pair still loads as it was
    state = NodeState.load(tmp_path, "12D3KooWme")
    assert np.array_equal(state.params, old) and state.params_round == 2 and state.recovered is None


def test_event_lines_name_peer_and_round():
    out = io.StringIO()
    EventLog("hospital-a", json_lines=True, stream=out).emit("round_done", 3, finalized=True)
    line = json.loads(out.getvalue())
    assert (line["peer"], line["round"], line["event"], line["finalized"]) == (
        "hospital-a",
        3,
        "round_done",
        True,
    )
    text = io.StringIO()
    EventLog("hospital-a", stream=text).emit("opened", 4, rank=1)
    assert text.getvalue().rstrip().endswith("[hospital-a r4] opened rank=1")


def test_retrying_send_retries_transfer_failures_but_not_rejections():
    import trio

    from gossip import BlobRejected, BlobTransferError
    from gossip._retry import retrying

    calls: list[str] = []

    async def flaky(peer_id, data, **kwargs):
        calls.append(peer_id)
        if peer_id == "reject":
            raise BlobRejected("no", code=1, reason="no")
        if len(calls) < 3:
            raise BlobTransferError("stream reset")

    async def main():
        send = retrying(flaky, attempts=3, initial=0.001, parallel=2)
        await send("p", b"x", kind="update")
        assert calls == ["p", "p", "p"]
        calls.clear()
        with pytest.raises(BlobRejected):
            await send("reject", b"x")
        assert calls == ["reject"]

    trio.run(main)


def test_chain_unreachable_recognises_connection_failures_through_ledger_errors():
    import requests

    from ledger import LedgerError
    from node.service.runner import chain_unreachable

    try:
        try:
            raise requests.exceptions.ConnectionError("Max retries exceeded")
        except OSError as exc:
            raise LedgerError("currentRound failed") from exc
    except LedgerError as wrapped:
        assert chain_unreachable(wrapped)
    assert chain_unreachable(requests.exceptions.ReadTimeout("slow"))
    assert not chain_unreachable(LedgerError("reverted: RoundLedgerRoundStillOpen"))
    assert not chain_unreachable(ValueError("bad"))
