"""`medmesh devnet` as an IT team runs it (issues 17.5, 17.13, 17.14): windows as options, the
admin key written 0600 and explained, and SIGTERM stopping anvil and freeing its port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from ledger import Deployment, LedgerClient, connect
from node.service.localnet import REPO_ROOT, free_port

pytestmark = [pytest.mark.anvil]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_devnet_windows_admin_key_and_sigterm(tmp_path):
    port, out = free_port(), tmp_path / "deployment.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node.cli",
            "devnet",
            "--port",
            str(port),
            "--out",
            str(out),
            "--commit-window",
            "45",
            "--attest-window",
            "30",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while not any("deployment written" in line for line in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
            lines.append(line)
            assert time.monotonic() < deadline, lines
        text = "".join(lines)
        key = tmp_path / "admin.key"
        assert f"admin key written to {key} (0600)" in text
        assert os.stat(key).st_mode & 0o777 == 0o600
        deployment = Deployment.load(out)
        w3 = connect(f"http://127.0.0.1:{port}")
        from eth_account import Account

        assert Account.from_key(key.read_text().strip()).address == deployment.admin
        config = LedgerClient(w3, deployment).ledger_config()
        assert (config["commit_window"], config["attest_window"]) == (45, 30)

        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0 and time.monotonic() - sent < 10
        assert "devnet stopped" in proc.stdout.read()
        assert not port_open(port), "anvil still holds the port after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
