"""Fast tests of a node's monitoring: the ``[monitoring]`` config section, and the Monitor + HTTP
server read back through Prometheus' own text parser. The alert rules' arithmetic is in
test_alert_rules.py; the 4-node run with a browser in tests/e2e/test_monitoring_node.py."""

from __future__ import annotations

import json
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
