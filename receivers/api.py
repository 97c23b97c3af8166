"""Management endpoints under ``/api`` (admin keys only): the stored events.

``GET /api/events/{id}`` shows one event: the normalized fields at the top level (the enriched
form if enrichment ran), the form it was received in, the redacted payload and its processing
state. ``GET /api/events`` lists them newest first, filtered, paged with a ``before`` cursor.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from engine.events import SOURCES, STATUSES, utcnow
from engine.store import Database, inbox
from receivers.auth import admin_guard

__all__ = ["MAX_LIMIT", "BadRequest", "api_router", "event_view", "parse_since"]

MAX_LIMIT = 500
_FILTERS = ("source", "status", "resource", "since", "limit", "before")
_DURATION = re.compile(r"^(\d{1,9})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadRequest(ValueError):
    """A query parameter has a value we cannot use (answered 400 with the message)."""


def parse_since(value: str, now: datetime) -> datetime:
    """``since``: an ISO time (UTC if it names no zone) or a duration back from ``now``
    (``90s``, ``15m``, ``2h``, ``1d``, ``2w``). Raises BadRequest otherwise."""
    m = _DURATION.match(value.strip())
    if m:
        try:
            return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        except OverflowError as exc:
            raise BadRequest(f"since: duration {value!r} is too long") from exc
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadRequest(
            f"since: expected an ISO time or a duration such as 15m, 2h, 1d; got {value[:50]!r}"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _limit(value: str | None) -> int:
    if value is None:
        return 50
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(
            f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {value[:50]!r}"
        )
    return limit


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise BadRequest(f"{name}: expected one of {', '.join(allowed)}; got {value[:50]!r}")
    return value


def event_view(stored: inbox.StoredEvent, *, with_raw: bool = True) -> dict[str, Any]:
    """The JSON form of a stored event, as ``GET /api/events/{id}`` answers it."""
    view: dict[str, Any] = msgspec.to_builtins(stored.current)
    if stored.enriched is not None and stored.enriched != stored.event:
        view["received"] = msgspec.to_builtins(stored.event)
    if with_raw:
        view["raw"] = stored.raw
    view.update(
        state=stored.state,
        attempts=stored.attempts,
        duplicates=stored.duplicates,
        received_at=stored.received_at.isoformat().replace("+00:00", "Z"),
        endpoint=stored.endpoint,
        processing_error=stored.error,
    )
    return view


@get("/events/{event_id:str}", sync_to_thread=True, tags=["events"])
def get_event(event_id: FromPath[str], db: NamedDependency[Database]) -> Response[dict[str, Any]]:
    """One stored event, or 404 ``{"error": "not_found"}``."""
    stored = inbox.get(db, event_id)
    if stored is None:
        return Response({"error": "not_found"}, status_code=404)
    return Response(event_view(stored))


@get("/events", sync_to_thread=True, tags=["events"])
def list_events(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    source: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    resource: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    limit: FromQuery[str | None] = None,
    before: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Stored events, newest first: ``{"items": [...], "next": cursor or null}``.

    Pass ``next`` as ``before`` for the following page. Unknown parameters and bad values
    answer 400 with what was expected.
    """
    unknown = sorted(set(request.query_params) - set(_FILTERS))
    if unknown:
        raise BadRequest(f"unknown filter {unknown[0][:50]!r}; expected {', '.join(_FILTERS)}")
    size = _limit(limit)
    rows = inbox.list_events(
        db,
        source=_one_of("source", source, SOURCES),
        status=_one_of("status", status, STATUSES),
        resource=resource,
        since=parse_since(since, utcnow()) if since is not None else None,
        limit=size + 1,
        before=before,
    )
    page = rows[:size]
    return {
        "items": [event_view(row, with_raw=False) for row in page],
        "next": page[-1].event.id if len(rows) > size else None,
    }


def api_router() -> Router:
    """The ``/api`` router, behind the admin keys."""
    return Router(path="/api", guards=[admin_guard], route_handlers=[get_event, list_events])
