"""Network namespaces for the lab: shell helpers around ``ip``, ``tc`` and ``nft``, and sockets
opened inside a namespace from this process (``setns`` on a short-lived thread: a socket keeps
the namespace it was created in, whichever thread uses it later)."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = [
    "NetnsUnavailable",
    "sh",
    "netns_supported",
    "ensure_nftables",
    "in_netns",
    "socket_in",
    "namespaces",
    "namespace_pids",
]

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailable(RuntimeError):
    """The kernel or the tools cannot make network namespaces here."""


def sh(*args: str, input_: str | None = None, check: bool = True) -> str:
    """Run one command; a failure raises with the command and its stderr on one line."""
    done = subprocess.run(args, input=input_, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def netns_supported() -> str | None:
    """None where namespaces work; else why not (the reason a test skips with)."""
    if not os.path.exists("/proc/self/ns/net"):
        return "the kernel has no network namespaces (/proc/self/ns/net is missing)"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    probe = f"mm-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot create a network namespace: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ensure_nftables() -> None:
    """Install the ``nftables`` package with apt-get, only where ``nft`` is missing."""
    if shutil.which("nft"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "nftables"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` on a fresh thread that has entered namespace ``ns``; the thread ends after."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            with open(f"/run/netns/{ns}") as handle:
                if _libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({ns}) failed")
            out["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["value"]  # type: ignore[return-value]


def socket_in(ns: str | None) -> socket.socket:
    """A non-blocking TCP socket created in namespace ``ns`` (None: this process's own)."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    return make() if ns is None else in_netns(ns, make)


def namespaces(prefix: str) -> list[str]:
    """Names of the existing network namespaces that start with ``prefix``."""
    return [
        line.split()[0]
        for line in sh("ip", "netns", "list").splitlines()
        if line.strip() and line.split()[0].startswith(prefix)
    ]


def namespace_pids(ns: str) -> Sequence[int]:
    return [int(p) for p in sh("ip", "netns", "pids", ns, check=False).split()]
