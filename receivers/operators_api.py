"""``/api/incidents/{id}/ack|assign|notes|resolve|rerun``: an operator's hand on an incident
(engine/runtime/operators.py), admin only, each audited with who (the authenticated name).

Answers: 200 with what was done (``changed: false`` when it already was so: a double click
writes nothing), 404 for an unknown incident, 409 with the reason when the incident's state
does not allow it, 400 for a body of another shape or a text out of bounds, 503 for a re-run
in a process without the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response, Router, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from engine.runtime import operators, rerun
from engine.store.db import Database
from receivers.api import _no_service, _now, _service, _who, incident_view
from receivers.auth import admin_guard

__all__ = ["Assignment", "NoteBody", "Resolution", "operators_router"]

T = TypeVar("T")
_STATUS = {"missing": (404, "not_found"), "conflict": (409, "conflict"),
           "invalid": (400, "bad_request")}


class NoteBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST .../notes``: the note's text."""

    text: str


class Assignment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST .../assign``: who it is assigned to ("" : nobody)."""

    assignee: str


class Resolution(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST .../resolve``: the note that says why (required)."""

    note: str


def _refused(exc: operators.OperatorError) -> Response[dict[str, Any]]:
    status, error = _STATUS[exc.problem]
    return Response({"error": error, "detail": str(exc)}, status_code=status)


def _hand(request: Request[Any, Any, Any], act: Callable[[str], T],
          answer: Callable[[str, T], dict[str, Any]]) -> Response[dict[str, Any]]:
    """Do ``act(who)`` and answer ``answer(who, done)``, or the refusal's status and why."""
    who = _who(request)
    try:
        done = act(who)
    except operators.OperatorError as exc:
        return _refused(exc)
    return Response(answer(who, done))


@post("/incidents/{incident_id:str}/ack", sync_to_thread=True, tags=["incidents"],
      status_code=200)
def ack_incident(request: Request[Any, Any, Any], incident_id: FromPath[str],
                 db: NamedDependency[Database]) -> Response[dict[str, Any]]:
    """Acknowledge an active or escalated incident: the caller takes it on."""
    return _hand(request, lambda who: operators.acknowledge(db, incident_id, who,
                                                            now=_now(request)),
                 lambda who, changed: {"id": incident_id, "acknowledged_by": who,
                                       "changed": changed})


@post("/incidents/{incident_id:str}/assign", sync_to_thread=True, tags=["incidents"],
      status_code=200)
def assign_incident(request: Request[Any, Any, Any], incident_id: FromPath[str],
                    db: NamedDependency[Database],
                    data: JSONBody[Assignment]) -> Response[dict[str, Any]]:
    """Assign an active or escalated incident (``{"assignee": ""}``: to nobody)."""
    return _hand(request, lambda who: operators.assign(db, incident_id, data.assignee, who,
                                                       now=_now(request)),
                 lambda who, changed: {"id": incident_id,
                                       "assignee": data.assignee.strip() or None, "who": who,
                                       "changed": changed})


@post("/incidents/{incident_id:str}/notes", sync_to_thread=True, tags=["incidents"],
      status_code=200)
def note_incident(request: Request[Any, Any, Any], incident_id: FromPath[str],
                  db: NamedDependency[Database],
                  data: JSONBody[NoteBody]) -> Response[dict[str, Any]]:
    """Add a note to any incident (redacted as stored, at most 4,000 characters)."""
    return _hand(request, lambda who: operators.add_note(db, incident_id, data.text, who,
                                                         now=_now(request)),
                 lambda _, note: operators.note_json(note))


@post("/incidents/{incident_id:str}/resolve", sync_to_thread=True, tags=["incidents"],
      status_code=200)
def resolve_incident(request: Request[Any, Any, Any], incident_id: FromPath[str],
                     db: NamedDependency[Database],
                     data: JSONBody[Resolution]) -> Response[dict[str, Any]]:
    """Resolve an active incident by hand, with a note (its pending actions are cancelled)."""
    def answer(who: str, incident: Any) -> dict[str, Any]:
        view = incident_view(incident)
        return {"id": incident_id, "state": view["state"], "reason": view["reason"],
                "who": who}

    return _hand(request, lambda who: operators.resolve(db, incident_id, data.note, who,
                                                        now=_now(request)), answer)


@post("/incidents/{incident_id:str}/rerun", sync_to_thread=True, tags=["incidents"],
      status_code=200)
def rerun_incident(request: Request[Any, Any, Any], incident_id: FromPath[str],
                   db: NamedDependency[Database]) -> Response[dict[str, Any]]:
    """Re-run a closed incident's rule as a new incident of its failure, through the guards
    (approval: the new incident waits for it). Its actions run at the scheduler's next
    tick."""
    service = _service(request)
    if service is None:
        return _no_service()
    return _hand(request, lambda who: rerun.rerun(service.worker.deps, incident_id, who),
                 lambda who, result: {**msgspec.to_builtins(result), "who": who})


def operators_router() -> Router:
    """These routes under ``/api``, behind the admin credentials (as receivers/api.py's)."""
    return Router(path="/api", guards=[admin_guard], route_handlers=[
        ack_incident, assign_incident, note_incident, resolve_incident, rerun_incident])
