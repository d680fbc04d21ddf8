"""The demo's summary table (issue 15, section 5): a hospital that trained nothing in a round
(budget refused, offline) shows "—", never an epsilon of 0.000."""

from __future__ import annotations

from node.peer.pipeline import RoundOutcome
from node.sim.demo import format_report, max_epsilon, round_epsilons


def test_a_refused_hospital_shows_a_dash_not_zero_epsilon():
    results = {
        "hospital-a": RoundOutcome(3, epsilon=0.8123, samples=120),
        "hospital-b": RoundOutcome(3, error="one more round would spend epsilon 1.05 > target 1"),
    }
    row = {
        "round": 3,
        "auc": 0.97,
        "accuracy": 0.93,
        "epsilon": round_epsilons(results),
        "bytes_sent": 1000,
        "finalized": True,
        "aggregate_hash": "ab" * 32,
    }
    assert row["epsilon"] == {"hospital-a": 0.8123, "hospital-b": None}
    assert max_epsilon(row) == 0.8123
    report = {
        "config": {
            "hospitals": 2,
            "rounds": 3,
            "rule": "fedavg",
            "protection": "sealed",
            "model": "logreg",
            "epsilon": 1.0,
            "delta": 1e-5,
            "accountant": "prv",
        },
        "rounds": [row],
        "peers_agree": True,
        "baselines": {"centralized": {"auc": 0.99, "accuracy": 0.95}, "local_only": {}},
        "hospitals": {"hospital-a": {"credits": 1.0}, "hospital-b": {"credits": 0.0}},
    }
    line = next(x for x in format_report(report).splitlines() if x.lstrip().startswith("3 "))
    assert "  0.812       —" in line and "0.000" not in line
