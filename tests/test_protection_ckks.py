"""ckks between real peers: real libp2p hosts, the embedded chain, real TenSEAL ciphertexts.

The reference is the plaintext weighted FedAvg of the updates the peers trained (recorded
here), in float64 numpy; the chain must carry the decrypted aggregate's hash."""

from __future__ import annotations

import numpy as np
import pytest

from ledger import collect, load_state
from node.demo import DemoConfig, run_demo
from node.peer import HospitalPeer
from node.update import parameters_hash

pytestmark = pytest.mark.slow


class Recorder(HospitalPeer):
    trained: dict[tuple[int, str], tuple[np.ndarray, int, np.ndarray]] = {}

    async def _train(self, round_):
        update = await super()._train(round_)
        Recorder.trained[(round_, self.address)] = (update.delta.copy(), update.samples, self.global_params.copy())
        return update


def test_ckks_round_decrypts_only_the_sum_within_1e_4(tmp_path):
    Recorder.trained.clear()
    state, model = tmp_path / "chain.json", tmp_path / "model.npy"
    report = run_demo(DemoConfig(rounds=1, rule="fedavg", protection="ckks", chain_state=state, model_out=model,
                                 progress=False, state_dir=tmp_path), peer_class=Recorder)
    rows = [Recorder.trained[(1, h["address"])] for h in report["hospitals"].values()]
    g0 = rows[0][2].astype(np.float64)
    reference = sum(s * d.astype(np.float64) for d, s, _ in rows) / sum(s for _, s, _ in rows)
    got = np.load(model).astype(np.float64) - g0
    assert np.linalg.norm(got - reference) / np.linalg.norm(reference) < 1e-4
    r = collect(*load_state(state))["rounds"][0]
    assert r["status"] == "finalized" and all(c["mode"] == 3 for c in r["commits"])
    assert {a["aggregate_hash"].removeprefix("0x") for a in r["attestations"]} == {parameters_hash(np.load(model)).hex()}
    assert len(r["attestations"]) == 4
    # the aggregator got two ciphertexts (the key holder encrypts nothing), the key holder sent three
    # contexts: nobody else got any ciphertext
    sent = report["rounds"][0]["blob_bytes_per_peer"]
    holder, aggregator = list(report["hospitals"])[:2]  # registry order: round 1 -> members 0 and 1
    assert sent[holder] > max(v for k, v in sent.items() if k != holder)


class Replayer(Recorder):
    """Round 2: commits its round-1 ciphertext in a fresh, valid round-2 envelope."""
    old: dict[str, bytes] = {}

    async def _protect(self, update):
        blob = await super()._protect(update)
        if update.round == 1:
            Replayer.old[self.address] = self.protection.own(update)
            return blob
        _, aggregator = self.protection.roles(update.round)
        return self.protection.seal_for(update.round, Replayer.old[self.address], [aggregator])


class Tamperer(Recorder):
    """Round 2: commits its blob's hash, then sends the blob with one byte flipped."""

    async def _send(self, round_, blob):
        if round_ == 2:
            blob = blob[:1000] + bytes([blob[1000] ^ 1]) + blob[1001:]
        await super()._send(round_, blob)


def test_ckks_rejects_replayed_and_tampered_ciphertexts(tmp_path):
    state = tmp_path / "chain.json"
    # round 1: member 0 holds the key (it encrypts nothing), so the replayer is member 3; round 2: member 1
    # holds the key and member 2 aggregates
    report = run_demo(DemoConfig(rounds=2, rule="fedavg", protection="ckks", chain_state=state, progress=False,
                                 state_dir=tmp_path), peer_class={3: Replayer, 0: Tamperer})
    names = list(report["hospitals"])
    addr = {n: report["hospitals"][n]["address"].lower() for n in names}
    r2 = collect(*load_state(state))["rounds"][1]
    assert r2["status"] == "finalized"
    assert {a.lower() for a in r2["accepted"]} == {addr[names[1]], addr[names[2]]}
    # round 2's aggregator (registry member 2) saw both and put them on the record
    recorded = {(x["reporter"].lower(), x["account"].lower(), x["reason_name"]) for x in r2["rejections"]}
    assert recorded == {(addr[names[2]], addr[names[3]], "bad-format"), (addr[names[2]], addr[names[0]], "hash-mismatch")}
    assert report["peers_agree"]
