"""The plumbing every emulator shares: a threaded HTTP(S) server, the call log and the scripts.

Each emulator is a plain object with a table of routes; this module turns it into a server on
a free loopback port. One thread per connection, so a scripted hang never blocks the other
emulators or later requests. State changes run under the emulator's lock; hangs do not.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "Emulator",
    "Fault",
    "Request",
    "Response",
    "Route",
    "Served",
    "serve",
]

#: Header and form fields whose values never reach the call log.
_SECRET_HEADERS = frozenset({"authorization", "api-key", "cookie", "x-api-key"})
_SECRET_FORM_FIELDS = frozenset(
    {"client_secret", "client_assertion", "password", "refresh_token", "assertion"}
)


def mask_header(name: str, value: str) -> str:
    """Keep the scheme of a credential header (``Bearer``), never its value."""
    if name not in _SECRET_HEADERS:
        return value
    scheme, _, rest = value.partition(" ")
    return f"{scheme} ***" if rest else "***"


@dataclass
class Fault:
    """One scripted misbehaviour, consumed by the next ``times`` calls of an operation."""

    operation: str
    status: int | None = None
    times: int = 1
    hang: float | None = None
    retry_after: int | None = None
    fail_rerun: bool = False
    body: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build from the JSON body of ``POST /_sandbox/script``; unknown keys are refused."""
        allowed = {"operation", "status", "times", "hang", "retry_after", "fail_rerun", "body"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown script fields: {', '.join(unknown)}")
        if not isinstance(data.get("operation"), str):
            raise ValueError("script needs an 'operation' string")
        return cls(**data)


@dataclass
class Request:
    """What a route handler sees: the decoded request and the fault scripted for it, if any."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    raw_body: bytes = b""
    fault: Fault | None = None

    @property
    def fail_rerun(self) -> bool:
        """True when the rerun this call starts must end failed again."""
        return self.fault is not None and self.fault.fail_rerun

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object ({} when absent)."""
        return self.body if isinstance(self.body, dict) else {}


@dataclass
class Response:
    """A JSON (or raw bytes) answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request, "re.Match[str]"], Response]


@dataclass(frozen=True)
class Route:
    """A method, a path regex (full match; case-insensitive if ``ignore_case``), its handler."""

    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler


class Emulator:
    """Base of the four emulators: routes, state under a lock, call log and scripts.

    Subclasses set ``service``, implement ``routes()``, ``new_state()`` and ``error(status,
    code, message)`` (the service's own error shape).
    """

    service: str = ""
    ignore_case: bool = False

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._calls: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._wake = threading.Event()
        self.base_url = ""
        self.state: Any = self.new_state()
        flags = re.IGNORECASE if self.ignore_case else 0
        self._routes = [
            Route(m, re.compile(p, flags), op, h) for m, p, op, h in self.routes()
        ]

    # -- to implement -------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, str, Handler]]:
        """(method, path regex, operation name, handler) for every endpoint."""
        raise NotImplementedError

    def new_state(self) -> Any:
        """A fresh, empty in-memory state."""
        raise NotImplementedError

    def error(self, status: int, code: str, message: str) -> Response:
        """An error in the service's real JSON shape."""
        raise NotImplementedError

    def scripted_error(self, fault: Fault) -> Response:
        """The answer of a call that a script makes fail with ``fault.status``."""
        if fault.body is not None:
            return Response(fault.status or 500, fault.body)
        status = fault.status or 500
        codes = {
            400: "INVALID_PARAMETER_VALUE",
            404: "RESOURCE_DOES_NOT_EXIST",
            429: "REQUEST_LIMIT_EXCEEDED",
            500: "INTERNAL_ERROR",
            503: "TEMPORARILY_UNAVAILABLE",
        }
        return self.error(status, codes.get(status, "INTERNAL_ERROR"), f"Scripted failure {status}")

    def scripted_body(self, fault: Fault, request: Request, route: Route) -> Response:
        """The answer of a call whose script gives a body but no status."""
        return Response(200, fault.body)

    def failures(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """``POST /_sandbox/failures/<kind>``: what failed thing each kind makes from its JSON
        body (a run that failed with a given error, a terminated cluster); none by default.
        A handler raises ValueError for a body it refuses (answered 400)."""
        return {}

    # -- control ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Fresh state, empty call log, no scripts; pending hangs end without an answer."""
        with self.lock:
            self.state = self.new_state()
            self._calls.clear()
            self._faults.clear()
            self._wake.set()
            self._wake = threading.Event()

    def wake_all(self) -> None:
        """End every pending hang (used when stopping)."""
        self._wake.set()

    def script(self, fault: Fault) -> None:
        """Queue a fault; faults for one operation apply in the order they were scripted."""
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self._faults.append(fault)

    def calls(self) -> list[dict[str, Any]]:
        """A copy of the call log, oldest first."""
        with self.lock:
            return copy.deepcopy(self._calls)

    def take_fault(self, operation: str) -> Fault | None:
        """The fault that applies to this call of ``operation``, consuming one of its times."""
        with self.lock:
            for fault in self._faults:
                if fault.operation == operation:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append to the call log; the entry's status is filled in when the answer leaves."""
        with self.lock:
            self._calls.append(entry)
        return entry

    def match(self, method: str, path: str) -> tuple[Route, re.Match[str]] | None:
        """The route for a request, if any."""
        for route in self._routes:
            if route.method == method:
                found = route.pattern.fullmatch(path)
                if found:
                    return route, found
        return None

    # -- request flow -------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response | None:
        """Answer one request; None means: drop the connection without answering (hang ended)."""
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        entry = self.record(
            {
                "service": self.service,
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                # A copy: handlers keep parts of bodies in their state and mutate them later.
                "body": copy.deepcopy(request.body),
                "headers": {k: mask_header(k, v) for k, v in request.headers.items()},
                "status": None,
                "ts": time.time(),
            }
        )
        found = self.match(request.method, request.path)
        if found is None:
            response = self.error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} "
                                  f"{request.path}'")
            entry["status"] = response.status
            return response
        route, match = found
        fault = self.take_fault(route.operation)
        request.fault = fault
        if fault is not None and fault.hang:
            wake = self._wake
            wake.wait(fault.hang)
            if wake.is_set():
                return None
        if fault is not None and fault.status is not None:
            response = self.scripted_error(fault)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(fault.retry_after)
        elif fault is not None and fault.body is not None:
            response = self.scripted_body(fault, request, route)
        else:
            with self.lock:
                response = route.handler(request, match)
        entry["status"] = response.status
        return response

    def _control(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/_sandbox/calls":
            wanted = request.query.get("service")
            calls = [c for c in self.calls() if wanted in (None, c["service"])]
            return Response(200, {"calls": calls})
        if request.method == "POST" and request.path == "/_sandbox/reset":
            self.reset()
            return Response(200, {"reset": True})
        kind = request.path.removeprefix("/_sandbox/failures/")
        if request.method == "POST" and kind != request.path:
            make = self.failures().get(kind)
            if make is None:
                known = ", ".join(sorted(self.failures())) or "none"
                return Response(404, {"error": f"{self.service} makes no failure {kind!r}; "
                                               f"it makes: {known}"})
            if not isinstance(request.body, dict):
                return Response(400, {"error": "expected a JSON object"})
            try:
                with self.lock:
                    return Response(200, make(request.body))
            except (TypeError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
        if request.method == "POST" and request.path == "/_sandbox/script":
            try:
                self.script(Fault.from_json(request.json_body()))
            except (TypeError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(200, {"scripted": True})
        return Response(404, {"error": f"unknown sandbox control {request.method} {request.path}"})


def _decode_body(raw: bytes, content_type: str) -> Any:
    """JSON when it parses, a masked form dict for form posts, else None."""
    if not raw:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        return {k: ("***" if k in _SECRET_FORM_FIELDS else v) for k, v in form.items()}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The handler writes the head and the body in two sends: with Nagle on, the body
        # waited for the client's delayed ACK, ~40 ms per answer that no Azure endpoint adds.
        disable_nagle_algorithm = True
        server_version = "remediator-sandbox"
        timeout = 60

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the call log is the record."""

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            request = Request(
                method=self.command,
                path=parts.path,
                query=query,
                body=_decode_body(raw, headers.get("content-type", "")),
                headers=headers,
                raw_body=raw,
            )
            response = emulator.dispatch(request)
            if response is None:
                self.close_connection = True
                return
            payload = (
                response.body
                if isinstance(response.body, bytes)
                else json.dumps(response.body).encode()
            )
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
                # The client gave up (timeout after a scripted hang) or spoke no TLS.
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return _Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class Served:
    """A running emulator: its server, its thread and its base URL."""

    emulator: Emulator
    server: ThreadingHTTPServer
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        """Stop accepting, end pending hangs and close the listening socket."""
        self.emulator.wake_all()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(emulator: Emulator, host: str, tls: ssl.SSLContext | None = None) -> Served:
    """Serve ``emulator`` on a free port of ``host`` in a daemon thread (https when ``tls``)."""
    server = _Server((host, 0), _make_handler(emulator))
    if tls is not None:
        # The handshake runs in the connection's own thread, on its first read.
        server.socket = tls.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    port = server.server_address[1]
    url_host = f"[{host}]" if ":" in host else host
    emulator.base_url = f"{'https' if tls else 'http'}://{url_host}:{port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05},
        name=f"sandbox-{emulator.service}", daemon=True,
    )
    thread.start()
    return Served(emulator, server, thread, emulator.base_url)
