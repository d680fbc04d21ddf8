"""The lab itself, measured with plain sockets between two hospital namespaces: the relay adds the
configured RTT, tbf caps the rate, a partition cuts the path and a heal restores it, direct
hospital-to-hospital dials are refused, and nothing of the lab is left after ``down``."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from netlab.lab import NODE_PORT, Lab, LinkSpec
from netlab.netns import in_netns, namespaces

RTT_MS = 100
MBIT = 8
PAYLOAD = 1_000_000  # 1 MB: 1.0 s at 8 Mbit/s


def _echo_server(lab: Lab) -> socket.socket:
    """In hospital-b: answer b"ping" with b"pong"; on other data, count bytes until EOF and answer the count."""
    srv = in_netns(
        lab.ns["hospital-b"], lambda: socket.create_server((lab.ip["hospital-b"], NODE_PORT))
    )

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                total = 0
                while data := conn.recv(65536):
                    if data == b"ping":
                        conn.sendall(b"pong")
                    else:
                        total += len(data)
                conn.sendall(str(total).encode())

    threading.Thread(target=serve, daemon=True).start()
    return srv


def _dial(lab: Lab, address: str, timeout: float = 5.0) -> socket.socket:
    return in_netns(
        lab.ns["hospital-a"],
        lambda: socket.create_connection((address, NODE_PORT), timeout=timeout),
    )


def test_lab_shapes_cuts_and_cleans_up(make_lab):
    lab = make_lab(2, rtt_ms=RTT_MS, link=LinkSpec(mbit=MBIT))
    srv = _echo_server(lab)
    try:
        conn = _dial(lab, lab.alias["hospital-b"])
        rtts = []
        for _ in range(3):
            t = time.monotonic()
            conn.sendall(b"ping")
            assert conn.recv(4) == b"pong"
            rtts.append(time.monotonic() - t)
        assert min(rtts) >= RTT_MS / 1000  # the relay holds each chunk RTT/2 each way
        t = time.monotonic()
        conn.sendall(b"x" * PAYLOAD)
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(32) == str(PAYLOAD).encode()
        assert (
            time.monotonic() - t >= PAYLOAD * 8 / (MBIT * 1e6) * 0.9
        )  # tbf: no faster than the rate
        conn.close()
        with pytest.raises(OSError):  # the other hospital's own address is not reachable directly
            _dial(lab, lab.ip["hospital-b"])
        lab.partition(["hospital-a"], ["hospital-b"])
        with pytest.raises(OSError):  # dropped: the dial times out
            _dial(lab, lab.alias["hospital-b"], timeout=1.0)
        lab.heal()
        _dial(lab, lab.alias["hospital-b"]).close()
    finally:
        srv.close()
        lab.down()
    assert not [ns for ns in namespaces(lab.tag)]


def _timed_transfer(lab: Lab, sender: str, receiver: str) -> float:
    """Seconds for PAYLOAD bytes from ``sender`` to ``receiver`` over a connection hospital-a
    dialed to hospital-b's relay alias (the direction back uses the same connection)."""
    srv = in_netns(
        lab.ns["hospital-b"], lambda: socket.create_server((lab.ip["hospital-b"], NODE_PORT))
    )
    b_sends = sender == "hospital-b"

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            if b_sends:
                conn.sendall(b"x" * PAYLOAD)
            else:
                while conn.recv(65536):
                    pass
                conn.sendall(b"done")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        conn = _dial(lab, lab.alias["hospital-b"])
        t = time.monotonic()
        if b_sends:
            got = 0
            while data := conn.recv(65536):
                got += len(data)
            assert got == PAYLOAD
        else:
            conn.sendall(b"x" * PAYLOAD)
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(4) == b"done"
        conn.close()
        return time.monotonic() - t
    finally:
        srv.close()
        thread.join(5)


def test_the_answering_side_link_shapes_a_relayed_connection(make_lab):
    """Only hospital-b's link is slow, and hospital-a dials: both directions still take at least
    PAYLOAD at b's rate (the relay used to reach b over b's own loopback, skipping b's link)."""
    lab = make_lab(2, rtt_ms=0)
    try:
        lab.set_link("hospital-b", LinkSpec(mbit=MBIT))
        floor = PAYLOAD * 8 / (MBIT * 1e6) * 0.9
        assert _timed_transfer(lab, "hospital-a", "hospital-b") >= floor  # b's download
        assert _timed_transfer(lab, "hospital-b", "hospital-a") >= floor  # b's upload
    finally:
        lab.down()
