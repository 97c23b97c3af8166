"""Remediator driven by hand: webhooks delivered over HTTP to the running app, the engine run
and its clock moved step by step, and what really happened read back from the database; a
loopback webhook sink stands in for the chat channels and the ticket system.

``remediator demo`` drives the real service with it (the steps are in ``cli/_scenario.py``),
and so do the tests (tests/fixtures/service.py), each over its own HTTP client: the demo's
talks to uvicorn, the tests' is Litestar's ``TestClient`` (an httpx client too).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store.db import Database

if TYPE_CHECKING:
    from engine.runtime.service import Service

__all__ = ["Drive", "MovableClock", "Sink"]


class Sink:
    """A loopback HTTP endpoint that records every POST (path, headers, and the body as JSON,
    or as text when it is not; ``on_post(path, body)`` is told of each) and answers ``status``
    with ``answer`` as JSON (by default a ticket id: ``INC-1001``, ``INC-1002``, ...), with
    ``Retry-After: retry_after`` if set.
    Tests change ``status``, ``answer`` and ``retry_after`` to script a failing endpoint."""

    def __init__(self, *, answer: dict[str, Any] | None = None,
                 on_post: Callable[[str, Any], None] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.answer = answer
        self.retry_after: str | None = None
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with sink._lock:
                    sink.received.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body})
                    number = len(sink.received)
                    status, retry_after = sink.status, sink.retry_after
                    answer = sink.answer if sink.answer is not None else {
                        "id": f"INC-{1000 + number}"}
                if on_post is not None:
                    on_post(self.path, body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                """Quiet: the callers report what they need."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-sink",
                                       daemon=True)
        self.thread.start()

    def posts(self, path: str) -> list[Any]:
        """The bodies posted to ``path`` so far."""
        with self._lock:
            return [r["body"] for r in self.received if r["path"] == path]

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


class MovableClock(Protocol):
    """A clock the driver moves (engine.clock's FakeClock and WarpClock)."""

    def now(self) -> datetime:
        """The engine's time."""
        ...

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move forward; returns the new time."""
        ...


@dataclass(kw_only=True)
class Drive:
    """One service over one database, driven by hand: ``http`` reaches its app (relative
    paths: give the client its base URL), ``receiver_key`` is what the senders present."""

    http: httpx.Client
    receiver_key: str
    service: Service
    clock: MovableClock
    db: Database
    sink: Sink

    # -- delivering and driving ------------------------------------------------------------
    def post(self, endpoint: str, payload: Any) -> dict[str, Any]:
        """Deliver one webhook as its sender would (JSON, the receiver key); its receipt.
        Raises RuntimeError, with the answer, if it is not accepted (202)."""
        response = self.http.post(f"/{endpoint}", json=payload,
                                  headers={"x-api-key": self.receiver_key})
        if response.status_code != 202:
            raise RuntimeError(f"POST /{endpoint} answered {response.status_code}: "
                               f"{response.text[:300]}")
        return dict(response.json())

    def run(self) -> int:
        """Process what the inbox holds now (the worker's own claims); how many events."""
        return self.service.worker.drain()

    def tick(self, seconds: float = 0) -> None:
        """Move the clock, then run every periodic job of the engine once."""
        self.clock.advance(seconds)
        self.service.scheduler.tick()

    def settle(self, done: Callable[[], bool], *, step_s: float = 60.0,
               rounds: int = 240) -> bool:
        """Process, then move ``step_s`` and tick, until ``done()`` (at most ``rounds``)."""
        for _ in range(rounds):
            self.run()
            if done():
                return True
            self.tick(step_s)
        return done()

    # -- reading back what happened ----------------------------------------------------------
    def now_ms(self) -> int:
        """The engine's time, in the store's unit."""
        return int(self.clock.now().timestamp() * 1000)

    def incidents(self) -> list[incidents_store.Incident]:
        """The incidents, newest first."""
        return incidents_store.list_incidents(self.db, limit=100)

    def incidents_of(self, event_id: str) -> list[incidents_store.Incident]:
        """The incidents the audit log ties to ``event_id``."""
        ids = dict.fromkeys(r.incident_id for r in
                            audit_store.list_records(self.db, event_id=event_id, limit=1000)
                            if r.incident_id)
        found = [incidents_store.get(self.db, i) for i in ids]
        return [i for i in found if i is not None]

    def incident(self, event_id: str) -> incidents_store.Incident | None:
        """The first incident of ``event_id``, if any."""
        found = self.incidents_of(event_id)
        return found[0] if found else None

    def audit_kinds(self, incident_id: str) -> list[str]:
        """The kinds of the incident's audit records, in order."""
        return [r.kind for r in audit_store.list_records(self.db, incident_id=incident_id,
                                                         limit=10_000)]

    def records(self, incident_id: str, kind: str) -> list[dict[str, Any]]:
        """The data of the incident's audit records of one kind, in order."""
        return [r.data for r in audit_store.list_records(self.db, incident_id=incident_id,
                                                         kind=kind, limit=1000)]

    def actions(self, incident_id: str) -> list[actions_store.ActionRow]:
        """The incident's action rows, in the order they were planned."""
        return actions_store.for_incident(self.db, incident_id)
