"""Parked events, the inbox's dead letter: an event whose stages never finish is set aside,
shown, and replayed by an admin, instead of being claimed forever.

The worker claims an event with a lease and each claim counts (engine/store/inbox.py). A
process that is killed, crashes or freezes on an event leaves it claimed; when the lease runs
out it is claimed again, and a webhook that kills its worker would do so after every restart
(a poison pill). So :func:`claim` parks, in the claim's own transaction, every event whose
lease ran out after ``[engine] max_claims`` claims, and hands the worker only the others. An
error that a retry would repeat (an engine error such as a template that fails for this
event) parks the event at once (:func:`park`); the worker leaves it claimed instead after an
error worth retrying (storage, a retryable cloud error, a bug), so that it comes back when its
lease runs out, at most ``max_claims`` times in all.

Each park is audited (``parked``, by the engine) and each replay (``replayed``, naming who).
:func:`replay` puts a parked event back to ``pending`` with its claim count reset; the API,
the dashboard and ``remediator events replay`` all call it.
"""

from __future__ import annotations

from datetime import datetime

from engine.clock import to_ms
from engine.deps import Deps
from engine.events import utcnow
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store.db import Database
from engine.text.redact import redact_text

__all__ = ["MAX_ERROR", "ReplayError", "claim", "describe", "exhausted_reason", "park",
           "replay"]

MAX_ERROR = 1000
"""How much of an error's text an event keeps (the audit record and the logs have it too)."""


class ReplayError(Exception):
    """The event cannot be replayed: it is unknown (``missing``) or not parked."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def describe(exc: BaseException, *, with_type: bool = False) -> str:
    """An error as an event keeps it: bounded, redacted, its type first for a bug."""
    text = f"{type(exc).__name__}: {exc}" if with_type else str(exc)
    return redact_text(text[:MAX_ERROR])


def exhausted_reason(stored: inbox.StoredEvent) -> str:
    """Why an event whose every claim ran out of lease is parked."""
    reason = (f"claimed {stored.attempts} times without finishing: its stages crashed or "
              "stalled each time")
    return reason + (f"; last error: {stored.error}" if stored.error else "")


def _audit_park(deps: Deps, stored: inbox.StoredEvent, reason: str, error: str) -> None:
    deps.audit("parked", {"reason": reason, "claims": stored.attempts, "error": error},
               event_id=stored.event.id, resource=stored.event.resource)


def claim(deps: Deps, limit: int) -> list[inbox.StoredEvent]:
    """Park the events that ran out of claims, then claim up to ``limit`` others, in one
    transaction (a crash between the two loses neither the park nor its record)."""
    now_ms = to_ms(deps.now())
    max_claims = deps.options.max_claims
    with deps.db.batch():
        for stored in inbox.exhausted(deps.db, max_claims=max_claims, now_ms=now_ms,
                                      owner=deps.owner):
            reason = exhausted_reason(stored)
            if inbox.park(deps.db, stored.event.id, reason):
                _audit_park(deps, stored, reason, stored.error)
        return inbox.claim(deps.db, limit=limit, lease_ms=deps.options.event_lease_s * 1000,
                           now_ms=now_ms, max_claims=max_claims, owner=deps.owner)


def park(deps: Deps, stored: inbox.StoredEvent, error: str) -> None:
    """Park a claimed event at once: its stages raised an error that a retry would repeat."""
    reason = f"its stages failed with an error that a retry would repeat: {error}"
    with deps.db.batch():
        if inbox.park(deps.db, stored.event.id, reason, error=error):
            _audit_park(deps, stored, reason, error)


def replay(db: Database, event_id: str, who: str, *, reason: str = "",
           now: datetime | None = None) -> inbox.StoredEvent:
    """Put a parked event back to ``pending``, its claim count reset, and audit who did it.

    Raises :class:`ReplayError` for an unknown event or one that is not parked.
    """
    note = f"replayed by {who}" + (f": {reason}" if reason else "")
    with db.batch():
        replayed = inbox.replay(db, event_id, note)
        if replayed is None:
            found = inbox.get(db, event_id)
            if found is None:
                raise ReplayError(f"unknown event {event_id}", missing=True)
            raise ReplayError(f"event {event_id} is {found.state}, not parked: only a parked "
                              "event can be replayed")
        audit_store.append(db, "replayed", ts=now or utcnow(), actor=who,
                           event_id=event_id, resource=replayed.event.resource,
                           data={"who": who, "reason": reason})
    return replayed
