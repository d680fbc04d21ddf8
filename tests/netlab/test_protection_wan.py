"""The protection modes that reveal only the sum (secagg, ckks) through the WAN of the network lab:
four ``medmesh node run`` processes in their own namespaces, 100 Mbit/s, 50 ms RTT and 1 % loss
per link, two rounds each, every member attesting the one finalized hash. (sealed, the default,
runs through the same WAN in test_scenarios.py.)"""

from __future__ import annotations

import pytest

from netlab.campaign import OVERRIDES, ROUND_S, WINDOWS, attesters, reader, wait_caught_up
from netlab.consortium import running_lab
from netlab.lab import LinkSpec

pytestmark = [pytest.mark.slow, pytest.mark.anvil]
ROUNDS = 2


@pytest.mark.parametrize("mode", ["secagg", "ckks"])
def test_mode_through_the_wan(make_lab, tmp_path, mode):
    lab = make_lab(4, rtt_ms=50, link=LinkSpec(mbit=100, loss=1.0))
    overrides = {**OVERRIDES, "aggregation": {"protection": mode, "rule": "fedavg"}}
    try:
        with running_lab(lab, tmp_path, WINDOWS, overrides) as net:
            for proc in net.procs.values():
                proc.wait_for(
                    lambda e: e["event"] == "round_done" and e["round"] == ROUNDS,
                    (ROUNDS + 1) * ROUND_S,
                    f"round {ROUNDS}",
                )
            for round_ in range(1, ROUNDS + 1):
                info = reader(net).round_info(round_)
                assert info.status == "finalized", f"{mode} round {round_}: {info.status}"
                assert attesters(net, round_) == {name: info.aggregate_hash for name in net.names}
            for name in net.names:
                wait_caught_up(net, name, ROUNDS, ROUND_S)
    finally:
        lab.down()
