"""What the lab's scenario tests read from a running campaign: the chain's rounds and votes, and
each node's persisted model, checked against the chain by an independent hash."""

from __future__ import annotations

import base64
import json

import numpy as np
from node_support import params_hash, wait_chain

from netlab.consortium import LabNet

WINDOWS = 20  # commit and attest windows, seconds on the chain's clock
OVERRIDES = {
    "rounds": {
        "round_timeout": 5.0,
        "open_fallback": 1.5,
        "attest_grace": 5.0,
        "poll_interval": 0.25,
        "join_margin": 3.0,
    },
    "privacy": {"rounds": 60},  # the noise is calibrated for a campaign longer than this module
    "gossip": {"reconnect_initial": 0.25, "reconnect_max": 2.0, "dial_timeout": 3.0},
}
ROUND_S = 2 * WINDOWS + 20  # the longest a round can take: both windows, then a fail and reopen


def reader(net: LabNet):
    return net.client("hospital-a")


def chain_round(net: LabNet) -> int:
    return reader(net).current_round()


def status(net: LabNet, round_: int) -> str:
    return reader(net).round_info(round_).status


def wait_finalized(net: LabNet, after: int, timeout: float) -> int:
    """The first round above ``after`` that finalizes on chain."""

    def found():
        for r in range(after + 1, chain_round(net) + 1):
            if status(net, r) == "finalized":
                return r
        return None

    return wait_chain(found, timeout, f"finalized round after {after}")


def attesters(net: LabNet, round_: int) -> dict[str, bytes]:
    """Each member's on-chain attested hash for ``round_``."""
    out = {}
    for name, ident in net.identities.items():
        att = reader(net).attestation(round_, ident.address)
        if att is not None:
            out[name] = att.aggregate_hash
    return out


def model_hash(net: LabNet, name: str) -> tuple[int, bytes]:
    state = json.loads((net.root / name / "state" / "state.json").read_text())
    params = np.frombuffer(base64.b64decode(state["params"]), dtype="<f4")
    return state["params_round"], params_hash(params)


def wait_caught_up(net: LabNet, name: str, round_: int, timeout: float) -> None:
    """``name``'s persisted model is the chain's aggregate of ``round_`` or a later round."""

    def caught():
        have, digest = model_hash(net, name)
        return have >= round_ and digest == reader(net).round_info(have).aggregate_hash

    wait_chain(caught, timeout, f"{name} holding the chain's model of round {round_} or later")
