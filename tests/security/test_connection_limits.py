"""Connection-level attacks on a real ``remediator serve`` process, over raw sockets: an
endless header, heads and bodies that never finish, idle keep-alives, more connections than
``[http] max_connections``. Each is cut by the server (receivers/server.py) while /health
keeps answering; memory and open files stay bounded (read from /proc)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.config import HttpSettings
from tests.e2e.test_serve import RECEIVER_KEY, _serve
from tests.fixtures.common import ROOT

LIMITS = HttpSettings(max_connections=50, header_timeout_s=2, body_timeout_s=3,
                      idle_timeout_s=1)
SETTINGS = f"""
[http]
max_connections = {LIMITS.max_connections}
header_timeout_s = {LIMITS.header_timeout_s}
body_timeout_s = {LIMITS.body_timeout_s}
idle_timeout_s = {LIMITS.idle_timeout_s}
"""


def _answer(status: str, body: dict[str, str], extra: str = "") -> bytes:
    text = json.dumps(body, separators=(",", ":")).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}"
            f"content-length: {len(text)}\r\nconnection: close\r\n\r\n").encode() + text


TOO_LARGE = _answer("431 Request Header Fields Too Large", {
    "error": "header_too_large",
    "detail": "the request head is larger than the limit of 65536 bytes"})
TOO_SLOW = _answer("408 Request Timeout", {
    "error": "timeout", "detail": "the request head did not arrive within 2 s"})
BUSY = _answer("503 Service Unavailable", {
    "error": "too_many_connections", "detail": "50 connections are busy; retry later"},
    "retry-after: 5\r\n")


class Served:
    def __init__(self, url: str, pid: int, log: Path) -> None:
        self.url, self.pid, self.log = url, pid, log
        self.port = int(url.rsplit(":", 1)[1])

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def clients(self) -> int:
        """Client connections the server holds open: its sockets that are TCP connections on
        its port (the listening socket and the loop's own pair left out)."""
        inodes = set()
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            with contextlib.suppress(FileNotFoundError):  # closed while we looked
                target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        count = 0
        for line in Path(f"/proc/{self.pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()  # sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            count += port == self.port and state != "0A" and inode in inodes  # 0A: LISTEN
        return count

    def health_ok(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp("limits")
    with _serve(tmp_path, ROOT / "playbooks", settings=SETTINGS) as (url, log_path, process):
        yield Served(url, process.pid, log_path)


@pytest.fixture
def quiet(served: Served) -> Served:
    """The server with no client connection left from a previous test."""
    deadline = time.monotonic() + 20
    while served.clients():
        assert time.monotonic() < deadline, f"{served.clients()} connections open after 20 s"
        time.sleep(0.05)
    return served


def read_until_closed(sock: socket.socket, bound_s: float = 30.0) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as a
    close); fails if it is still open after ``bound_s``."""
    got = b""
    deadline = time.monotonic() + bound_s
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"still open after {bound_s} s; got {got[:200]!r}"
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def closed_by_peer(sock: socket.socket) -> bool:
    """True if the server has closed this connection (nothing read is expected)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


class HealthProbes:
    """GET /health (2 s timeout each) in a loop on a thread until stopped."""

    def __init__(self, served: Served) -> None:
        self.ok = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(served,))

    def _run(self, served: Served) -> None:
        while not self._stop.is_set():
            if served.health_ok():
                self.ok += 1
            else:
                self.failed += 1
            self._stop.wait(0.05)

    def __enter__(self) -> HealthProbes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_an_endless_header_gets_431_and_memory_stays_bounded(quiet: Served) -> None:
    """4 clients each send one header of up to 8 MiB that never ends: each is answered 431
    (or reset) past 64 KiB; the server's peak memory rises by less than 24 MiB; /health
    answers throughout."""
    # Reset the peak (VmHWM) to the current RSS, so the peak after is the attack's own.
    Path(f"/proc/{quiet.pid}/clear_refs").write_text("5")
    before_kb = quiet.status_kb("VmRSS")
    answers: list[bytes] = []

    def attack() -> None:
        with quiet.connect() as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
            try:
                for _ in range(128):  # 128 x 64 KiB = 8 MiB
                    sock.sendall(b"a" * 65536)
            except OSError:  # the server closed the connection under us
                pass
            answers.append(read_until_closed(sock))

    with HealthProbes(quiet) as probes:
        attackers = [threading.Thread(target=attack) for _ in range(4)]
        for thread in attackers:
            thread.start()
        for thread in attackers:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in attackers)
    assert len(answers) == 4
    assert all(answer in (TOO_LARGE, b"") for answer in answers), [a[:120] for a in answers]
    assert TOO_LARGE in answers  # at least one client read it before the reset
    grew_kb = quiet.status_kb("VmHWM") - before_kb
    assert grew_kb < 24 * 1024, f"peak RSS grew by {grew_kb} kB"
    assert probes.failed == 0 and probes.ok >= 1, (probes.ok, probes.failed)
    assert quiet.health_ok()


def test_the_bound_counts_the_head_and_only_the_head(quiet: Served) -> None:
    """A whole request whose head is 70 KiB, sent at once, gets 431; a 200 KB body behind a
    small head is the app's to judge (422 here), as is a request pipelined right behind it
    in the same write."""
    with quiet.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: "
                     + b"a" * 70 * 1024 + b"\r\n\r\n")
        assert read_until_closed(sock) == TOO_LARGE
    body = b'{"pad":"' + b"a" * 200_000 + b'"}'
    with quiet.connect() as sock:
        sock.sendall(
            f"POST /azure-monitor HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {RECEIVER_KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answers = read_until_closed(sock)
    assert answers.startswith(b"HTTP/1.1 422 Unprocessable Entity\r\n"), answers[:200]
    assert answers.endswith(b'connection: close\r\n\r\n{"status":"ok"}'), answers[-200:]


def test_heads_that_never_finish_are_closed_with_408(quiet: Served) -> None:
    """20 connections send half a request head, then nothing: each gets 408 and is closed
    after the header timeout."""
    socks = [quiet.connect() for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(b"POST /azure-monitor HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        assert [read_until_closed(sock) for sock in socks] == [TOO_SLOW] * 20
    finally:
        for sock in socks:
            sock.close()
    assert quiet.health_ok()


def test_a_kept_alive_connection_is_closed_when_idle_or_left_mid_head(quiet: Served) -> None:
    """After a response, a silent kept-alive connection is closed (idle timeout); one that
    sends the first byte of its next request and stops gets 408 (header timeout), where
    uvicorn alone stops counting at the first byte and keeps it open for good."""
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for then, expected in ((b"", b""), (b"G", TOO_SLOW)):
        with quiet.connect() as sock:
            sock.sendall(request)
            response = b""
            while not response.endswith(b'{"status":"ok"}'):
                chunk = sock.recv(65536)
                assert chunk, response
                response += chunk
            assert response.startswith(b"HTTP/1.1 200 OK\r\n")
            if then:
                sock.sendall(then)
            assert read_until_closed(sock) == expected


def test_past_max_connections_the_oldest_idle_ones_are_closed(quiet: Served) -> None:
    """150 connections that send nothing, against max_connections 50: the server holds at
    most 50 of them (the oldest are closed as new ones come) and /health answers on a fresh
    connection."""
    socks = [quiet.connect() for _ in range(150)]
    try:
        deadline = time.monotonic() + 30
        while sum(closed_by_peer(sock) for sock in socks) < 100:
            assert time.monotonic() < deadline, (
                f"{sum(closed_by_peer(s) for s in socks)} of 150 closed by the server")
            time.sleep(0.05)
        # Accepted sockets wait a loop turn for their protocol: poll until that settles.
        while quiet.clients() > LIMITS.max_connections:
            assert time.monotonic() < deadline, f"the server holds {quiet.clients()}"
            time.sleep(0.05)
        assert quiet.health_ok()
    finally:
        for sock in socks:
            sock.close()


def test_when_every_connection_is_busy_a_newcomer_gets_503(quiet: Served) -> None:
    """50 webhooks whose bodies stop half way keep every connection busy: the 51st
    connection gets 503 with Retry-After; the body timeout then cuts the 50 and /health
    answers again."""
    head = (f"POST /azure-monitor HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {RECEIVER_KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: 1000\r\n\r\n").encode()
    socks = [quiet.connect() for _ in range(LIMITS.max_connections)]
    try:
        for sock in socks:
            sock.sendall(head + b'{"schemaId":')
        # Busy once the app reads the body: poll until a newcomer is refused.
        deadline = time.monotonic() + 30
        while True:
            with quiet.connect() as newcomer:
                newcomer.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Connection: close\r\n\r\n")
                answer = read_until_closed(newcomer)
            if answer == BUSY:
                break
            assert time.monotonic() < deadline, answer[:200]
        assert [read_until_closed(sock) for sock in socks] == [b""] * len(socks)
    finally:
        for sock in socks:
            sock.close()
    assert quiet.health_ok()
    assert "internal error" not in quiet.log.read_text()
