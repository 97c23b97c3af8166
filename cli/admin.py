"""``remediator approve|reject|pause|resume|incidents|breakers|reset-breaker|events``: operate
the engine from the shell (``events list`` and ``events replay`` for parked events).

By default each command talks to a running server through its management API (``--url`` or
``REMEDIATOR_URL``, ``--key`` or ``REMEDIATOR_ADMIN_KEY``: cli/client.py), so that the
running engine sees the decision at once and the audit log names the admin key that made it.
With ``--db PATH`` it acts on the database directly through :mod:`engine.guards` (the same
functions the API calls), for a stopped service. Exit codes: 0 done, 1 refused (unknown
incident or event, not waiting for approval, not parked, key refused, server unreachable; the
reason on stderr), 2 bad usage.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import click
import msgspec

from cli._exits import Refused
from cli._terminal import shown
from cli.client import ADMIN_KEY_ENV, Target, where
from cli.client import call as _call
from cli.client import run as _run
from cli.client import with_db as _with_db
from engine import guards, lifecycle
from engine.runtime import deadletter
from engine.store import handling as handling_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from engine.store.db import Database

__all__ = [
    "ADMIN_KEY_ENV",
    "Target",
    "approve",
    "breakers",
    "events",
    "incidents",
    "pause",
    "reject",
    "reset_breaker",
    "resume",
    "run_breakers",
    "run_decide",
    "run_events",
    "run_incidents",
    "run_pause",
    "run_replay",
    "run_reset_breaker",
]

FIELDS = ("id", "state", "source", "resource", "target", "rule_id", "attempts", "opened_at",
          "updated_at", "reason", "error_code", "message", "acknowledged_by",
          "acknowledged_at", "assignee")
"""The fields ``incidents --json`` prints, the same from the API and from the database
(``error_code`` and ``message``: the failure's, from the incident's event; who acknowledged
it and its assignee: null when nobody)."""
COLUMNS = (("ID", "id"), ("STATE", "state"), ("AGE", "age"), ("SOURCE", "source"),
           ("RESOURCE", "resource"), ("ERROR", "error_code"), ("RULE", "rule_id"),
           ("ACKED", "acknowledged_by"), ("ASSIGNEE", "assignee"), ("REASON", "reason"))
"""The columns ``incidents`` prints under its header; AGE is the time since it opened,
ACKED who acknowledged it."""
EVENT_FIELDS = ("id", "state", "claims", "source", "resource", "received_at", "reason")
"""The fields ``events list`` prints, the same from the API and from the database."""


# -- commands as functions (tests call these or the click commands) -----------------------


def _acted(target: Target, who: str | None, reason: str, path: str,
           local: Callable[[Database, str], object], refusal: type[Exception]) -> str:
    """Who acted: ``local(db, name)`` on the database (its ``refusal`` is Refused), or a POST
    of ``path`` (with the reason, if any) to the API, which names who."""
    if target.db:
        name = who or getpass.getuser()

        def work(db: Database) -> None:
            try:
                local(db, name)
            except refusal as exc:
                raise Refused(str(exc)) from exc

        _with_db(target, work)
        return name
    answer = _call(target, "POST", path, who=who, body={"reason": reason} if reason else None)
    return str(answer.get("who", ""))


def run_decide(target: Target, decision: str, incident_id: str, *, who: str | None = None,
               reason: str = "", as_json: bool = False) -> int:
    """Approve or reject ``incident_id`` (``decision`` is ``approve`` or ``reject``);
    ``as_json``: ``{"id", "decision", "who"}`` as the API answers."""

    def decide(db: Database, name: str) -> None:
        if decision == "approve":
            guards.approve(db, incident_id, name)
        else:
            guards.reject(db, incident_id, name, reason=reason)

    def act() -> int:
        name = _acted(target, who, reason, f"/api/incidents/{incident_id}/{decision}", decide,
                      guards.GuardError)
        past = "approved" if decision == "approve" else "rejected"
        if as_json:
            click.echo(json.dumps({"id": incident_id, "decision": past, "who": name}))
        else:
            click.echo(f"{incident_id}: {past} by {name}")
        return 0

    return _run(act)


def run_pause(target: Target, paused: bool, *, who: str | None = None,
              as_json: bool = False) -> int:
    """Pause (``paused``) or resume every action; ``as_json``: ``{"paused", "who"}`` as the
    API answers."""

    def act() -> int:
        if target.db:
            name = who or getpass.getuser()
            _with_db(target, lambda db: (guards.pause if paused else guards.resume)(db, name))
        else:
            answer = _call(target, "POST", "/api/pause" if paused else "/api/resume", who=who)
            name = str(answer.get("who", ""))
        if as_json:
            click.echo(json.dumps({"paused": paused, "who": name}))
        else:
            click.echo(f"{'paused' if paused else 'resumed'} by {name}")
        return 0

    return _run(act)


def run_reset_breaker(target: Target, rule_id: str, *, on_target: str | None = None,
                      who: str | None = None, reason: str = "", as_json: bool = False) -> int:
    """Close the circuit breakers of ``rule_id`` (on ``on_target`` only, if given);
    ``as_json``: ``{"rule_id", "who", "reset": [...]}``."""

    def act() -> int:
        if target.db:
            name = who or getpass.getuser()

            def work(db: Database) -> list[dict[str, Any]]:
                try:
                    return guards.reset_breaker(db, rule_id, name, target=on_target,
                                                reason=reason)
                except guards.GuardError as exc:
                    raise Refused(str(exc)) from exc

            reset = _with_db(target, work)
        else:
            body = {k: v for k, v in (("target", on_target), ("reason", reason)) if v}
            path = f"/api/breakers/{quote(rule_id, safe='')}/reset"
            answer = _call(target, "POST", path, who=who, body=body or None)
            name, reset = str(answer.get("who", "")), answer["reset"]
        if as_json:
            click.echo(json.dumps({"rule_id": rule_id, "who": name, "reset": reset}))
            return 0
        for item in reset:
            click.echo(f"{rule_id} on {item['target']}: breaker reset by {name} (was "
                       f"{item['state'].replace('_', '-')}, {item['failures']} failures)")
        return 0

    return _run(act)


def run_breakers(target: Target, *, as_json: bool = False) -> int:
    """Print the open and half-open circuit breakers, as lines or as a JSON list."""

    def act() -> int:
        if target.db:
            rows = _with_db(target, guards.list_breakers)
        else:
            rows = _call(target, "GET", "/api/breakers").rows("items")
        return _show(rows, lambda row: [row["rule_id"], row["target"],
                                        row["state"].replace("_", "-"),
                                        f"{row['failures']} failures", f"until {row['until']}"],
                     as_json=as_json, none="no open circuit breaker")

    return _run(act)


def _params(limit: int, **filters: str | None) -> dict[str, str]:
    """An API list's query: the limit and the filters given."""
    return {"limit": str(limit), **{name: value for name, value in filters.items() if value}}


def _columns(*names: str) -> Callable[[dict[str, Any]], list[str]]:
    return lambda row: [str(row[name]) for name in names]


def _show(rows: list[dict[str, Any]], line: Callable[[dict[str, Any]], list[str]], *,
          as_json: bool, none: str) -> int:
    """Print ``rows`` as a JSON list, or one line each (``none`` on stderr if there is none)."""
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        click.echo("  ".join(shown(cell) for cell in line(row)))
    if not rows:
        click.echo(none, err=True)
    return 0


def _iso(ms: int) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _failure(row: dict[str, Any], event: Any) -> dict[str, Any]:
    """``row`` with the error code and message of the incident's event (JSON text or a dict)."""
    if isinstance(event, str | bytes) and event:
        event = json.loads(event)
    event = event if isinstance(event, dict) else {}
    return {**row, "error_code": event.get("error_code") or "",
            "message": event.get("message") or ""}


def _people(row: dict[str, Any], handling: Any) -> dict[str, Any]:
    """``row`` with who acknowledged the incident and its assignee, from its ``handling`` as
    the API answers it (a server without it: nobody)."""
    handling = handling if isinstance(handling, dict) else {}
    return {**row, **{name: handling.get(name) or None
                      for name in ("acknowledged_by", "acknowledged_at", "assignee")}}


def _from_db(incident: incidents_store.Incident,
             people: dict[str, handling_store.Handling]) -> dict[str, Any]:
    row: dict[str, Any] = _failure(msgspec.to_builtins(incident), incident.event)
    row["opened_at"], row["updated_at"] = _iso(incident.opened_ms), _iso(incident.updated_ms)
    done = people.get(incident.id)
    if done is not None:
        row = _people(row, {"acknowledged_by": done.acked_by,
                            "acknowledged_at": _iso(done.acked_ms), "assignee": done.assignee})
    return {name: row.get(name) for name in FIELDS}


def _incidents_of(db: Database, **filters: Any) -> list[dict[str, Any]]:
    found = incidents_store.list_incidents(db, **filters)
    people = handling_store.for_incidents(db, [i.id for i in found])
    return [_from_db(i, people) for i in found]


def age(opened_at: str | None, now: datetime | None = None) -> str:
    """``45s``, ``12m``, ``3h``, ``2d``: how long ago ``opened_at`` (ISO) was."""
    if not opened_at:
        return "-"
    then = datetime.fromisoformat(opened_at.replace("Z", "+00:00"))
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _table(rows: list[dict[str, Any]], *, as_json: bool, none: str) -> int:
    """Print ``rows`` as a JSON list, or under a header in aligned columns (COLUMNS)."""
    if as_json or not rows:
        return _show(rows, lambda row: [], as_json=as_json, none=none)
    cells = [[title for title, _ in COLUMNS]] + [
        [age(row["opened_at"]) if name == "age" else shown(row.get(name) or "-")
         for _, name in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    for line in cells:
        click.echo("  ".join([cell.ljust(w) for cell, w in zip(line, widths, strict=False)]
                             + [line[-1]]))
    return 0


def run_incidents(target: Target, *, state: str | None = None, resource: str | None = None,
                  limit: int = 50, as_json: bool = False) -> int:
    """Print the newest ``limit`` incidents (filtered), as lines or as a JSON list."""

    def act() -> int:
        if target.db:
            rows = _with_db(target, lambda db: _incidents_of(
                db, state=state, resource=resource, limit=limit))
        else:
            answer = _call(target, "GET", "/api/incidents",
                           _params(limit, state=state, resource=resource))
            rows = [{name: _people(_failure(item, item.get("event")), item.get("handling"))
                     .get(name) for name in FIELDS} for item in answer.rows("items")]
        return _table(rows, as_json=as_json, none="no incidents")

    return _run(act)


def run_replay(target: Target, event_id: str, *, who: str | None = None,
               reason: str = "", as_json: bool = False) -> int:
    """Put the parked event ``event_id`` back to pending, its claims reset; ``as_json``:
    ``{"id", "state", "who"}``."""

    def act() -> int:
        name = _acted(target, who, reason, f"/api/events/{event_id}/replay",
                      lambda db, name: deadletter.replay(db, event_id, name, reason=reason),
                      deadletter.ReplayError)
        if as_json:
            click.echo(json.dumps({"id": event_id, "state": "pending", "who": name}))
        else:
            click.echo(f"{event_id}: replayed by {name}, pending again")
        return 0

    return _run(act)


def _event_from_db(stored: inbox.StoredEvent) -> dict[str, Any]:
    return {"id": stored.event.id, "state": stored.state, "claims": stored.attempts,
            "source": stored.current.source, "resource": stored.current.resource,
            "received_at": stored.received_at.isoformat().replace("+00:00", "Z"),
            "reason": stored.reason}


def run_events(target: Target, *, state: str | None = None, limit: int = 50,
               as_json: bool = False) -> int:
    """Print the newest ``limit`` events (of one state), as lines or as a JSON list."""

    def act() -> int:
        if target.db:
            rows = _with_db(target, lambda db: [
                _event_from_db(e) for e in inbox.list_events(db, state=state, limit=limit)])
        else:
            answer = _call(target, "GET", "/api/events", _params(limit, state=state))
            rows = [{name: item.get(name) for name in EVENT_FIELDS}
                    for item in answer.rows("items")]
        return _show(rows, _columns("id", "state", "claims", "resource", "reason"),
                     as_json=as_json, none="no events")

    return _run(act)


# -- click ---------------------------------------------------------------------------------


def _target(url: str, key: str | None, db: str | None) -> Target:
    return Target(url=url, key=key or "", db=db or "")


_where = where


_WHO = click.option("--who", default=None,
                    help="Who decides, for the audit log (default: the OS user with --db, "
                         "'admin' through the API).")
_JSON = click.option("--json", "as_json", is_flag=True,
                     help="Print the answer as JSON (docs/CLI.md).")


@click.command("approve")
@click.argument("incident_id")
@_WHO
@_JSON
@_where
@click.pass_context
def approve(ctx: click.Context, incident_id: str, who: str | None, as_json: bool, url: str,
            key: str | None, db: str | None) -> None:
    """Approve an incident waiting for approval: its actions run at the next tick."""
    ctx.exit(run_decide(_target(url, key, db), "approve", incident_id, who=who,
                        as_json=as_json))


@click.command("reject")
@click.argument("incident_id")
@_WHO
@click.option("--reason", default="", help="Why (kept in the incident and the audit log).")
@_JSON
@_where
@click.pass_context
def reject(ctx: click.Context, incident_id: str, who: str | None, reason: str, as_json: bool,
           url: str, key: str | None, db: str | None) -> None:
    """Reject an incident waiting for approval: its actions are cancelled."""
    ctx.exit(run_decide(_target(url, key, db), "reject", incident_id, who=who, reason=reason,
                        as_json=as_json))


def _pause_command(name: str, paused: bool, doc: str) -> click.Command:
    """``pause`` and ``resume``: one switch, set one way or the other."""

    @click.command(name, help=doc)
    @_WHO
    @_JSON
    @_where
    @click.pass_context
    def command(ctx: click.Context, who: str | None, as_json: bool, url: str, key: str | None,
                db: str | None) -> None:
        ctx.exit(run_pause(_target(url, key, db), paused, who=who, as_json=as_json))

    return command


pause = _pause_command(
    "pause", True, "Stop all actions (intake and planning go on; scheduled actions wait).")
resume = _pause_command(
    "resume", False, "Let actions run again; those that waited run at the next tick.")


@click.command("incidents")
@click.option("--state", type=click.Choice(lifecycle.STATES), default=None,
              help="Only incidents in this state.")
@click.option("--resource", default=None, help="Only incidents about this resource.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True,
              help="At most this many (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@_where
@click.pass_context
def incidents(ctx: click.Context, state: str | None, resource: str | None, limit: int,
              as_json: bool, url: str, key: str | None, db: str | None) -> None:
    """List incidents, newest first: id, state, age, source, resource, error code, rule,
    who acknowledged it, its assignee, reason."""
    ctx.exit(run_incidents(_target(url, key, db), state=state, resource=resource, limit=limit,
                           as_json=as_json))


@click.command("breakers")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@_where
@click.pass_context
def breakers(ctx: click.Context, as_json: bool, url: str, key: str | None,
             db: str | None) -> None:
    """List the open and half-open circuit breakers: rule, target, state, failures, until."""
    ctx.exit(run_breakers(_target(url, key, db), as_json=as_json))


@click.command("reset-breaker")
@click.argument("rule_id")
@click.option("--target", "on_target", default=None,
              help="Only the breaker on this target (default: every target of the rule).")
@_WHO
@click.option("--reason", default="", help="Why (kept in the audit log).")
@_JSON
@_where
@click.pass_context
def reset_breaker(ctx: click.Context, rule_id: str, on_target: str | None, who: str | None,
                  reason: str, as_json: bool, url: str, key: str | None,
                  db: str | None) -> None:
    """Close a rule's circuit breakers: it remediates again at once."""
    ctx.exit(run_reset_breaker(_target(url, key, db), rule_id, on_target=on_target, who=who,
                               reason=reason, as_json=as_json))


@click.group("events")
def events() -> None:
    """List stored events; replay parked ones."""


@events.command("list")
@click.option("--state", type=click.Choice(inbox.STATES), default=None,
              help="Only events in this state (parked: set aside, waiting for a replay).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True,
              help="At most this many (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@_where
@click.pass_context
def events_list(ctx: click.Context, state: str | None, limit: int, as_json: bool, url: str,
                key: str | None, db: str | None) -> None:
    """List events, newest first: id, state, claims, resource, reason."""
    ctx.exit(run_events(_target(url, key, db), state=state, limit=limit, as_json=as_json))


@events.command("replay")
@click.argument("event_id")
@_WHO
@click.option("--reason", default="", help="Why (kept in the event and the audit log).")
@_JSON
@_where
@click.pass_context
def events_replay(ctx: click.Context, event_id: str, who: str | None, reason: str,
                  as_json: bool, url: str, key: str | None, db: str | None) -> None:
    """Put a parked event back to pending, its claims reset: the worker takes it again."""
    ctx.exit(run_replay(_target(url, key, db), event_id, who=who, reason=reason,
                        as_json=as_json))
