"""The dashboard (server-rendered pages at ``/``) and ``/metrics``, both for admins only.

Pages read the store directly (engine/store/*) and render Jinja templates with autoescape on;
everything they show is already redacted when stored, and no request header is ever shown.
Approve/reject, the reset of a circuit breaker (``/breakers``) and the replay of a parked
event are plain HTML forms posted here, calling :mod:`engine.guards` and
:mod:`engine.runtime.deadletter` as the API does; a form posted from another site is refused before
it gets here (:mod:`receivers.csrf`: basic auth alone would not stop it), with the page
:func:`refusal`. ``/metrics`` also takes
``Authorization: Bearer <admin key>``, as Prometheus scrapers send it.
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from engine import guards, lifecycle
from engine.actions.registry import action_table
from engine.audit import KINDS
from engine.clock import to_ms
from engine.config import Settings
from engine.errors import PlaybookError
from engine.events import utcnow
from engine.rules.durations import parse_duration
from engine.rules.load import load_playbooks
from engine.rules.ruleset import PlaybookSet
from engine.runtime import deadletter
from engine.runtime.metrics import CONTENT_TYPE, Metrics
from engine.store import actions, audit, handling, inbox, incidents, reporting, state
from engine.store import metrics as metrics_store
from engine.store.db import Database
from receivers import charts, incident_view, run_links, timeline
from receivers.auth import ADMIN, admin_guard
from receivers.timeline import STAGES
from receivers.verify import VerifyBusy
from receivers.verify import verify as verify_chain

__all__ = ["PAGES", "STAGES", "ApprovalForm", "dashboard_router", "metrics_handler", "refusal"]

_HERE = Path(__file__).parent
REFRESH_SECONDS = 15
"""How often the live pages (incidents, an incident, breakers) update their parts in place
(receivers/static/refresh.js; without script, a plain reload)."""
PARKED_SHOWN = 200
"""The parked events listed on their page (newest first); the page says how many there are."""
INCIDENTS_SHOWN = 200
"""The incidents listed (newest first, after the filters)."""
TIMELINE_RECORDS = 500
"""The newest audit records of one incident shown on its page."""
PAGES = "dashboard_page"
"""The ``opt`` key that marks the dashboard's routes: errors raised before their handler runs
are answered as a page (:func:`refusal`) rather than JSON."""


class ApprovalForm(msgspec.Struct, kw_only=True):
    """The optional reason of the reject and replay forms."""

    reason: str = ""


class BreakerForm(msgspec.Struct, kw_only=True):
    """The breaker reset form: the target (empty: every target of the rule) and why."""

    target: str = ""
    reason: str = ""


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["pretty"] = _pretty
    env.globals["relative"] = _relative
    env.globals["series_class"] = charts.series_class
    env.globals["active"] = lifecycle.active
    return env


def _when(moment: int | datetime | None) -> str:
    """Epoch milliseconds (0: never) or a datetime, in the server's local time."""
    if isinstance(moment, datetime):
        return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if not moment:
        return ""
    return datetime.fromtimestamp(moment / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _relative(moment_ms: int, now_ms: int) -> str:
    """``in 12 min``, ``3 h 05 min ago``, ``now`` ("" for 0: never)."""
    if not moment_ms:
        return ""
    delta = (moment_ms - now_ms) // 1000
    seconds = abs(delta)
    if seconds < 60:
        return "now"
    if seconds < 3600:
        amount = f"{seconds // 60} min"
    elif seconds < 36_000:
        amount = f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    elif seconds < 172_800:
        amount = f"{seconds // 3600} h"
    else:
        amount = f"{seconds // 86_400} days"
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def _pretty(value: Any) -> str:
    """A record's data as indented JSON that reads as stored: characters as themselves (no
    ``\\u0027``); the template escapes it for HTML."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _mode(db: Database, settings: Settings) -> str:
    if state.pause_state(db).paused:
        return "PAUSED"
    return "LIVE" if settings.live else "DRY-RUN"


def _engine_now(request: Request[Any, Any, Any]) -> datetime:
    """The engine's time when a service runs here (the demo warps it), else the wall clock."""
    service = request.app.state.get("service")
    return service.clock.now() if service is not None else utcnow()


def _caller(request: Request[Any, Any, Any]) -> str:
    caller = request.app.state["authenticator"].check(ADMIN, request.headers,
                                                      request.query_params)
    return str(caller.name)


def _charts(db: Database, now_ms: int) -> dict[str, charts.Chart]:
    bucket_ms, count = 3_600_000, 24
    start = (now_ms // bucket_ms - count + 1) * bucket_ms
    return {
        "failures": charts.stacked(
            reporting.failures_over_time(db, since_ms=start, bucket_ms=bucket_ms),
            start_ms=start, bucket_ms=bucket_ms, count=count),
        "remediations": charts.stacked(
            reporting.remediations_over_time(db, since_ms=start, bucket_ms=bucket_ms),
            start_ms=start, bucket_ms=bucket_ms, count=count),
    }


def _workspaces(settings: Settings) -> tuple[run_links.Workspace, ...]:
    """The configured Databricks workspaces: where the run pages are."""
    return tuple(run_links.Workspace(name, cfg.workspace_id, cfg.host)
                 for name, cfg in settings.clouds.databricks.items())


def _page(env: jinja2.Environment, name: str, status: int = 200, *, refresh: int = 0,
          **context: Any) -> Response[str]:
    """A page; ``refresh`` (seconds) makes its ``data-live`` parts update in place."""
    html = env.get_template(name).render(stages=STAGES, refresh=refresh, **context)
    return Response(html, media_type=MediaType.HTML, status_code=status)


def refusal(status: int, title: str, what: str) -> Response[str]:
    """The page for a dashboard request refused before its handler ran (no mode banner: the
    refusal reads no storage)."""
    return _page(_environment(), "missing.html.j2", status, title=title, mode="", what=what)


def _rules(request: Request[Any, Any, Any], settings: Settings) -> tuple[list[Any], str]:
    loaded, error = _loaded(request, settings)
    return (list(loaded.rules) if loaded else []), error


def _loaded(request: Request[Any, Any, Any], settings: Settings) -> tuple[PlaybookSet | None, str]:
    """The playbooks in force (the service's, else those of the settings), or why not."""
    service = request.app.state.get("service")
    if service is not None:
        return service.playbooks.current, ""
    try:
        return load_playbooks([settings.playbooks], action_table()), ""
    except PlaybookError as exc:
        return None, f"the playbooks in {settings.playbooks} do not load: {exc.problems[0]}"


def dashboard_router() -> Router:
    """The dashboard pages and forms, and ``/static`` (the stylesheet)."""
    env = _environment()

    def rows(db: Database, settings: Settings,
             found: list[incidents.Incident]) -> list[dict[str, Any]]:
        """Each listed incident at a glance: what failed, its run, what was done in its
        latest attempt, what is pending."""
        spaces = _workspaces(settings)
        acts = reporting.incident_actions(db, [i.id for i in found])
        analyses = reporting.rca_summaries(db, [i.id for i in found])
        people = handling.for_incidents(db, [i.id for i in found])
        out = []
        for item in found:
            event = reporting.incident_event(db, item)
            mine = acts.get(item.id, [])
            latest = [a for a in mine if a.attempt == item.attempts] or mine[-2:]
            out.append({
                "incident": item, "failure": incident_view.failure(item, event),
                "link": run_links.event_link(event, spaces),
                "done": [incident_view.action_view(a, event, spaces) for a in latest],
                "pending": incident_view.pending(item, mine, event, spaces),
                "rca": incident_view.one_line(analyses.get(item.id, "")),
                "handling": people.get(item.id)})
        return out

    @get("/", sync_to_thread=True, include_in_schema=False)
    def incident_list(request: Request[Any, Any, Any], db: NamedDependency[Database],
                      settings: NamedDependency[Settings]) -> Response[str]:
        query = request.query_params
        state_, source = query.get("state") or None, query.get("source") or None
        resource, since = query.get("resource") or None, query.get("since") or None
        now_ms = to_ms(_engine_now(request))
        error, since_ms = "", None
        if since:
            try:
                since_ms = now_ms - parse_duration(since) * 1000
            except ValueError as exc:
                error = f"since: {exc}"
        if state_ and state_ not in lifecycle.STATES:
            error, state_ = f"state: unknown state {state_!r}", None
        found = [] if error else incidents.list_incidents(
            db, state=state_ or None, source=source or None, resource=resource or None,
            since_ms=since_ms, limit=INCIDENTS_SHOWN)
        filters = {"state": state_ or "", "source": source or "", "resource": resource or "",
                   "since": since or ""}
        return _page(env, "incidents.html.j2", 400 if error else 200, title="Incidents",
                     refresh=REFRESH_SECONDS, mode=_mode(db, settings),
                     incidents=rows(db, settings, found), filters=filters, error=error,
                     states=lifecycle.STATES, charts=_charts(db, now_ms),
                     parked=inbox.count_parked(db), now_ms=now_ms)

    @get("/incidents/{incident_id:str}", sync_to_thread=True, include_in_schema=False)
    def incident_page(request: Request[Any, Any, Any], incident_id: FromPath[str],
                      db: NamedDependency[Database],
                      settings: NamedDependency[Settings]) -> Response[str]:
        found = incidents.get(db, incident_id)
        if found is None:
            return _page(env, "missing.html.j2", 404, title="Not found",
                         mode=_mode(db, settings), what=f"incident {incident_id}")
        records = {r.seq: r for r in audit.list_records(db, incident_id=incident_id,
                                                        limit=TIMELINE_RECORDS)}
        for event_id in {found.event_id, found.event_id.split(".", 1)[0]} - {""}:
            for record in audit.list_records(db, event_id=event_id, limit=100):
                if STAGES.get(record.kind) in ("event", "enrichment", "rule"):
                    records[record.seq] = record
        ordered = [records[seq] for seq in sorted(records)]
        event = reporting.incident_event(db, found)
        spaces = _workspaces(settings)
        rules, _ = _rules(request, settings)
        because = {r.id: timeline.describe_match(r.rule.match) for r in rules}
        rows = actions.for_incident(db, incident_id)
        what = incident_view.failure(found, event)
        return _page(env, "incident.html.j2", title=what.title, refresh=REFRESH_SECONDS,
                     mode=_mode(db, settings), incident=found, failure=what, event=event,
                     link=run_links.event_link(event, spaces),
                     actions=[incident_view.action_view(a, event, spaces) for a in rows],
                     pending=incident_view.pending(found, rows, event, spaces),
                     steps=timeline.steps(ordered, because=because, event=event,
                                          workspaces=spaces),
                     handling=handling.get(db, incident_id), notes=handling.notes(db, incident_id),
                     me=f"{_caller(request)} (dashboard)",
                     now_ms=to_ms(_engine_now(request)))

    def decide(request: Request[Any, Any, Any], db: Database, settings: Settings,
               back: str, refused: str, act: Callable[[str], object]) -> Any:
        """An operator's decision (approve, reject, reset a breaker): back to ``back``, or a
        409 page saying why."""
        try:
            act(f"{_caller(request)} (dashboard)")
        except guards.GuardError as exc:
            return _page(env, "missing.html.j2", 409, title=refused,
                         mode=_mode(db, settings), what=str(exc))
        return Redirect(back, status_code=303)

    @post("/incidents/{incident_id:str}/approve", sync_to_thread=True,
          include_in_schema=False)
    def approve(request: Request[Any, Any, Any], incident_id: FromPath[str],
                db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Any:
        return decide(request, db, settings, f"/incidents/{incident_id}", "Cannot approve",
                      lambda who: guards.approve(db, incident_id, who))

    @post("/incidents/{incident_id:str}/reject", sync_to_thread=True, include_in_schema=False)
    def reject(request: Request[Any, Any, Any], incident_id: FromPath[str],
               db: NamedDependency[Database], settings: NamedDependency[Settings],
               data: URLEncodedBody[ApprovalForm]) -> Any:
        return decide(request, db, settings, f"/incidents/{incident_id}", "Cannot reject",
                      lambda who: guards.reject(db, incident_id, who, reason=data.reason[:500]))

    @get("/breakers", sync_to_thread=True, include_in_schema=False)
    def breakers_page(request: Request[Any, Any, Any], db: NamedDependency[Database],
                      settings: NamedDependency[Settings]) -> Response[str]:
        return _page(env, "breakers.html.j2", title="Circuit breakers", refresh=REFRESH_SECONDS,
                     mode=_mode(db, settings),
                     breakers=guards.list_breakers(db, now=_engine_now(request)))

    @post("/breakers/{rule_id:str}/reset", sync_to_thread=True, include_in_schema=False)
    def reset_breaker(request: Request[Any, Any, Any], rule_id: FromPath[str],
                      db: NamedDependency[Database], settings: NamedDependency[Settings],
                      data: URLEncodedBody[BreakerForm]) -> Any:
        return decide(request, db, settings, "/breakers", "Cannot reset the breaker",
                      lambda who: guards.reset_breaker(
                          db, rule_id, who, target=data.target[:1000] or None,
                          reason=data.reason[:500], now=_engine_now(request)))

    @get("/events/parked", sync_to_thread=True, include_in_schema=False)
    def parked_page(db: NamedDependency[Database], settings: NamedDependency[Settings],
                    replayed: FromQuery[str | None] = None) -> Response[str]:
        """The parked events, each with its reason and a replay form; after a replay, the
        event it put back (named only if it really left the parked state)."""
        done = inbox.get(db, replayed) if replayed else None
        return _page(env, "parked.html.j2", title="Parked events", mode=_mode(db, settings),
                     events=inbox.list_events(db, state="parked", limit=PARKED_SHOWN),
                     total=inbox.count_parked(db), max_claims=settings.engine.max_claims,
                     replayed=done if done is not None and done.state != "parked" else None)

    @post("/events/{event_id:str}/replay", sync_to_thread=True, include_in_schema=False)
    def replay(request: Request[Any, Any, Any], event_id: FromPath[str],
               db: NamedDependency[Database], settings: NamedDependency[Settings],
               data: URLEncodedBody[ApprovalForm]) -> Any:
        """An operator's replay: back to the parked list, or a 404/409 page saying why."""
        try:
            deadletter.replay(db, event_id, f"{_caller(request)} (dashboard)",
                              reason=data.reason[:500])
        except deadletter.ReplayError as exc:
            return _page(env, "missing.html.j2", 404 if exc.missing else 409,
                         title="Cannot replay", mode=_mode(db, settings), what=str(exc))
        service = request.app.state.get("service")
        if service is not None:
            service.wake()
        return Redirect(f"/events/parked?replayed={event_id}", status_code=303)

    @get("/playbooks", sync_to_thread=True, include_in_schema=False)
    def playbooks_page(request: Request[Any, Any, Any], db: NamedDependency[Database],
                       settings: NamedDependency[Settings]) -> Response[str]:
        metrics_store.refresh(db)
        hits = {c.labels["rule"]: c for c in metrics_store.counts(db, "matches")}
        loaded, error = _loaded(request, settings)
        rules = list(loaded.rules) if loaded else []
        rows = [{"rule": r, "hits": int(hits[r.id].value) if r.id in hits else 0,
                 "last": hits[r.id].last_ms if r.id in hits else 0} for r in rules]
        return _page(env, "playbooks.html.j2", title="Playbooks", mode=_mode(db, settings),
                     rows=rows, error=error, policies=loaded.policies if loaded else ())

    @get("/audit", sync_to_thread=True, include_in_schema=False)
    def audit_page(request: Request[Any, Any, Any], db: NamedDependency[Database],
                   settings: NamedDependency[Settings],
                   kind: FromQuery[str | None] = None, resource: FromQuery[str | None] = None,
                   verify: FromQuery[bool] = False) -> Response[str]:
        try:
            chain = verify_chain(db, request.scope) if verify else None
        except VerifyBusy as exc:
            return _page(env, "missing.html.j2", 409, title="Cannot verify now",
                         mode=_mode(db, settings), what=str(exc))
        records = audit.list_records(db, kind=kind or None, resource=resource or None,
                                     limit=200)
        newest = list(reversed(records))
        return _page(env, "audit.html.j2", title="Audit log", mode=_mode(db, settings),
                     records=newest, sentences={r.seq: timeline.sentence(r) for r in newest},
                     kinds=KINDS,
                     filters={"kind": kind or "", "resource": resource or ""},
                     chain=chain, head=audit.head(db))

    return Router(
        path="/",
        guards=[admin_guard],
        opt={PAGES: True},
        route_handlers=[
            incident_list, incident_page, approve, reject, breakers_page, reset_breaker,
            parked_page, replay, playbooks_page, audit_page,
            create_static_files_router(path="/static", directories=[_HERE / "static"],
                                       include_in_schema=False),
        ],
    )


async def _bearer_or_admin(connection: ASGIConnection[Any, Any, Any, Any],
                     handler: BaseRouteHandler) -> None:
    """``Authorization: Bearer <admin key>`` (compared in constant time against every admin
    key), else what :func:`admin_guard` takes."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        settings: Settings = connection.app.state["settings"]
        found = False
        for key in settings.admin_keys:
            found |= bool(key) and hmac.compare_digest(token.strip().encode(),
                                                       key.reveal().encode())
        if found:
            return
    await admin_guard(connection, handler)


@get("/metrics", guards=[_bearer_or_admin], sync_to_thread=True, include_in_schema=False)
def metrics_handler(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The Prometheus exposition of the app's :class:`~engine.runtime.metrics.Metrics`."""
    registry: Metrics = request.app.state["metrics"]
    return Response(registry.render(), media_type=CONTENT_TYPE)

