"""The protection-mode seam: the consortium's mode is enforced on chain, and a config that
cannot work fails at once with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from ledger import collect, load_state
from node.consensus.compression import CompressionConfig
from node.peer.pipeline import HospitalPeer, PeerSettings
from node.protection.sealed_mode import SealedMode
from node.sim.demo import DemoConfig, run_demo


@pytest.mark.parametrize("mode", ["secagg", "ckks"])
def test_sum_only_modes_refuse_robust_rules(mode):
    with pytest.raises(ValueError, match=f"protection {mode} reveals only the sum.*--rule fedavg"):
        DemoConfig(protection=mode, rule="median")
    with pytest.raises(ValueError, match="this rule needs each individual update"):
        PeerSettings(protection=mode, rule="geomed")
    if (
        mode == "secagg"
    ):  # ckks runs the Krum family from encrypted distances (test_protection_ckks_robust)
        with pytest.raises(ValueError, match="reveals only the sum"):
            PeerSettings(protection=mode, rule="krum")


def test_bad_protection_settings_fail_clearly():
    with pytest.raises(ValueError, match="unknown protection mode 'paillier'"):
        PeerSettings(protection="paillier")
    with pytest.raises(
        ValueError, match="8-bit quantization composes with --protection sealed only"
    ):
        PeerSettings(
            protection="secagg", rule="fedavg", compression=CompressionConfig(quantize=True)
        )


class SealedAsSecagg(SealedMode):
    """Seals its update like everyone else but records it on chain as a secagg commit."""

    code = 2


class OtherMode(HospitalPeer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.protection = SealedAsSecagg(self.mode_context())


@pytest.mark.slow
def test_a_commit_under_another_mode_is_rejected_and_compression_keeps_its_residual(tmp_path):
    state = tmp_path / "chain.json"
    peers: list[HospitalPeer] = []

    class Kept(HospitalPeer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            peers.append(self)

    report = run_demo(
        DemoConfig(
            rounds=1,
            protection="sealed",
            topk=0.1,
            quantize=True,
            chain_state=state,
            progress=False,
            state_dir=tmp_path,
        ),
        peer_class={0: Kept, 1: Kept, 2: Kept, 3: OtherMode},
    )
    names = list(report["hospitals"])
    odd = report["hospitals"][names[3]]["address"]
    assert all(report["rounds"][0]["rejected"][n] == {odd: "bad-format"} for n in names[:3])
    r = collect(*load_state(state))["rounds"][0]
    assert r["status"] == "finalized" and odd.lower() not in {a.lower() for a in r["accepted"]}
    # top-10% of 31 logreg parameters is 3: what was not sent waits in each peer's residual
    assert all(np.count_nonzero(p.codec.feedback.residual) >= 31 - 3 - 1 for p in peers)
