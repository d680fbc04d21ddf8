"""A node's monitoring: Prometheus metrics, local alerts and the status page's state.

:class:`Monitor` listens to the runner's :class:`~node.service.events.EventLog` (``round_joined``,
``round_done``, ``peer_joined`` ...), times the ledger client's calls and transactions, and, after
every round, scores the new global model on the hospital's own validation split and compares its
current training rows with the consortium's agreed pooled feature statistics (drift;
:class:`~node.service.modelwatch.ModelWatch`), and runs the alert rules of
:mod:`node.monitoring.alerts` on the updates this peer opened. Nothing here
leaves the hospital: the page and ``/metrics`` are served on ``[monitoring].host`` (127.0.0.1 by
default) by :mod:`node.service.statuspage`.

Metric names follow the Prometheus conventions (``_total`` counters, base units, ``medmesh_`` prefix).
Every value is this node's own measurement; a peer's claims (its ε, its sample count) are never shown
as facts.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily

from node.monitoring.alerts import (
    ALERT_KINDS,
    Alert,
    AlertThresholds,
    anomalous_updates,
    update_screen,
)
from node.monitoring.stagetimes import STAGES
from node.service.modelwatch import KEEP_ROUNDS, ModelWatch, UpdateWatch, validation_split

if TYPE_CHECKING:
    from node.service.alert_records import AlertRecorder

__all__ = ["Monitor", "validation_split"]

STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CHAIN_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class _GossipCollector:
    """Bytes on the wire and peers, read from the host at scrape time (exact, no per-round sums)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self):
        host = self.monitor.host
        sent = CounterMetricFamily(
            "medmesh_bytes_sent", "Payload bytes sent (blobs and control messages)"
        )
        received = CounterMetricFamily(
            "medmesh_bytes_received", "Payload bytes received (blobs and control)"
        )
        if host is not None:
            s = host.stats
            sent.add_metric([], s.blob_bytes_sent + s.control_bytes_sent)
            received.add_metric([], s.blob_bytes_received + s.control_bytes_received)
        yield sent
        yield received


class Monitor:
    """Metrics, alerts and status of one node. ``on_event`` is an EventLog listener; ``attach``
    hooks the peer and the ledger client once the runner has built them."""

    def __init__(
        self,
        institution: str,
        thresholds: AlertThresholds | None = None,
        epsilon_budget: float = float("nan"),
        alerts_on_chain: bool = False,
        campaign_rounds: int = KEEP_ROUNDS,
    ) -> None:
        self.institution = institution
        self.alerts_on_chain = alerts_on_chain
        self.recorder: AlertRecorder | None = None  # once attached, when alerts_on_chain
        self.watch = ModelWatch(
            thresholds if thresholds is not None else AlertThresholds(), campaign_rounds
        )
        self.thresholds = self.watch.thresholds
        self.host = None
        self.peer = None
        self.events = None
        self.lock = threading.Lock()  # the HTTP thread reads what the event loop writes
        self.registry = r = CollectorRegistry()
        self.rounds_joined = Counter("medmesh_rounds_joined", "Rounds this node joined", registry=r)
        self.rounds_finalized = Counter(
            "medmesh_rounds_finalized", "Joined rounds that finalized on chain", registry=r
        )
        self.rounds_failed = Counter(
            "medmesh_rounds_failed", "Joined rounds that did not finalize", registry=r
        )
        self.stage_seconds = Histogram(
            "medmesh_round_stage_seconds",
            "Wall time of each round stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.round_seconds = Histogram(
            "medmesh_round_seconds", "Wall time of a whole round", buckets=STAGE_BUCKETS, registry=r
        )
        self.epsilon_spent = Gauge(
            "medmesh_epsilon_spent", "Privacy budget spent (this node's own ledger)", registry=r
        )
        self.epsilon_budget = Gauge(
            "medmesh_epsilon_budget", "Privacy budget of the campaign", registry=r
        )
        self.epsilon_budget.set(epsilon_budget)
        self._epsilon = {"spent": 0.0, "budget": epsilon_budget}
        self.peers_connected = Gauge(
            "medmesh_peers_connected", "Peers connected over libp2p", registry=r
        )
        self.rejected = Counter(
            "medmesh_updates_rejected",
            "Committed updates this node refused",
            ["reason"],
            registry=r,
        )
        self.chain_errors = Counter(
            "medmesh_chain_errors", "Chain calls and transactions that failed", ["op"], registry=r
        )
        self.chain_seconds = Histogram(
            "medmesh_chain_seconds",
            "Latency of chain calls and transactions",
            ["op"],
            buckets=CHAIN_BUCKETS,
            registry=r,
        )
        self.current_round = Gauge("medmesh_round", "The round this node last joined", registry=r)
        self.val_auc = Gauge(
            "medmesh_validation_auc", "Global model's AUC on the local validation split", registry=r
        )
        self.val_sens = Gauge(
            "medmesh_validation_sensitivity",
            "Global model's sensitivity on the local split",
            registry=r,
        )
        self.val_gap = Gauge(
            "medmesh_validation_sensitivity_gap",
            "Largest sensitivity gap between groups",
            registry=r,
        )
        self.drift = Gauge(
            "medmesh_feature_drift_smd",
            "Largest move of a feature's standardized mean difference to "
            "the consortium's pooled mean since the first round",
            registry=r,
        )
        self.alert = Gauge(
            "medmesh_alert",
            "1 while an alert of this kind is active (raised last round)",
            ["kind"],
            registry=r,
        )
        self.alerts_total = Counter("medmesh_alerts", "Alerts raised", ["kind"], registry=r)
        for kind in ALERT_KINDS:
            self.alert.labels(kind).set(0)
        r.register(_GossipCollector(self))
        # status page state (guarded by self.lock)
        self.identity: dict[str, Any] = {"institution": institution}
        self.stage = "starting"
        self.round: int | None = None
        self.rounds: deque[dict] = deque(maxlen=KEEP_ROUNDS)
        self.peers: dict[str, dict] = {}
        self.active_alerts: list[Alert] = []
        self._pending: list[Alert] = []  # raised while the round runs, published with round_done

    # -- wiring --------------------------------------------------------------------------
    def attach(self, runner) -> None:
        """Hook the built runner: its host (bytes, peers), ledger client (latency, errors), and
        the peer's aggregation (the opened updates, for the anomalous-update rule)."""
        self.host, self.peer, self.events = runner.host, runner.peer, runner.events
        ident = runner.identity
        with self.lock:
            self.identity = {
                "institution": ident.institution,
                "address": ident.address,
                "peer_id": runner.host.peer_id,
                "membership": "active",
            }
        self.watch.validation = validation_split(runner.cfg.data)
        if self.alerts_on_chain:
            from node.service.alert_records import AlertRecorder

            self.recorder = AlertRecorder(
                runner.client, runner.events, runner.cfg.node.state_dir / "alerts"
            )
        self._time_chain(runner.client)
        self._watch_aggregation(runner.peer)
        self._watch_stages(runner.peer)

    def _time_chain(self, client) -> None:
        @contextmanager
        def timed(op: str):
            start = time.perf_counter()
            try:
                yield
            except Exception:
                self.chain_errors.labels(op).inc()
                raise
            finally:
                self.chain_seconds.labels(op).observe(time.perf_counter() - start)

        client.observers.append(timed)

    def _watch_aggregation(self, peer) -> None:
        peer.mods.add(UpdateWatch(self.check_updates, self._log))

    def _watch_stages(self, peer) -> None:
        """Show the stage a round is in: the peer's clock says when each stage starts."""
        peer.clock.subscribe(
            lambda event: (
                self._set_stage(event.name)
                if event.seconds is None and event.name in STAGES
                else None
            )
        )

    def _set_stage(self, stage: str) -> None:
        with self.lock:
            self.stage = stage

    def _log(self, event: str, round_: int | None = None, **fields) -> None:
        if self.events is not None:
            self.events.emit(event, round_, **fields)

    # -- alerts --------------------------------------------------------------------------
    def check_updates(self, round_: int, opened: dict, step: np.ndarray) -> list[Alert]:
        """The anomalous-update rule over the updates opened this round (where the protection
        mode reveals them: sealed updates carry ``.delta``; masked and encrypted ones do not)."""
        deltas = {s: u.delta for s, u in opened.items() if getattr(u, "delta", None) is not None}
        if len(deltas) < 2:
            return []
        alerts = anomalous_updates(deltas, step, round_, self.thresholds)
        self._log(
            "updates_screened",
            round_,
            **{
                s[:10]: {k: round(v, 4) for k, v in m.items()}
                for s, m in update_screen(deltas, step).items()
            },
        )
        self._pending += alerts
        return alerts

    def check_model(
        self, round_: int, scores, labels: np.ndarray, logits: np.ndarray
    ) -> list[Alert]:
        """Accuracy-drop and bias-shift rules on the new global model's validation scores
        (:meth:`ModelWatch.model_alerts`), shown as the validation gauges."""
        alerts, gap = self.watch.model_alerts(round_, scores, labels, logits)
        self.val_auc.set(scores.auc)
        self.val_sens.set(scores.sensitivity)
        self.val_gap.set(gap)
        self._pending += alerts
        return alerts

    def check_drift(
        self,
        round_: int,
        rows: np.ndarray,
        pooled_mean: np.ndarray,
        pooled_std: np.ndarray,
        names=None,
    ) -> list[Alert]:
        """The drift rule (:meth:`ModelWatch.drift_alerts`), shown as the drift gauge."""
        alerts, moved = self.watch.drift_alerts(round_, rows, pooled_mean, pooled_std, names)
        self.drift.set(moved)
        self._pending += alerts
        return alerts

    def _check_peer_drift(self, round_: int) -> None:
        peer = self.peer
        std = getattr(peer, "standardizer", None)
        data = getattr(peer, "raw_data", None)
        if std is None or data is None or len(data) < 2:  # images: no pooled feature statistics
            return
        self.check_drift(round_, data.x, std.mean, std.std)

    def _publish_alerts(self, round_: int) -> None:
        raised, self._pending = self._pending, []
        kinds = {a.kind for a in raised}
        for kind in ALERT_KINDS:
            self.alert.labels(kind).set(1 if kind in kinds else 0)
        for a in raised:
            self.alerts_total.labels(a.kind).inc()
            self._log("alert", round_, kind=a.kind, subject=a.subject, message=a.message)
        with self.lock:
            self.active_alerts = raised
        if self.recorder is not None and raised:
            self.recorder.record(round_, raised)

    # -- events --------------------------------------------------------------------------
    def on_event(self, event: str, round_: int | None, fields: dict[str, Any]) -> None:
        """EventLog listener (runs on the node's event loop; cheap except after a round)."""
        handler = getattr(self, f"_on_{event}", None)
        if handler is not None:
            handler(round_, fields)

    def set_epsilon(self, spent: float) -> None:
        self.epsilon_spent.set(spent)
        with self.lock:
            self._epsilon["spent"] = spent

    def _on_round_joined(self, round_, fields) -> None:
        self.rounds_joined.inc()
        self.current_round.set(round_)
        with self.lock:
            self.round, self.stage = round_, "running"

    def _on_round_done(self, round_, fields) -> None:
        finalized = bool(fields.get("finalized"))
        (self.rounds_finalized if finalized else self.rounds_failed).inc()
        for stage, seconds in (fields.get("stages") or {}).items():
            self.stage_seconds.labels(stage).observe(seconds)
        self.round_seconds.observe(fields.get("seconds", 0.0))
        self.set_epsilon(fields.get("epsilon", 0.0))
        rejected = fields.get("rejected") or {}
        for reason in rejected.values():
            self.rejected.labels(reason).inc()
        scores = None
        try:
            evaluated = None if self.peer is None else self.watch.evaluate(self.peer)
            if evaluated is not None:
                rows, scores, logits = evaluated
                self.check_model(round_, scores, rows.y, logits)
            self._check_peer_drift(round_)
        except Exception as exc:  # a monitoring fault is logged, the node goes on
            self._log("monitor_error", round_, error=str(exc)[:160])
        self._publish_alerts(round_)
        row = {
            "round": round_,
            "finalized": finalized,
            "accepted": len(fields.get("accepted") or []),
            "rejected": len(rejected),
            "epsilon": fields.get("epsilon"),
            "seconds": fields.get("seconds"),
            "auc": None if scores is None or math.isnan(scores.auc) else round(scores.auc, 4),
            "alerts": [a.kind for a in self.active_alerts],
        }
        with self.lock:
            self.rounds.append(row)
            self.stage = "idle"
        if self.host is not None:
            self._on_peer_seen()

    def _on_peer_joined(self, round_, fields) -> None:
        self._on_peer_seen()

    def _on_peer_left(self, round_, fields) -> None:
        with self.lock:
            if fields.get("peer_id") in self.peers:
                self.peers[fields["peer_id"]]["connected"] = False
        self._on_peer_seen()

    def _on_peer_seen(self) -> None:
        if self.host is None:
            return
        now = time.time()
        connected = self.host.connected_peers()
        self.peers_connected.set(len(connected))
        with self.lock:
            for pid in connected:
                self.peers[pid] = {"connected": True, "last_seen": now}
            for pid in set(self.peers) - set(connected):
                self.peers[pid]["connected"] = False

    def _on_not_active(self, round_, fields) -> None:
        with self.lock:
            self.identity["membership"] = fields.get("status", "inactive")

    # -- the status page's view ----------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What the status page shows: no key, no row, no secret; JSON-ready."""
        with self.lock:
            return {
                "identity": dict(self.identity),
                "round": self.round,
                "stage": self.stage,
                "rounds": list(self.rounds),
                "epsilon": {k: _num(v) for k, v in self._epsilon.items()},
                "peers": [{"peer_id": p, **v} for p, v in sorted(self.peers.items())],
                "alerts": [a.to_json() for a in self.active_alerts],
                "now": time.time(),
            }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)
