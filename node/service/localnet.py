"""A consortium of hospital node *processes* on 127.0.0.1, for tests and benchmarks.

:class:`LocalNet` deploys the contracts on a running chain (anvil), creates each node with
``medmesh node init``, registers it with ``medmesh node register`` (the admin admits the
genesis members), points every config at the others as bootstrap peers, and starts
``python -m node.cli node run --log-json`` per node. :class:`NodeProcess` reads a node's JSON
log line by line in a thread, so callers wait on events (``wait_for``) instead of sleeping.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger import Deployment, LedgerClient, connect, deploy, dev_account
from ledger.committee import set_committee_size
from node.data.samples import hospital_name
from node.peer.identity import NodeIdentity
from node.service.config import template

__all__ = ["LocalNet", "NodeProcess", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port on 127.0.0.1 free now, drawn below the kernel's ephemeral range: a node listens on
    it only once its process starts, minutes later, and a port the kernel handed out (bind to 0)
    could by then be taken by any outgoing connection, or by another run's port-0 pick (a CI run
    saw a node fail with "Address already in use")."""
    low = _ephemeral_low()
    for _ in range(200):
        port = secrets.randbelow(low - 10_000) + 10_000
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded range: any
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 where it cannot be read)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return low if low > 11_000 else 32768


class NodeProcess:
    """One ``medmesh node run`` process and the events it has logged so far; ``prefix``: a
    command it runs under (e.g. ``ip netns exec NS`` for the network lab in tests/netlab)."""

    def __init__(
        self,
        name: str,
        config: Path,
        log_dir: Path,
        env: dict[str, str],
        extra: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self.stderr_path = log_dir / f"{name}.stderr"
        self.stdout_path = log_dir / f"{name}.jsonl"
        self.spawned = time.time()  # wall clock, as the events' ``ts``: start-up = started - this
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [
                    *prefix,
                    sys.executable,
                    "-m",
                    "node.cli",
                    "node",
                    "run",
                    "--config",
                    str(config),
                    "--log-json",
                    *extra,
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.stdout_path, "ab") as copy:
            for raw in self.proc.stdout:
                copy.write(raw)
                copy.flush()
                try:
                    event = json.loads(raw)
                except ValueError:
                    event = {"event": "unparsed", "line": raw.decode(errors="replace").rstrip()}
                with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def find(self, pred: Callable[[dict], bool]) -> list[dict]:
        with self._changed:
            return [e for e in self.events if pred(e)]

    def mark(self) -> int:
        """The number of events logged so far: pass it as ``since`` to wait only for newer ones."""
        with self._changed:
            return len(self.events)

    def wait_for(
        self, pred: Callable[[dict], bool], timeout: float, what: str = "event", *, since: int = 0
    ) -> dict:
        """The first logged event (from index ``since`` on) matching ``pred``, waiting for new
        lines up to ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = since
        with self._changed:
            while True:
                for event in self.events[seen:]:
                    if pred(event):
                        return event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    tail = self.stderr_path.read_text(errors="replace")[-2000:]
                    raise TimeoutError(
                        f"{self.name}: no {what} within {timeout:.0f} s "
                        f"(exit status {self.proc.poll()}); stderr tail:\n{tail}"
                    )
                self._changed.wait(left)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


class LocalNet:
    """``n`` hospital nodes on 127.0.0.1 over the chain at ``rpc`` (anvil: its dev keys fund them);
    ``committee``: the attesters each round's beacon draws (0: every member)."""

    def __init__(
        self,
        root: Path,
        rpc: str,
        n: int,
        *,
        commit_window: int = 60,
        attest_window: int = 60,
        overrides: dict[str, dict[str, Any]] | None = None,
        threads: int = 1,
        committee: int = 0,
    ) -> None:
        self.root = Path(root)
        self.rpc = rpc
        self.n = n
        self.commit_window = commit_window
        self.attest_window = attest_window
        self.overrides = overrides or {}
        self.committee = committee
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "OMP_NUM_THREADS": str(threads),
            "PYTHONUNBUFFERED": "1",
        }
        self.names = [hospital_name(i) for i in range(n)]  # past 26: hospital-27, ...
        self.configs: dict[str, Path] = {}
        self.identities: dict[str, NodeIdentity] = {}
        self.multiaddrs: dict[str, str] = {}
        self.procs: dict[str, NodeProcess] = {}
        self.w3 = connect(rpc)
        self.deployment: Deployment | None = None

    def setup(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        admin = dev_account(self.w3)
        self.deployment = deploy(
            self.w3,
            admin,
            commit_window=self.commit_window,
            attest_window=self.attest_window,
            genesis_seats=max(4, self.n),
        )
        dep_path = self.root / "deployment.json"
        self.deployment.save(dep_path)
        if self.committee:  # as `medmesh devnet --committee K` does (docs/committee.md)
            set_committee_size(LedgerClient(self.w3, self.deployment, admin), self.committee)
        admin_key = self.root / "admin.key"
        admin_key.write_text(admin.key.hex())
        admin_key.chmod(0o600)
        for i, name in enumerate(self.names):
            self._init(name, i, self.n)
        for name in self.names:
            self._write_config(name)
            self._register(name, "--admin-key-file", str(admin_key))

    def _init(self, name: str, site: int, sites: int) -> None:
        from node.cli import main

        folder = self.root / name
        out = folder / "init.json"
        folder.mkdir(parents=True, exist_ok=True)
        code = _run_cli(
            main,
            [
                "node",
                "init",
                "--dir",
                str(folder),
                "--name",
                name,
                "--json",
                "--listen",
                f"/ip4/127.0.0.1/tcp/{free_port()}",
                "--rpc",
                self.rpc,
                "--deployment",
                str(self.root / "deployment.json"),
                "--site",
                str(site),
                "--sites",
                str(sites),
            ],
            out,
        )
        if code != 0:
            raise RuntimeError(f"node init {name} failed")
        info = json.loads(out.read_text())
        self.configs[name] = Path(info["config"])
        self.multiaddrs[name] = info["multiaddr"]
        self.identities[name] = NodeIdentity.load(Path(info["identity"]))

    def _register(self, name: str, *extra: str) -> dict:
        from node.cli import main

        out = self.root / name / "register.json"
        if (
            _run_cli(
                main,
                [
                    "node",
                    "register",
                    "--config",
                    str(self.configs[name]),
                    "--dev-fund",
                    "--json",
                    *extra,
                ],
                out,
            )
            != 0
        ):
            raise RuntimeError(f"node register {name} failed")
        return json.loads(out.read_text())

    def add_member(self, name: str, site: int = 0) -> dict:
        """A hospital that registers after the genesis members (pending until endorsed): its
        config lists every node as a bootstrap peer; the result of its ``node register``."""
        self._init(name, site, self.n)
        self.names.append(name)
        self._write_config(name)
        return self._register(name)

    def admit(self, name: str) -> dict:
        """``node register`` again: admits ``name`` once enough members endorsed it."""
        return self._register(name)

    def _write_config(self, name: str) -> None:
        path = self.configs[name]
        raw = tomllib.loads(path.read_text())
        raw["node"]["bootstrap"] = [a for n, a in self.multiaddrs.items() if n != name]
        for section, values in self.overrides.items():
            raw.setdefault(section, {}).update(values)
        path.write_text(template(raw))

    def client(self, name: str) -> LedgerClient:
        if self.deployment is None:
            raise RuntimeError(
                f"LocalNet.client({name!r}): nothing deployed yet; call setup() first"
            )
        return LedgerClient(self.w3, self.deployment, self.identities[name].account)

    def start(self, name: str, *extra: str) -> NodeProcess:
        """Start ``name``'s node; ``extra``: more ``node run`` options."""
        proc = NodeProcess(name, self.configs[name], self.root, self.env, extra)
        self.procs[name] = proc
        return proc

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def stop_all(self) -> None:
        for proc in self.procs.values():  # signal all first: they shut down in parallel
            if proc.proc.poll() is None:
                proc.proc.terminate()
        for proc in self.procs.values():
            proc.stop()


def _run_cli(main: Callable[[list[str]], int], argv: list[str], out: Path) -> int:
    """Run ``medmesh argv`` in this process with stdout captured to ``out``."""
    import contextlib

    with open(out, "w") as fh, contextlib.redirect_stdout(fh):
        return main(argv)
