"""Fast tests of a node's monitoring: the alert rules against hand-computed references, the
``[monitoring]`` config section, and the Monitor + HTTP server read back through Prometheus' own
text parser. The 4-node run with a browser is in test_monitoring_node.py."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from contextlib import ExitStack
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from node.learning.evaluation import binary_scores
from node.monitoring.alerts import (
    AlertThresholds,
    AucComponents,
    accuracy_drop,
    anomalous_updates,
    auc_difference,
    bias_shift,
    campaign_z,
    cosine,
    feature_drift,
    robust_z,
    sensitivity_gap,
    standardized_mean_differences,
)
from node.service.config import ConfigError, load_config
from node.service.events import EventLog
from node.service.metrics import Monitor
from node.service.statuspage import StatusServer

CONFIG = """
[node]
identity = "a.key"
state_dir = "state"

[chain]
rpc = "http://127.0.0.1:8545"
deployment = "deployment.json"
"""


# -- alert rules -------------------------------------------------------------------------
def test_robust_z_matches_iglewicz_hoaglin_by_hand():
    # median 2, |x - 2| = 1 1 0 0 8, MAD = 1: z(10) = 0.6745 * 8 / 1
    z = robust_z([1, 1, 2, 2, 10])
    assert z[4] == pytest.approx(5.396)
    assert z[2] == 0 and z[0] == pytest.approx(-0.6745)
    assert robust_z([1, 1, 2, 2, 10], floor=2.0)[4] == pytest.approx(
        0.6745 * 8 / 4
    )  # MAD floored at 2 * 2
    flat = robust_z(
        [3, 3, 3, 4]
    )  # MAD 0: mean |x - 3| = 0.25 stands in, z(4) = 1 / (1.253314 * 0.25)
    assert list(flat[:3]) == [0, 0, 0] and flat[3] == pytest.approx(3.1915, abs=1e-4)
    assert list(robust_z([2, 2, 2])) == [0, 0, 0]


def test_anomalous_update_flags_the_outlier_norm_and_the_reversed_direction():
    step = np.array([1.0, 0.0])
    deltas = {
        "a": np.array([1.0, 0.0]),
        "b": np.array([1.2, 0.0]),
        "c": np.array([0.8, 0.6]),
        "d": np.array([-9.0, 0.0]),
        "e": np.array([1.1, 0.0]),
    }
    # norms 1, 1.2, 1.0, 9, 1.1: median 1.1, |dev| .1 .1 .1 7.9 0 -> MAD .1, floored at .25 * 1.1 = .275;
    # z(d) = .6745 * 7.9 / .275
    alerts = anomalous_updates(deltas, step, 7, AlertThresholds(norm_z=3.5, min_cosine=0.0))
    assert [a.subject for a in alerts] == ["d"]
    assert alerts[0].kind == "anomalous_update" and alerts[0].round == 7
    assert alerts[0].value == pytest.approx(0.6745 * 7.9 / 0.275)
    assert "cosine to the aggregate step -1.000" in alerts[0].message
    # direction alone: same norm as the crowd, pointing away (cos = -0.8 / 1); norms 1 1.2 1 1 1.1 have
    # MAD 0, floored at .25: z(b) = .6745 * .2 / .25 = 0.54 < 3.5
    sneaky = {**deltas, "d": np.array([-0.8, 0.6])}
    alerts = anomalous_updates(sneaky, step, 7, AlertThresholds(min_cosine=-0.5))
    assert [(a.subject, round(a.value, 3)) for a in alerts] == [("d", -0.8)]
    assert cosine(np.array([0.8, 0.6]), step) == pytest.approx(0.8)


def _pairwise_auc_difference(y, a, b):
    """DeLong et al. (1988) from the definition: the kernel psi(X, Y) over every positive-negative
    pair, its structural components and their covariances (O(mn); the code uses midranks)."""
    y = np.asarray(y) > 0.5
    comps = []
    for s in (a, b):
        psi = (s[y][:, None] > s[~y][None, :]) + 0.5 * (s[y][:, None] == s[~y][None, :])
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    s10 = np.cov(np.stack([comps[0][1], comps[1][1]]))
    s01 = np.cov(np.stack([comps[0][2], comps[1][2]]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / y.sum() + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / (~y).sum()
    return comps[0][0], comps[1][0], math.sqrt(var)


def test_delong_paired_difference_matches_the_pairwise_definition():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for n, ties in ((12, False), (40, True), (200, True)):
        y = (rng.random(n) < 0.4).astype(float)
        y[:2], y[2:4] = 1, 0
        a = rng.normal(size=n) + y
        b = a + rng.normal(scale=0.7, size=n) - 0.3 * y
        if ties:
            a, b = np.round(a, 1), np.round(b, 1)
        got = auc_difference(y, a, b)
        assert got == pytest.approx(_pairwise_auc_difference(y, a, b), rel=1e-9)
        assert got[:2] == pytest.approx((roc_auc_score(y, a), roc_auc_score(y, b)), rel=1e-12)
    # by hand: positives (.9, .4), negatives (.5, .1); model b swaps .4 and .5 -> AUC .75 vs 1.
    # V10 = (1, .5) / (1, 1), V01 = (.5, 1) / (1, 1): var = (.125 + 0 - 0) / 2 + (.125 + 0 - 0) / 2 = .125
    assert auc_difference(
        [1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1], [0.9, 0.5, 0.4, 0.1]
    ) == pytest.approx((0.75, 1.0, 0.125**0.5))
    assert all(
        math.isnan(v) for v in auc_difference([1, 0, 0], [0.9, 0.1, 0.2], [0.9, 0.1, 0.2])
    )  # one positive


def test_campaign_z_is_bonferroni_over_every_pair_of_rounds():
    from scipy.stats import norm

    assert campaign_z(0.05, 10) == pytest.approx(norm.isf(0.05 / 45), rel=1e-9)  # 3.0588
    assert campaign_z(0.05, 1) == pytest.approx(norm.isf(0.05), rel=1e-9)
    with pytest.raises(ValueError, match="0 < alpha < 1"):
        campaign_z(0, 10)


def test_accuracy_drop_needs_a_material_and_significant_drop():
    labels = np.repeat([1.0, 0.0], 10)
    good = labels + np.tile(np.linspace(0, 1.5, 10), 2)  # AUC .925
    worse = good.copy()
    worse[[0, 1, 2]] -= 1.3  # three positives fall among the negatives: AUC .79
    parts = lambda scores: AucComponents.of(labels, scores)  # noqa: E731
    z = campaign_z(0.05, 10)
    a = accuracy_drop(
        [parts(good), parts(worse)], parts(-good), 3, 0.05, z
    )  # reversed: far below both
    ref, new, se = auc_difference(labels, good, -good)
    assert (
        a is not None
        and a.value == pytest.approx(ref - new)
        and "2 rounds earlier (0.925)" in a.message
    )
    assert f"{(ref - new) / se:.1f} DeLong SE" in a.message
    ref, new, se = auc_difference(labels, good, worse)
    assert ref - new > 0.05 and (ref - new) / se < z  # material but not significant on 20 rows
    assert accuracy_drop([parts(good)], parts(worse), 2, 0.05, z) is None
    assert accuracy_drop([parts(good)], parts(worse), 2, 0.05, (ref - new) / se - 0.01) is not None
    assert (
        accuracy_drop([parts(good)], parts(worse), 2, ref - new, 0.0) is None
    )  # not more than auc_drop
    assert accuracy_drop([parts(good)], parts(good - 0.01), 2, 0.05, z) is None  # no drop
    assert accuracy_drop([], parts(good), 1, 0.05, z) is None  # nothing to compare with yet
    assert AucComponents.of([1, 0, 0], [0.9, 0.1, 0.2]) is None  # one positive: no AUC variance


def test_bias_shift_is_the_widening_sensitivity_gap():
    assert sensitivity_gap({"F": 0.9, "M": 0.6, "X": float("nan")}) == pytest.approx(0.3)
    a = bias_shift(0.1, {"F": 0.9, "M": 0.6}, 3, 0.15)  # gap 0.1 -> 0.3
    assert a is not None and a.value == pytest.approx(0.2) and a.kind == "bias_shift"
    assert bias_shift(0.1, {"F": 0.9, "M": 0.6}, 3, 0.25) is None
    assert (
        bias_shift(float("nan"), {"F": 0.9, "M": 0.1}, 1, 0.1) is None
    )  # first round: no baseline
    assert bias_shift(0.1, {"F": 0.9}, 3, 0.1) is None  # one group: no gap


def test_standardized_mean_difference_is_austins_by_hand():
    # feature 0: local mean 2, sample variance ((1-2)^2 + (3-2)^2) / 1 = 2; pooled mean 0, sd 2:
    # d = (2 - 0) / sqrt((2 + 4) / 2) = 2 / sqrt(3) (Austin 2009, eq. 1)
    # feature 1: constant 5 locally and in the pool -> 0, not a division by zero
    rows = np.array([[1.0, 5.0], [3.0, 5.0]])
    d = standardized_mean_differences(rows, np.array([0.0, 5.0]), np.array([2.0, 0.0]))
    assert d == pytest.approx([2 / math.sqrt(3), 0.0])
    with pytest.raises(ValueError, match="need >= 2 rows of 2 features"):
        standardized_mean_differences(rows[:, :1], np.zeros(2), np.ones(2))


def test_drift_is_the_smd_moving_from_the_first_round():
    baseline = np.array([0.1, -0.2, 0.0])
    now = np.array([0.3, 0.4, 0.0])  # moved 0.2, 0.6, 0
    alert = feature_drift(now, baseline, 6, 0.5, names=["radius", "texture", "area"])
    assert alert.kind == "drift" and alert.round == 6 and alert.value == pytest.approx(0.6)
    assert "1 feature(s)" in alert.message and "texture (-0.20 -> +0.40)" in alert.message
    assert feature_drift(now, baseline, 6, 0.7) is None
    # a site that always differed from the pool (case mix) is not drifting
    assert feature_drift(np.array([1.5, -1.2]), np.array([1.5, -1.2]), 6, 0.5) is None


def test_bad_thresholds_raise():
    with pytest.raises(ValueError, match="norm_z must be > 0"):
        AlertThresholds(norm_z=0)
    with pytest.raises(ValueError, match="min_cosine must be in"):
        AlertThresholds(min_cosine=2)


# -- config ------------------------------------------------------------------------------
def test_monitoring_defaults_to_loopback(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text(CONFIG)
    m = load_config(path).monitoring
    assert (m.enabled, m.host, m.port) == (True, "127.0.0.1", 0)
    assert m.drift_smd == AlertThresholds().drift_smd == 0.5
    assert m.alerts_on_chain is False  # recording alerts on chain is the hospital's choice
    path.write_text(CONFIG + "\n[monitoring]\nalerts_on_chain = true\n")
    assert load_config(path).monitoring.alerts_on_chain is True


@pytest.mark.parametrize(
    "extra,expected",
    [
        ('host = "localhost"', "node.toml: [monitoring].host: must be an IP address"),
        ("port = 70000", "node.toml: [monitoring].port: must be in 0..65535, got 70000"),
        ("auc_drop = 0", "node.toml: [monitoring].auc_drop: must be > 0"),
        ("min_cosine = -2", "node.toml: [monitoring].min_cosine: must be in [-1, 1]"),
        ("drift_smd = 0", "node.toml: [monitoring].drift_smd: must be > 0, got 0"),
        ("auc_alpha = 1.0", "node.toml: [monitoring].auc_alpha: must be in (0, 1), got 1.0"),
        ("colour = 1", "node.toml: [monitoring].colour: unknown key"),
    ],
)
def test_bad_monitoring_config_is_one_line(tmp_path, extra, expected):
    path = tmp_path / "node.toml"
    path.write_text(CONFIG + "\n[monitoring]\n" + extra + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected in str(info.value) and "\n" not in str(info.value)


# -- the monitor and its server ------------------------------------------------------------
def _round_done(monitor: Monitor, round_: int, **fields) -> None:
    base = dict(
        finalized=True,
        accepted=["0xa", "0xb"],
        rejected={"0xc": "hash-mismatch"},
        epsilon=0.25,
        seconds=1.5,
        stages={"train": 0.4, "verify": 0.7},
    )
    monitor.on_event("round_done", round_, {**base, **fields})


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_monitor_counts_rounds_and_serves_parseable_metrics():
    log = EventLog("hospital-a", stream=open("/dev/null", "w"))
    monitor = Monitor("hospital-a", epsilon_budget=1.0)
    log.listeners.append(monitor.on_event)
    log.emit("round_joined", 1)
    _round_done(monitor, 1)
    log.emit("round_joined", 2)
    _round_done(
        monitor,
        2,
        finalized=False,
        rejected={"0xc": "robust-rule", "0xd": "robust-rule"},
        epsilon=0.5,
    )
    labels = np.repeat([1.0, 0.0], 10)
    good = labels + np.tile(np.linspace(0, 1.5, 10), 2)  # AUC 0.925
    bad = -good  # AUC 0.075: far below, 7.7 DeLong SE -> an alert with the next round_done
    monitor.check_model(3, binary_scores(labels, good), labels, good)
    monitor.check_model(4, binary_scores(labels, bad), labels, bad)
    _round_done(monitor, 4, epsilon=0.75)
    server = StatusServer(monitor).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        status, body = _get(server.url + "/metrics")
        assert status == 200
        fam = _families(body.decode())
        samples = [s for f in fam.values() for s in f.samples]

        def value(name: str, **labels: str) -> float:
            return next(
                s.value
                for s in samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
            )

        assert value("medmesh_rounds_joined_total") == 2
        assert (
            value("medmesh_rounds_finalized_total") == 2
            and value("medmesh_rounds_failed_total") == 1
        )
        assert value("medmesh_updates_rejected_total", reason="robust-rule") == 2
        assert value("medmesh_updates_rejected_total", reason="hash-mismatch") == 2
        assert value("medmesh_round_stage_seconds_count", stage="train") == 3
        assert value("medmesh_round_stage_seconds_sum", stage="verify") == pytest.approx(2.1)
        assert value("medmesh_epsilon_spent") == 0.75 and value("medmesh_epsilon_budget") == 1.0
        assert value("medmesh_validation_auc") == pytest.approx(binary_scores(labels, bad).auc)
        assert value("medmesh_alert", kind="accuracy_drop") == 1
        assert value("medmesh_alert", kind="anomalous_update") == 0
        assert value("medmesh_alerts_total", kind="accuracy_drop") == 1
        assert (
            "medmesh_bytes_sent" in fam
            and "medmesh_peers_connected" in fam
            and "medmesh_chain_seconds" in fam
        )
        status, body = _get(server.url + "/status.json")
        snap = json.loads(body)
        assert [r["round"] for r in snap["rounds"]] == [1, 2, 4]
        assert snap["alerts"][0]["kind"] == "accuracy_drop" and snap["epsilon"] == {
            "spent": 0.75,
            "budget": 1.0,
        }
        assert _get(server.url + "/")[0] == 200 and b"/status.js" in _get(server.url + "/")[1]
        assert _get(server.url + "/nope")[0] == 404
        req = urllib.request.Request(server.url + "/metrics", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        assert info.value.code == 405  # read-only
    finally:
        server.close()


def test_chain_latency_and_errors_are_timed_per_operation():
    class Client:
        """LedgerClient's observer contract: each transaction (its method name) and each read
        ("call") runs inside every ``observer(op)`` of ``observers``."""

        def __init__(self):
            self.observers = []

        def run(self, op, result):
            with ExitStack() as stack:
                for observer in self.observers:
                    stack.enter_context(observer(op))
                if isinstance(result, Exception):
                    raise result
                return result

    monitor, client = Monitor("hospital-a"), Client()
    monitor._time_chain(client)
    assert client.run("call", 5) == 5 and client.run("commit_update", {"gasUsed": 1}) == {
        "gasUsed": 1
    }
    with pytest.raises(RuntimeError):
        client.run("attest", RuntimeError("reverted"))
    fam = _families(__import__("prometheus_client").generate_latest(monitor.registry).decode())
    counts = {
        s.labels["op"]: s.value
        for s in fam["medmesh_chain_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts == {"call": 1, "commit_update": 1, "attest": 1}
    assert [
        (s.labels["op"], s.value)
        for s in fam["medmesh_chain_errors"].samples
        if s.name.endswith("_total")
    ] == [("attest", 1)]


def test_a_failing_listener_does_not_stop_the_log(capsys):
    log = EventLog("hospital-a")
    log.listeners.append(lambda *a: 1 / 0)
    log.emit("round_joined", 1)
    log.emit("round_joined", 2)
    out = capsys.readouterr()
    assert out.out.count("round_joined") == 2 and "listener_error ZeroDivisionError" in out.err


def test_drift_is_checked_each_round_on_the_current_rows(tmp_path):
    """A hospital whose rows turn "legacy scanner" (x -> 1.3 x + 0.5 sd) after round 1: the
    Monitor compares them with the pooled statistics each round and raises a drift alert (log
    event, medmesh_alert{kind="drift"}, status page line); a clean round clears it."""
    import io

    from prometheus_client import generate_latest

    from node.data.samples import LabelledData, Standardizer

    rng = np.random.default_rng(0)
    pooled = Standardizer(np.array([10.0, 100.0, 0.5]), np.array([2.0, 30.0, 0.1]))
    clean = rng.normal(pooled.mean, pooled.std, size=(80, 3))
    rows = lambda x: LabelledData(x.astype(np.float32), np.zeros(len(x), dtype=np.float32))  # noqa: E731
    monitor = Monitor("hospital-a")
    stream = io.StringIO()
    monitor.events = EventLog("hospital-a", json_lines=True, stream=stream)
    monitor.peer = SimpleNamespace(data=None, standardizer=pooled, raw_data=rows(clean))
    _round_done(monitor, 1)
    _round_done(monitor, 2)
    assert monitor.snapshot()["alerts"] == []
    monitor.peer.raw_data = rows(clean * 1.3 + 0.5 * pooled.std)
    _round_done(monitor, 3)
    snap = monitor.snapshot()
    assert [a["kind"] for a in snap["alerts"]] == ["drift"] and snap["rounds"][-1]["alerts"] == [
        "drift"
    ]
    metrics = _families(generate_latest(monitor.registry).decode())
    drift = {s.labels.get("kind"): s.value for s in metrics["medmesh_alert"].samples}
    assert drift["drift"] == 1 and metrics["medmesh_feature_drift_smd"].samples[0].value > 0.5
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(e["event"] == "alert" and e["kind"] == "drift" and e["round"] == 3 for e in logged)
    monitor.peer.raw_data = rows(clean)
    _round_done(monitor, 4)
    assert monitor.snapshot()["alerts"] == []


def test_update_watch_sees_the_opened_deltas():
    monitor = Monitor("hospital-a")
    opened = {
        s: SimpleNamespace(delta=d)
        for s, d in {
            "a": np.ones(3),
            "b": np.ones(3) * 1.1,
            "c": np.ones(3) * 0.9,
            "d": -np.ones(3) * 8,
        }.items()
    }
    alerts = monitor.check_updates(5, opened, np.ones(3))
    assert [a.subject for a in alerts] == ["d"]
    assert (
        monitor.check_updates(5, {"a": SimpleNamespace(delta=None)}, np.ones(3)) == []
    )  # masked: nothing seen


def test_dashboard_and_prometheus_snippet_name_only_exposed_metrics():
    """The shipped Grafana dashboard and alert rules cannot drift from the metric names."""
    import re
    from pathlib import Path

    from prometheus_client import generate_latest

    monitor = Monitor("hospital-a")
    monitor.chain_seconds.labels("call").observe(0.1)
    monitor.stage_seconds.labels("train").observe(0.1)
    families = list(text_string_to_metric_families(generate_latest(monitor.registry).decode()))
    exposed = {s.name for f in families for s in f.samples} | {
        f.name + "_total" for f in families if f.type == "counter"
    }
    docs = Path(__file__).resolve().parents[3] / "docs" / "monitoring"
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    used = set(re.findall(r"medmesh_[a-z_]+", exprs + (docs / "prometheus.yml").read_text()))
    assert used and used <= exposed, used - exposed


def test_busy_port_is_one_line_naming_the_section():
    from node.service.statuspage import MonitoringError

    first = StatusServer(Monitor("hospital-a"))
    try:
        port = first.httpd.server_address[1]
        with pytest.raises(
            MonitoringError,
            match=r"^\[monitoring\]: cannot listen on 127.0.0.1:\d+: .*enabled = false$",
        ):
            StatusServer(Monitor("hospital-a"), port=port)
    finally:
        first.close()
