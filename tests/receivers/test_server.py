"""receivers/server.py's protocol fed byte for byte, where the split of a request into reads
matters and a socket cannot fix it: the head limit is exact however the head is cut, and a
head behind another message in one read is measured too; a newcomer past max_connections
closes the longest-waiting idle connection, never a busy one. Attacks over real sockets on a
real ``serve``: tests/security/test_connection_limits.py."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from engine.config import HttpSettings, load_settings
from engine.errors import ConfigError
from receivers.server import RESERVED_FILES, GuardedProtocol, build_server
from tests.fixtures.common import ROOT, assert_wrapped

LIMIT = 65536
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
             b"content-length: 96\r\nconnection: close\r\n\r\n"
             b'{"error":"header_too_large",'
             b'"detail":"the request head is larger than the limit of 65536 bytes"}')


class Wire(asyncio.Transport):
    """The server's side of one connection: what was written, whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def echo_length(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, answers 200 with its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    text = str(size).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(text)).encode())]})
    await send({"type": "http.response.body", "body": text})


def run(app: Any, limits: HttpSettings,
        test: Callable[[Callable[[], tuple[GuardedProtocol, Wire]]], Coroutine[Any, Any, None]],
        ) -> None:
    """Run ``test`` on a loop with a ``connect()`` that opens a guarded connection."""
    server = build_server(app, limits, host="127.0.0.1", port=0, lifespan="off")
    server.config.load()

    async def main() -> None:
        def connect() -> tuple[GuardedProtocol, Wire]:
            protocol = GuardedProtocol(server.config, server.server_state, {})
            wire = Wire()
            protocol.connection_made(wire)
            return protocol, wire

        await test(connect)

    asyncio.run(main())


async def settle() -> None:
    """Let the app's tasks run."""
    for _ in range(50):
        await asyncio.sleep(0)


def head(size: int, *, method: str = "GET") -> bytes:
    """A request head of exactly ``size`` bytes (an X-A header pads it)."""
    start = f"{method} /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ".encode()
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


def test_the_head_limit_is_exact_however_the_head_is_cut() -> None:
    async def test(connect: Callable[[], tuple[GuardedProtocol, Wire]]) -> None:
        for cuts in ((), (100,), (LIMIT - 1,), (LIMIT,), (1000, 2000, LIMIT - 3)):
            for size, expected in ((LIMIT, b"HTTP/1.1 200 OK"), (LIMIT + 1, TOO_LARGE)):
                protocol, wire = connect()
                data = head(size)
                for start, end in zip((0, *cuts), (*cuts, len(data)), strict=True):
                    protocol.data_received(data[start:end])
                await settle()
                assert wire.sent.startswith(expected), (cuts, size, wire.sent[:100])
                assert wire.closed is (expected == TOO_LARGE)
                protocol.connection_lost(None)

    run(echo_length, HttpSettings(), test)


def test_a_head_behind_another_message_in_the_same_read_is_measured() -> None:
    """The first read ends one request (a small body or one larger than the head limit) and
    starts the next head, which is over the limit only with what the second read brings."""
    async def test(connect: Callable[[], tuple[GuardedProtocol, Wire]]) -> None:
        for body, cut in ((b"hello", 60_000), (b"b" * 70_000, 1000)):
            first = (b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: %d\r\n\r\n"
                     % len(body) + body)
            for size, last in ((LIMIT, b"HTTP/1.1 200 OK"), (LIMIT + 1, TOO_LARGE)):
                protocol, wire = connect()
                second = head(size)
                protocol.data_received(first + second[:cut])
                await settle()
                protocol.data_received(second[cut:])
                await settle()
                answers = [a[:3] for a in wire.sent.split(b"HTTP/1.1 ")[1:]]
                assert answers == [b"200", last[9:12]], (len(body), size, wire.sent[:300])
                assert wire.closed is (last == TOO_LARGE)
                protocol.connection_lost(None)

    run(echo_length, HttpSettings(), test)


def test_past_max_connections_the_longest_waiting_idle_one_is_closed() -> None:
    """max_connections 2: A waits with half a head, B is busy (its app holds the request);
    C arrives: A is closed, not B. D arrives: C (now the longest waiting) is closed. When
    only busy connections are left, a newcomer gets 503 and B is untouched."""
    gate = asyncio.Event()

    async def held(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await gate.wait()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def test(connect: Callable[[], tuple[GuardedProtocol, Wire]]) -> None:
        a_protocol, a = connect()
        a_protocol.data_received(b"GET / HTTP/1.1\r\nHo")
        b_protocol, b = connect()
        b_protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
        c_protocol, c = connect()
        assert (a.closed, b.closed, c.closed) == (True, False, False)
        a_protocol.connection_lost(None)
        d_protocol, d = connect()
        assert (b.closed, c.closed, d.closed) == (False, True, False)
        c_protocol.connection_lost(None)
        d_protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
        _, e = connect()
        assert e.closed and e.sent.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"retry-after: 5\r\n" in e.sent
        assert not b.closed and not d.closed
        gate.set()
        await settle()
        assert b.sent.startswith(b"HTTP/1.1 204 ") and d.sent.startswith(b"HTTP/1.1 204 ")

    run(held, HttpSettings(max_connections=2), test)


def test_http_settings_refuse_what_cannot_work(tmp_path: Path) -> None:
    config = tmp_path / "remediator.toml"
    for text, ours, mentions in (
        ("max_header_bytes = 100", "max_header_bytes must be >= 1024", ("$.http",)),
        ("header_timeout_s = 0",
         "header_timeout_s, body_timeout_s and idle_timeout_s must be > 0", ("$.http",)),
        ("max_connections = 0", "max_connections must be >= 1", ("$.http",)),
        ("max_conections = 10", "", ("max_conections", "$.http")),
    ):
        config.write_text(f"[http]\n{text}\n")
        with pytest.raises(ConfigError) as caught:
            load_settings(config, env={})
        assert_wrapped(str(caught.value), f"{config}: {ours}", *mentions)
    config.write_text("[http]\nmax_connections = 50\nheader_timeout_s = 2.5\n")
    assert load_settings(config, env={}).http == HttpSettings(max_connections=50,
                                                              header_timeout_s=2.5)


PROBE = """
import resource
from engine.config import HttpSettings
from receivers.server import build_server
server = build_server(lambda *a: None, HttpSettings(), host="127.0.0.1", port=0)
print("max_connections", server.config.guard.max_connections,
      "soft", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def test_the_soft_file_limit_is_raised_and_max_connections_kept_under_it() -> None:
    """Soft 1,024 under a hard 4,096: raised to 4,096, max_connections 1,000 stays. Hard
    1,024: max_connections is lowered to leave RESERVED_FILES, and that is logged."""
    for hard, expected in ((4096, "max_connections 1000 soft 4096"),
                           (1024, f"max_connections {1024 - RESERVED_FILES} soft 1024")):
        def limit(hard: int = hard) -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

        done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                              cwd=ROOT, preexec_fn=limit, timeout=120, check=True)
        assert done.stdout.splitlines()[-1] == expected, done.stdout + done.stderr
        assert ("max_connections_lowered" in done.stdout) is (hard == 1024), done.stdout
