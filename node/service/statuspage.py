"""The node's monitoring endpoint: ``/metrics`` (Prometheus text format, rendered by
``prometheus_client``), ``/`` (the status page), ``/status.js``, ``/status.css`` and ``/status.json`` on one port.

Read-only (GET and HEAD only; anything else is 405), bound to ``[monitoring].host`` (127.0.0.1 by
default), and the page shows only :meth:`Monitor.snapshot`: identity, rounds, ε, validation AUC,
peers and alerts, never a key, a row or an update. The page loads nothing from elsewhere
(``Content-Security-Policy: default-src 'self'``), so it works on an offline hospital network.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from node.errors import MedmeshError
from node.service.metrics import Monitor

__all__ = ["MonitoringError", "StatusServer", "start_monitoring"]

log = logging.getLogger("medmesh.monitoring")
_ASSETS = resources.files("node.service") / "statuspage_assets"


class MonitoringError(MedmeshError, RuntimeError):
    """The monitoring endpoint cannot start; one line naming the config key."""


class StatusServer:
    """Serve ``monitor`` on ``host:port`` (0: any free port) from a daemon thread."""

    def __init__(self, monitor: Monitor, host: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            log.warning(
                "monitoring on %s: the status page and /metrics are visible beyond this machine",
                host,
            )
        self.monitor = monitor
        self.pages = {
            "/": ("text/html; charset=utf-8", (_ASSETS / "status.html").read_bytes()),
            "/status.js": ("text/javascript; charset=utf-8", (_ASSETS / "status.js").read_bytes()),
            "/status.css": ("text/css; charset=utf-8", (_ASSETS / "status.css").read_bytes()),
        }
        handler = type("Handler", (_Handler,), {"server_ref": self})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise MonitoringError(
                f"[monitoring]: cannot listen on {host}:{port}: {exc.strerror or exc}; "
                f"set another port (0: any free one) or enabled = false"
            ) from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="medmesh-status", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever: never call it unstarted
            self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_ref: StatusServer

    def _body(self) -> tuple[int, str, bytes]:
        path = self.path.split("?", 1)[0]
        srv = self.server_ref
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(srv.monitor.registry)
        if path == "/status.json":
            return (
                200,
                "application/json",
                json.dumps(srv.monitor.snapshot(), allow_nan=False).encode(),
            )
        if path == "/favicon.ico":
            return 204, "image/x-icon", b""
        if path in srv.pages:
            return 200, *srv.pages[path]
        return 404, "text/plain; charset=utf-8", b"not found\n"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(with_body=False)

    def _refuse(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _answer(self, with_body: bool) -> None:
        status, ctype, body = self._body()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", "default-src 'self'")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(
        self, format: str, *args
    ) -> None:  # scrapes every few seconds: not worth a log line
        pass


def start_monitoring(runner) -> StatusServer | None:
    """Monitor a built :class:`~node.service.runner.NodeRunner` and serve its page and metrics,
    as ``[monitoring]`` says (None when disabled); logs a ``monitoring`` event with the URL."""
    from node.monitoring.alerts import AlertThresholds

    m = runner.cfg.monitoring
    if not m.enabled:
        return None
    monitor = Monitor(
        runner.identity.institution,
        AlertThresholds(m.auc_drop, m.bias_gap, m.norm_z, m.min_cosine, m.drift_smd, m.auc_alpha),
        epsilon_budget=runner.cfg.privacy.epsilon,
        alerts_on_chain=m.alerts_on_chain,
        campaign_rounds=runner.cfg.privacy.rounds,
    )
    monitor.attach(runner)
    monitor.set_epsilon(runner.peer.privacy.spent())
    runner.events.listeners.append(monitor.on_event)
    server = StatusServer(monitor, m.host, m.port).start()
    runner.events.emit("monitoring", url=server.url, metrics=f"{server.url}/metrics")
    return server
