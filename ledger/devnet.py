"""A local anvil devnet (from ``node_modules``) as a context manager.

    with Anvil() as rpc:
        w3 = connect(rpc)

The node listens on 127.0.0.1 (a free port unless one is given), is waited for by polling its
RPC with a deadline, and is always stopped on exit.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from .compile import REPO_ROOT
from .errors import LedgerError

__all__ = ["ANVIL_BIN", "Anvil", "rpc_answers"]

ANVIL_BIN = REPO_ROOT / "node_modules" / ".bin" / "anvil"
_READY_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_answers(rpc: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(rpc, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=1.0) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


class Anvil:
    """Runs ``node_modules/.bin/anvil --silent`` on 127.0.0.1; ``__enter__`` returns the RPC URL.

    ``block_time`` (seconds) makes anvil mine on a timer as well as on every transaction, so
    its clock follows wall time; without it the clock moves only when a transaction arrives.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: Path | None = None,
        block_time: int | None = None,
        extra_args: tuple[str, ...] = (),
        ready_timeout: float = _READY_TIMEOUT_S,
        host: str = "127.0.0.1",
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.host = host
        self.prefix = prefix  # a command anvil runs under (the network lab: ``ip netns exec NS``)
        self.binary = Path(binary) if binary is not None else ANVIL_BIN
        self.requested_port = port
        self.port: int | None = None
        if block_time is not None and block_time < 1:
            raise LedgerError(f"block time must be >= 1 s, got {block_time}")
        # with a block time, anvil also mines a block every `block_time` seconds (its clock moves
        # with wall time, so round deadlines pass); transactions are still mined at once
        timing = ("--block-time", str(block_time), "--mixed-mining") if block_time else ()
        self.extra_args = (*timing, *extra_args)
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def rpc(self) -> str:
        if self.port is None:
            raise LedgerError("anvil is not running")
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        if self.process is not None:
            raise LedgerError("anvil is already running")
        if not self.binary.is_file():
            raise LedgerError(f"anvil not found at {self.binary}; run `make setup`")
        attempts = 1 if self.requested_port is not None else 3
        last_error = ""
        for _ in range(attempts):  # a picked free port can be taken before anvil binds it
            self.port = self.requested_port or _free_port()
            last_error = self._launch()
            if not last_error:
                return self.rpc
        raise LedgerError(f"anvil did not start on port {self.port}: {last_error}")

    def _launch(self) -> str:
        args = [
            *self.prefix,
            str(self.binary),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--silent",
            *self.extra_args,
        ]
        try:
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            return f"{exc.strerror or exc}"
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            status = self.process.poll()
            if status is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                self.process = None
                return (err.strip().splitlines() or [f"exit status {status}"])[-1]
            if rpc_answers(self.rpc):
                return ""
            time.sleep(0.05)  # polling the RPC until the deadline; anvil has no readiness signal
        self.stop()
        return f"no RPC answer within {self.ready_timeout:.0f} s"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
