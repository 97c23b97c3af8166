"""Management endpoints under ``/api`` (admin keys only): events and the replay of parked
ones, incidents with their timeline, approve/reject, pause/resume, circuit breakers and their
reset, status, playbooks and reload, simulate, the audit log and its verification.

``GET /api/events/{id}`` shows one event: the normalized fields at the top level (the enriched
form if enrichment ran), the form it was received in, the redacted payload and its processing
state (``state``, ``claims``, ``reason``). ``GET /api/events`` lists them newest first,
filtered (``state=parked``: the parked ones), paged with a ``before`` cursor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import SerializationException
from litestar.params import FromPath, FromQuery, JSONBody

from engine import guards, lifecycle, silences
from engine.clock import to_ms
from engine.events import SOURCES, STATUSES, utcnow
from engine.rules.load import PAYLOAD_SOURCES
from engine.runtime import deadletter
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import handling as handling_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from engine.store.db import Database
from engine.text.patterns import compile as compile_pattern
from receivers import verify as chain
from receivers._json import decode_problem
from receivers.auth import ADMIN, admin_guard
from receivers.simulate import simulate_payload

__all__ = ["MAX_LIMIT", "BadRequest", "JsonRequest", "api_router", "event_view", "incident_view",
           "parse_since"]

MAX_LIMIT = 500
_FILTERS = ("source", "status", "resource", "state", "since", "limit", "before")
_DURATION = compile_pattern(r"^(\d{1,9})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadRequest(ValueError):
    """A query parameter or body has a value we cannot use (answered 400 with the message)."""


class JsonRequest(Request[Any, Any, Any]):
    """The app's requests (``Litestar(request_class=...)``): every route that decodes a JSON
    body (``JSONBody`` parameters, ``/api/simulate``) goes through :meth:`json`, so a body
    that does not decode is a 400 saying why, in one place: msgspec's ``RecursionError`` for
    nesting past its limit was a 500, and its "Input data was truncated" for a lone surrogate
    named the wrong cause."""

    async def json(self) -> Any:
        """The decoded body; :class:`BadRequest` if it is not JSON."""
        try:
            return await super().json()
        except RecursionError as exc:
            raise BadRequest("body: invalid JSON: nested too deeply") from exc
        except SerializationException as exc:
            cause = exc.__cause__
            detail = (decode_problem(await self.body(), cause)
                      if isinstance(cause, msgspec.DecodeError) else str(exc))
            raise BadRequest(f"body: invalid JSON: {detail}") from exc


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


def _limit(value: str | None, default: int = 50) -> int:
    if value is None:
        return default
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
        claims=stored.attempts,
        reason=stored.reason,
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
    answer 400 with what was expected. ``state`` (``pending``, ``processing``, ``done``,
    ``parked``) is read from the query itself: Litestar reserves the parameter name.
    """
    unknown = sorted(set(request.query_params) - set(_FILTERS))
    if unknown:
        raise BadRequest(f"unknown filter {unknown[0][:50]!r}; expected {', '.join(_FILTERS)}")
    size = _limit(limit)
    rows = inbox.list_events(
        db,
        source=_one_of("source", source, SOURCES),
        status=_one_of("status", status, STATUSES),
        state=_one_of("state", request.query_params.get("state"), inbox.STATES),
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


class Replay(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The optional body of a replay: why (kept in the event and the audit log)."""

    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


@post("/events/{event_id:str}/replay", sync_to_thread=True, tags=["events"], status_code=200)
def replay_event(request: Request[Any, Any, Any], event_id: FromPath[str],
                 db: NamedDependency[Database],
                 data: JSONBody[Replay | None] = None) -> Response[dict[str, Any]]:
    """Put a parked event back to pending, its claim count reset: the worker takes it again.
    404 for an unknown id, 409 (with the reason) when it is not parked. An optional JSON body
    ``{"reason": "..."}`` says why."""
    who = _who(request)
    try:
        replayed = deadletter.replay(db, event_id, who, now=_now(request),
                                     reason=data.reason if data is not None else "")
    except deadletter.ReplayError as exc:
        if exc.missing:
            return Response({"error": "not_found", "detail": str(exc)}, status_code=404)
        return Response({"error": "conflict", "detail": str(exc)}, status_code=409)
    service = _service(request)
    if service is not None:
        service.wake()
    return Response({"id": event_id, "state": replayed.state, "claims": replayed.attempts,
                     "who": who})


_INCIDENT_FILTERS = ("state", "source", "resource", "since", "limit", "before")


def _iso_ms(value: int) -> str | None:
    if not value:
        return None
    return datetime.fromtimestamp(value / 1000, UTC).isoformat().replace("+00:00", "Z")


def incident_view(incident: incidents_store.Incident) -> dict[str, Any]:
    """The JSON form of an incident (without its timeline), as the list answers it."""
    view: dict[str, Any] = msgspec.to_builtins(incident)
    view["event"] = msgspec.json.decode(incident.event) if incident.event else None
    for name in ("opened", "updated", "closed", "approval_due"):
        view[f"{name}_at"] = _iso_ms(view.pop(f"{name}_ms"))
    return view


def _action_view(row: actions_store.ActionRow) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(row)
    for name in ("due", "created", "started", "finished", "probe_due", "probe_deadline"):
        view[f"{name}_at"] = _iso_ms(view.pop(f"{name}_ms"))
    return view


TIMELINE_PAGE = 200
"""Timeline records in one answer about an incident, unless ``limit`` says otherwise: an
incident that 3,000 alerts joined has thousands of records and events (27 MB in one answer)."""


def incident_detail(db: Database, incident: incidents_store.Incident, *,
                    limit: int = TIMELINE_PAGE, before: int | None = None) -> dict[str, Any]:
    """An incident with a page of its timeline (its newest ``limit`` audit records older than
    seq ``before``, in order), the stored events those records name (and the incident's
    first), its actions with their states, and ``next``: the ``before`` of the page older
    than this one, or None."""
    records = audit_store.list_records(db, incident_id=incident.id, limit=limit + 1,
                                       before=before)
    older, records = records[:-limit], records[-limit:]
    event_ids = list(dict.fromkeys(
        [incident.event_id] + [r.event_id for r in records if r.event_id]))
    events = [inbox.get(db, event_id) for event_id in event_ids if event_id]
    view = incident_view(incident)
    view.update(
        timeline=[msgspec.to_builtins(r) for r in records],
        events=[event_view(e, with_raw=False) for e in events if e is not None],
        actions=[_action_view(row) for row in actions_store.for_incident(db, incident.id)],
        next=records[0].seq if older else None,
        handling=handling_view(handling_store.get(db, incident.id)),
        notes=[{"id": n.id, "who": n.who, "at": _iso_ms(n.ts_ms), "text": n.text}
               for n in handling_store.notes(db, incident.id)],
    )
    return view


def handling_view(done: handling_store.Handling) -> dict[str, Any]:
    """Who acknowledged the incident, who it is assigned to, and its re-run (None: nobody,
    none), as the API answers them."""
    return {"acknowledged_by": done.acked_by or None, "acknowledged_at": _iso_ms(done.acked_ms),
            "assignee": done.assignee or None, "assigned_by": done.assigned_by or None,
            "rerun": done.rerun_id if done.rerun_id not in ("", "-") else None,
            "rerun_by": done.rerun_by or None}


def _seq(value: str | None) -> int | None:
    if value is None:
        return None
    # isascii: "²".isdigit() holds, and int("²") raises.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise BadRequest(f"before: expected a timeline seq (the `next` of the page before), "
                         f"got {value[:50]!r}")
    return int(value)


@get("/incidents/{incident_id:str}", sync_to_thread=True, tags=["incidents"])
def get_incident(
    request: Request[Any, Any, Any], incident_id: FromPath[str],
    db: NamedDependency[Database], limit: FromQuery[str | None] = None,
    before: FromQuery[str | None] = None,
) -> Response[dict[str, Any]]:
    """One incident with its timeline, events and actions, or 404. The timeline is paged,
    newest records first: ``limit`` (1 to 500, default 200) records, and ``next`` to pass as
    ``before`` for the older ones (None on the first record); the events are those the page
    names. Bad parameters answer 400."""
    unknown = sorted(set(request.query_params) - {"limit", "before"})
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0][:50]!r}; expected limit, before")
    size, cursor = _limit(limit, TIMELINE_PAGE), _seq(before)
    incident = incidents_store.get(db, incident_id)
    if incident is None:
        return Response({"error": "not_found"}, status_code=404)
    return Response(incident_detail(db, incident, limit=size, before=cursor))


@get("/incidents", sync_to_thread=True, tags=["incidents"])
def list_incidents(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    source: FromQuery[str | None] = None,
    resource: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    limit: FromQuery[str | None] = None,
    before: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Incidents, newest first, each with its ``handling`` (who acknowledged it, its
    assignee): ``{"items": [...], "next": cursor or null}`` (pass ``next``
    as ``before`` for the following page); bad filters answer 400. ``state`` is read from
    the query itself: Litestar reserves the parameter name for the app state."""
    state = request.query_params.get("state")
    unknown = sorted(set(request.query_params) - set(_INCIDENT_FILTERS))
    if unknown:
        raise BadRequest(
            f"unknown filter {unknown[0][:50]!r}; expected {', '.join(_INCIDENT_FILTERS)}")
    size = _limit(limit)
    rows = incidents_store.list_incidents(
        db,
        state=_one_of("state", state, lifecycle.STATES),
        source=_one_of("source", source, SOURCES),
        resource=resource,
        since_ms=to_ms(parse_since(since, utcnow())) if since is not None else None,
        before=before,
        limit=size + 1,
    )
    page = rows[:size]
    people = handling_store.for_incidents(db, [row.id for row in page])
    return {"items": [{**incident_view(row), "handling": handling_view(
                people.get(row.id) or handling_store.Handling(incident_id=row.id))}
                      for row in page],
            "next": page[-1].id if len(rows) > size else None}


def _who(request: Request[Any, Any, Any]) -> str:
    """The admin caller's name, as the audit log records who decided."""
    caller = request.app.state["authenticator"].check(ADMIN, request.headers,
                                                      request.query_params)
    return str(caller.name)


def _guard_error(exc: guards.GuardError) -> Response[dict[str, Any]]:
    status = 404 if str(exc).startswith("unknown incident") else 409
    error = "not_found" if status == 404 else "conflict"
    return Response({"error": error, "detail": str(exc)}, status_code=status)


@post("/incidents/{incident_id:str}/approve", sync_to_thread=True, tags=["incidents"],
      status_code=200)
def approve_incident(request: Request[Any, Any, Any], incident_id: FromPath[str],
                     db: NamedDependency[Database]) -> Response[dict[str, Any]]:
    """Approve a waiting incident: its actions run at the scheduler's next tick. 404 for an
    unknown id, 409 (with the reason) when it is not waiting for approval."""
    who = _who(request)
    try:
        guards.approve(db, incident_id, who, now=_now(request))
    except guards.GuardError as exc:
        return _guard_error(exc)
    return Response({"id": incident_id, "decision": "approved", "who": who})


class Rejection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The optional body of a reject: why (kept in the incident and the audit log)."""

    reason: str = ""


@post("/incidents/{incident_id:str}/reject", sync_to_thread=True, tags=["incidents"],
      status_code=200)
def reject_incident(request: Request[Any, Any, Any], incident_id: FromPath[str],
                    db: NamedDependency[Database],
                    data: JSONBody[Rejection | None] = None) -> Response[dict[str, Any]]:
    """Reject a waiting incident: its actions are cancelled. 404 / 409 as for approve. An
    optional JSON body ``{"reason": "..."}`` says why."""
    who = _who(request)
    try:
        guards.reject(db, incident_id, who, now=_now(request),
                      reason=data.reason if data is not None else "")
    except guards.GuardError as exc:
        return _guard_error(exc)
    return Response({"id": incident_id, "decision": "rejected", "who": who})


def _service(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.get("service")


def _now(request: Request[Any, Any, Any]) -> datetime:
    """The engine's time when a service runs here (the demo warps it), else the wall clock."""
    service = _service(request)
    return service.clock.now() if service is not None else utcnow()


@post("/pause", sync_to_thread=True, tags=["control"], status_code=200)
def pause(request: Request[Any, Any, Any], db: NamedDependency[Database]) -> dict[str, Any]:
    """Stop all actions (intake goes on; scheduled actions wait)."""
    who = _who(request)
    guards.pause(db, who, now=_now(request))
    return {"paused": True, "who": who}


@post("/resume", sync_to_thread=True, tags=["control"], status_code=200)
def resume(request: Request[Any, Any, Any], db: NamedDependency[Database]) -> dict[str, Any]:
    """Let actions run again."""
    who = _who(request)
    guards.resume(db, who, now=_now(request))
    return {"paused": False, "who": who}


@get("/breakers", sync_to_thread=True, tags=["control"])
def list_breakers(request: Request[Any, Any, Any],
                  db: NamedDependency[Database]) -> dict[str, Any]:
    """The open and half-open circuit breakers (rule, target, state, failures, until),
    most recently opened first."""
    return {"items": guards.list_breakers(db, now=_now(request))}


class BreakerReset(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The optional body of a breaker reset: one target only (else every target of the
    rule), and why (kept in the audit log)."""

    target: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


@post("/breakers/{rule_id:str}/reset", sync_to_thread=True, tags=["control"],
      status_code=200)
def reset_breaker(request: Request[Any, Any, Any], rule_id: FromPath[str],
                  db: NamedDependency[Database],
                  data: JSONBody[BreakerReset | None] = None) -> Response[dict[str, Any]]:
    """Close the rule's breakers (on ``target`` only, if the body names one): it remediates
    again at once. 404 when there is nothing to reset."""
    who = _who(request)
    body = data or BreakerReset()
    try:
        reset = guards.reset_breaker(db, rule_id, who, target=body.target, reason=body.reason,
                                     now=_now(request))
    except guards.GuardError as exc:
        return Response({"error": "not_found", "detail": str(exc)}, status_code=404)
    return Response({"rule_id": rule_id, "target": body.target, "who": who,
                     "reason": body.reason, "reset": reset})


def _no_service() -> Response[dict[str, Any]]:
    return Response({"error": "no_engine",
                     "detail": "this process runs the receivers only, without the engine"},
                    status_code=503)


@get("/status", sync_to_thread=True, tags=["control"])
def status(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The mode (DRY-RUN, LIVE or PAUSED), the queue depth and the playbooks generation."""
    service = _service(request)
    if service is None:
        return _no_service()
    return Response(msgspec.to_builtins(service.status()))


@get("/playbooks", sync_to_thread=True, tags=["playbooks"])
def playbooks(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The rules and policies in force and their generation."""
    service = _service(request)
    if service is None:
        return _no_service()
    return Response({"generation": service.playbooks.generation,
                     "rules": service.playbooks.rules_summary(),
                     "policies": service.playbooks.current.policies_summary()})


@post("/playbooks/reload", sync_to_thread=True, tags=["playbooks"], status_code=200)
def reload_playbooks(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Load the playbooks again: 200 with the new generation, or 422 with every problem
    (the set in force stays)."""
    service = _service(request)
    if service is None:
        return _no_service()
    problems = service.reload(who=_who(request))
    if problems:
        return Response({"error": "invalid_playbooks", "problems": problems,
                         "generation": service.playbooks.generation}, status_code=422)
    return Response({"generation": service.playbooks.generation,
                     "rules": len(service.playbooks.current.rules)})


class SimulateRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/simulate``: a raw sender payload and the source it comes from."""

    source: str
    payload: dict[str, Any] | list[Any]
    attempts: int = 0


@post("/simulate", tags=["playbooks"], status_code=200)
async def simulate(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """What the playbooks in force would do with the payload (the same answer as
    ``remediator simulate --json``); touches nothing. 400/422 for a payload that does not
    parse."""
    service = _service(request)
    if service is None:
        return _no_service()
    try:
        body = msgspec.convert(await request.json(), type=SimulateRequest)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"body: {exc}") from exc
    if body.source not in PAYLOAD_SOURCES:
        raise BadRequest(f"source: expected one of {', '.join(PAYLOAD_SOURCES)}; "
                         f"got {body.source[:50]!r}")
    raw = msgspec.json.encode(body.payload)
    current = service.playbooks.current
    # A payload that does not parse raises PayloadError: the app answers it 400/422.
    db, now = request.app.state["db"], _now(request)
    in_force = await anyio.to_thread.run_sync(lambda: silences.active(db, now=now))
    answer = await anyio.to_thread.run_sync(
        simulate_payload, current, body.source, raw, body.attempts, in_force, to_ms(now))
    return Response(msgspec.to_builtins(answer))


_AUDIT_FILTERS = ("incident", "event", "resource", "kind", "since", "limit", "before")


@get("/audit", sync_to_thread=True, tags=["audit"])
def list_audit(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    incident: FromQuery[str | None] = None,
    event: FromQuery[str | None] = None,
    resource: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    limit: FromQuery[str | None] = None,
    before: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Audit records, the newest ``limit`` (default 100) that pass the filters, oldest first:
    ``{"records": [...], "next": seq or null}`` (pass ``next`` as ``before`` for the page
    older than this one), as ``remediator audit list --json`` prints them."""
    unknown = sorted(set(request.query_params) - set(_AUDIT_FILTERS))
    if unknown:
        raise BadRequest(
            f"unknown filter {unknown[0][:50]!r}; expected {', '.join(_AUDIT_FILTERS)}")
    size = _limit(limit, 100)
    records = audit_store.list_records(
        db, incident_id=incident, event_id=event, resource=resource, kind=kind,
        since=parse_since(since, utcnow()) if since is not None else None,
        limit=size + 1, before=_seq(before))
    older, records = records[:-size], records[-size:]
    return {"records": [msgspec.to_builtins(r) for r in records],
            "next": records[0].seq if older else None}


@get("/audit/verify", sync_to_thread=True, tags=["audit"])
def verify_audit(request: Request[Any, Any, Any],
                 db: NamedDependency[Database]) -> Response[dict[str, Any]]:
    """Walk the whole hash chain (about 2 minutes per million records): ``{"ok", "checked",
    "bad_seq", "reason"}`` (with ``pending`` and ``pending_age_s`` while records wait to be
    linked), as ``remediator audit verify --json`` prints it; one at a time
    (409 while another runs), never for another site's page (403; receivers/verify.py)."""
    try:
        return Response(msgspec.to_builtins(chain.verify(db, request.scope)))
    except chain.VerifyBusy as exc:
        return Response({"error": "conflict", "detail": str(exc)}, status_code=409)


def api_router() -> Router:
    """The ``/api`` router, behind the admin keys."""
    return Router(path="/api", guards=[admin_guard], route_handlers=[
        get_event, list_events, replay_event, get_incident, list_incidents, approve_incident,
        reject_incident, pause, resume, list_breakers, reset_breaker, status, playbooks,
        reload_playbooks, simulate, list_audit, verify_audit,
    ])
