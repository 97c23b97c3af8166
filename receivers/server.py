"""The HTTP server of ``remediator serve`` and the demo: uvicorn (uvloop, httptools) with
bounds on what one client connection may hold.

uvicorn's httptools protocol bounds neither the size nor the time of a request head: a header
that never ends grows one bytes object (httptools appends with ``+=``: quadratic time, the
event loop held) and a head that never completes keeps its socket for good, so a few
thousand idle sockets exhaust the process's open files. :class:`GuardedProtocol` adds the
bounds of ``[http]`` (:class:`engine.config.HttpSettings`):

- head size: the bytes of an incomplete head are counted after each read; past
  ``max_header_bytes`` (checked exactly once the head is parsed) the answer is 431 and the
  connection is closed. What httptools buffers is bounded by the limit plus one read.
- head and body time: one timer per connection, armed while a head or a body is incomplete
  (``header_timeout_s`` from the connection's start, or from the first byte of a head on a
  reused connection; ``body_timeout_s`` from the end of the head). A late head gets 408, a late
  body is cut. A request that arrives in one read arms no timer on a reused connection.
- idle keep-alive: uvicorn's own ``timeout_keep_alive`` (``idle_timeout_s``).
- connection count: at most ``max_connections`` (and never more than the open-file limit
  minus :data:`RESERVED_FILES`). A newcomer past it closes the connection that has waited
  longest with no request in progress (an idle keep-alive, a head still arriving), so a flood
  of idle sockets cannot lock a sender out; only if every connection is busy with a request
  does the newcomer get 503.

Refusals are counted in ``remediator_rejections_total`` (``header_too_large``, ``timeout``,
``too_many_connections``) and logged at most once a minute per kind, with the count since.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from typing import Any

import httptools
import structlog
import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from engine.config import HttpSettings

__all__ = ["RESERVED_FILES", "ConnectionGuard", "GuardedProtocol", "build_server",
           "raise_open_file_limit"]

log = structlog.get_logger("remediator.http")

RESERVED_FILES = 256
"""Open files kept for everything but client connections: the database (a file and a WAL
handle for each thread's reader: anyio's 40 threads, the 16 workers, the scheduler's), the
cloud clients' sockets, the log, the event loop's own."""

NOTICE_EVERY_S = 60.0
"""A kind of refusal is logged at most this often (an attack must not flood the log)."""

RETRY_AFTER_SECONDS = 5


def _answer(status: str, error: str, detail: str, extra: str = "") -> bytes:
    """A complete HTTP/1.1 answer that closes the connection; the JSON body has the shape of
    the app's own errors."""
    body = f'{{"error":"{error}","detail":"{detail}"}}'.encode()
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop httptools; answered 431."""


class ConnectionGuard:
    """What the connections of one server share: the limits, the connections with no request
    in progress (oldest first: a dict keeps insertion order), and the refusal counts."""

    def __init__(self, limits: HttpSettings, max_connections: int,
                 on_refusal: Callable[[str], None]) -> None:
        self.limits = limits
        self.max_connections = max_connections
        self.waiting: dict[GuardedProtocol, None] = {}
        self.too_large = _answer(
            "431 Request Header Fields Too Large", "header_too_large",
            f"the request head is larger than the limit of {limits.max_header_bytes} bytes")
        self.too_slow = _answer(
            "408 Request Timeout", "timeout",
            f"the request head did not arrive within {limits.header_timeout_s:g} s")
        self.busy = _answer(
            "503 Service Unavailable", "too_many_connections",
            f"{max_connections} connections are busy; retry later",
            f"retry-after: {RETRY_AFTER_SECONDS}\r\n")
        self._on_refusal = on_refusal
        self._logged_at: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def evict(self) -> bool:
        """Close the connection that has waited longest with no request in progress; False
        if every connection is busy."""
        for oldest in self.waiting:
            oldest.close_now()
            self.notice("evicted")
            return True
        return False

    def refused(self, reason: str) -> None:
        """Count a refusal (``header_too_large``, ``timeout``, ``too_many_connections``)."""
        self._on_refusal(reason)
        self.notice(reason)

    def notice(self, kind: str) -> None:
        """Log ``kind`` unless it was logged less than :data:`NOTICE_EVERY_S` ago; the line
        carries how many happened since the last one."""
        self._since[kind] = self._since.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._logged_at.get(kind, -NOTICE_EVERY_S) >= NOTICE_EVERY_S:
            log.warning("connection_evicted" if kind == "evicted" else "connection_refused",
                        reason=kind, count=self._since.pop(kind),
                        max_connections=self.max_connections)
            self._logged_at[kind] = now


class GuardedConfig(uvicorn.Config):
    """uvicorn's settings plus the guard its connections share; no WebSocket upgrade (the app
    has no WebSocket route)."""

    def __init__(self, app: Any, *, guard: ConnectionGuard, **options: Any) -> None:
        super().__init__(app, http=GuardedProtocol, ws="none",
                         timeout_keep_alive=guard.limits.idle_timeout_s,  # type: ignore[arg-type]
                         **options)
        self.guard = guard


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring. The fast path
    (a whole request in one read) adds a few attribute checks and, on a new connection, one
    timer."""

    def __init__(self, config: uvicorn.Config, server_state: ServerState,
                 app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None,
                 ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, GuardedConfig)
        self.guard = config.guard
        self._timer: asyncio.TimerHandle | None = None
        self._head_open = False  # a request head has begun and is not complete
        self._body_open = False  # a head is complete and its body is not
        self._head_bytes = 0  # bytes of the open head in the reads before the current one
        self._head_exact = True  # False: the head began after another message in one read
        self._read = 0  # length of the read being parsed
        self._read_clean = True  # no message ended earlier in the read being parsed

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        if len(self.connections) > guard.max_connections and not guard.evict():
            self.connections.discard(self)
            guard.refused("too_many_connections")
            transport.write(guard.busy)
            transport.close()
            return
        guard.waiting[self] = None
        self._timer = self.loop.call_later(guard.limits.header_timeout_s, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.waiting.pop(self, None)
        self._cancel_timer()
        super().connection_lost(exc)

    def close_now(self) -> None:
        """Close at once (evicted or late): no longer counted, no longer waiting."""
        self.guard.waiting.pop(self, None)
        self._cancel_timer()
        self.connections.discard(self)
        if self.cycle is not None and not self.cycle.response_complete:
            # As connection_lost does: the app, if it is reading a body, sees a disconnect.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, plus the head's byte count and the timers.
        self._read = len(data)
        self._read_clean = True
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(self.guard.too_large, "header_too_large")
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._head_open:
            if self._read_clean:
                self._head_bytes += len(data)
            if self._head_bytes > self.guard.limits.max_header_bytes:
                self._refuse(self.guard.too_large, "header_too_large")
            elif self._timer is None:
                self._timer = self.loop.call_later(self.guard.limits.header_timeout_s,
                                                   self._head_late)
        elif self._body_open and self._timer is None:
            self._timer = self.loop.call_later(self.guard.limits.body_timeout_s,
                                               self._body_late)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = 0
        self._head_exact = self._read_clean

    def on_headers_complete(self) -> None:
        self._head_open = False
        limit = self.guard.limits.max_header_bytes
        if ((not self._head_exact or self._head_bytes + self._read > limit)
                and self._head_size() > limit):
            raise _HeadTooLarge
        if self._timer is not None:
            self._cancel_timer()
        self.guard.waiting.pop(self, None)
        self._body_open = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._read_clean = False
        self._body_open = False
        if self._timer is not None:
            self._cancel_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # kept alive, waiting for a request
            self.guard.waiting[self] = None

    # Helpers

    def _head_size(self) -> int:
        """The parsed head's size in bytes: request line, headers, blank line."""
        method = self.parser.get_method()
        return (len(method) + len(self.url) + 12 + 2
                + sum(len(name) + len(value) + 4 for name, value in self.headers))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, answer: bytes, reason: str) -> None:
        self.guard.refused(reason)
        self.transport.write(answer)
        self.close_now()

    def _head_late(self) -> None:
        self._timer = None
        if self._head_open:
            self._refuse(self.guard.too_slow, "timeout")
        else:  # not one byte of a request since the connection opened
            self.guard.refused("timeout")
            self.close_now()

    def _body_late(self) -> None:
        self._timer = None
        self.guard.refused("timeout")
        self.close_now()


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard one (Linux defaults the soft one to
    1,024); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("open_file_limit", soft=soft, hard=hard, problem=str(exc))
    return soft


def _rejections(app: Any) -> Callable[[str], None]:
    """Count refusals in the app's metrics (set up by its lifespan), if it has them."""
    if not isinstance(app, Litestar):
        return lambda reason: None
    state = app.state

    def count(reason: str) -> None:
        metrics = state.get("metrics")
        if metrics is not None:
            metrics.reject(reason)

    return count


def build_server(app: Any, limits: HttpSettings, *, host: str, port: int,
                 lifespan: str = "auto", loop: str = "auto") -> uvicorn.Server:
    """A uvicorn server for ``app`` (an ASGI app; a Litestar app's metrics count the
    refusals) on ``host``:``port`` with the guarded protocol; raises the open-file limit and
    holds ``max_connections`` under it (logged when lowered).

    Our own logging stays in place (``log_config=None``); uvicorn's access log is off (it
    would print query strings, where API keys may ride: the intake logs one line per request).
    """
    soft = raise_open_file_limit()
    room = soft - RESERVED_FILES if soft != resource.RLIM_INFINITY else limits.max_connections
    max_connections = max(1, min(limits.max_connections, room))
    if max_connections < limits.max_connections:
        log.warning("max_connections_lowered", configured=limits.max_connections,
                    used=max_connections, open_file_limit=soft, reserved=RESERVED_FILES)
    guard = ConnectionGuard(limits, max_connections, _rejections(app))
    config = GuardedConfig(app, guard=guard, host=host, port=port, log_config=None,
                           access_log=False, server_header=False, lifespan=lifespan, loop=loop)
    return uvicorn.Server(config)
