"""The incident page's forms for an operator's hand (templates/_handling.html.j2):
acknowledge, assign, add a note, resolve by hand with a note, re-run. Plain HTML forms posted
here, calling engine/runtime/operators.py as the API does, recorded with who logged in
(``NAME (dashboard)``, as approve and reject are); back to the incident page, or a page saying
why not (404, 409, 400). A form posted from another site is refused before it gets here
(receivers/csrf.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Router, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect

from engine.config import Settings
from engine.runtime import operators, rerun
from engine.store.db import Database
from receivers.auth import admin_guard
from receivers.dashboard import PAGES, _caller, _engine_now, _environment, _mode, _page

__all__ = ["AssignForm", "NoteForm", "ResolveForm", "operators_pages"]

_STATUS = {"missing": 404, "conflict": 409, "invalid": 400}


class NoteForm(msgspec.Struct, kw_only=True):
    """The note form."""

    text: str = ""


class AssignForm(msgspec.Struct, kw_only=True):
    """The assign form (empty: to nobody)."""

    assignee: str = ""


class ResolveForm(msgspec.Struct, kw_only=True):
    """The resolve form: the note that says how (required)."""

    note: str = ""


def _hand(request: Request[Any, Any, Any], incident_id: str, db: Database,
          settings: Settings, refused: str, act: Callable[[str], object]) -> Any:
    """Do ``act(who)``; back to the incident page (at its "On call" part), or a page saying
    why not."""
    try:
        act(f"{_caller(request)} (dashboard)")
    except operators.OperatorError as exc:
        return _page(_environment(), "missing.html.j2", _STATUS[exc.problem], title=refused,
                     mode=_mode(db, settings), what=str(exc))
    return Redirect(f"/incidents/{incident_id}#handling", status_code=303)


@post("/incidents/{incident_id:str}/ack", sync_to_thread=True, include_in_schema=False)
def ack(request: Request[Any, Any, Any], incident_id: FromPath[str],
        db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Any:
    return _hand(request, incident_id, db, settings, "Cannot acknowledge",
                 lambda who: operators.acknowledge(db, incident_id, who,
                                                   now=_engine_now(request)))


@post("/incidents/{incident_id:str}/assign", sync_to_thread=True, include_in_schema=False)
def assign(request: Request[Any, Any, Any], incident_id: FromPath[str],
           db: NamedDependency[Database], settings: NamedDependency[Settings],
           data: URLEncodedBody[AssignForm]) -> Any:
    return _hand(request, incident_id, db, settings, "Cannot assign",
                 lambda who: operators.assign(db, incident_id, data.assignee, who,
                                              now=_engine_now(request)))


@post("/incidents/{incident_id:str}/notes", sync_to_thread=True, include_in_schema=False)
def note(request: Request[Any, Any, Any], incident_id: FromPath[str],
         db: NamedDependency[Database], settings: NamedDependency[Settings],
         data: URLEncodedBody[NoteForm]) -> Any:
    return _hand(request, incident_id, db, settings, "Cannot add the note",
                 lambda who: operators.add_note(db, incident_id, data.text, who,
                                                now=_engine_now(request)))


@post("/incidents/{incident_id:str}/resolve", sync_to_thread=True, include_in_schema=False)
def resolve(request: Request[Any, Any, Any], incident_id: FromPath[str],
            db: NamedDependency[Database], settings: NamedDependency[Settings],
            data: URLEncodedBody[ResolveForm]) -> Any:
    return _hand(request, incident_id, db, settings, "Cannot resolve",
                 lambda who: operators.resolve(db, incident_id, data.note, who,
                                               now=_engine_now(request)))


@post("/incidents/{incident_id:str}/rerun", sync_to_thread=True, include_in_schema=False)
def rerun_form(request: Request[Any, Any, Any], incident_id: FromPath[str],
          db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Any:
    """Re-run, then to the incident it opened (or a page saying why not; 409 also in a
    process without the engine, where the page's other forms work)."""
    service = request.app.state.get("service")
    if service is None:
        return _page(_environment(), "missing.html.j2", 409, title="Cannot re-run",
                     mode=_mode(db, settings),
                     what="this process runs the receivers only, without the engine")
    try:
        done = rerun.rerun(service.worker.deps, incident_id,
                               f"{_caller(request)} (dashboard)")
    except operators.OperatorError as exc:
        return _page(_environment(), "missing.html.j2", _STATUS[exc.problem],
                     title="Cannot re-run", mode=_mode(db, settings), what=str(exc))
    return Redirect(f"/incidents/{done.incident_id}", status_code=303)


def operators_pages() -> Router:
    """These forms' routes, behind the admin credentials, answered as pages."""
    return Router(path="/", guards=[admin_guard], opt={PAGES: True},
                  route_handlers=[ack, assign, note, resolve, rerun_form])
