"""``remediator ack|assign|note|resolve|rerun INCIDENT``: an operator's hand on an incident
from the shell, and ``remediator hash-password`` for the named admin users.

As the other admin commands (cli/admin.py): through a running server's API by default
(``--url``, ``--key``; ``--who NAME`` logs in with basic auth as NAME, the key as password:
with ``[http.users]``, a named user's own password), or on the database of a stopped service
with ``--db`` (``--who``, default the OS user). ``rerun`` needs the running engine (its guards
and scheduler). ``--json`` prints the API's answer, the same with ``--db``. Exit codes: 0
done, 1 refused (the reason on stderr), 2 bad usage.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from cli._exits import Refused, Usage
from cli.admin import _WHO, Target, _call, _run, _target, _where, _with_db
from engine.runtime import operators
from engine.store.db import Database
from receivers.passwords import hash_password

__all__ = ["ack", "assign", "hash_password_command", "note", "rerun", "resolve", "run_hand"]


def _say(answer: dict[str, Any], line: str, as_json: bool) -> int:
    click.echo(json.dumps(answer, indent=2) if as_json else line)
    return 0


def run_hand(target: Target, verb: str, incident_id: str, *, who: str | None = None,
             body: dict[str, str] | None = None, as_json: bool = False) -> int:
    """``verb`` (ack, assign, notes, resolve, rerun) on ``incident_id``; prints what was done
    (or the API's JSON answer)."""

    def act() -> int:
        if target.db:
            if verb == "rerun":
                raise Usage("rerun needs the running engine (its guards and scheduler): "
                            "use --url, not --db")
            name = who or getpass.getuser()
            answer = _with_db(target, lambda db: _on_db(db, verb, incident_id, name,
                                                        body or {}))
        else:
            answer = _call(target, "POST", f"/api/incidents/{incident_id}/{verb}", who=who,
                           body=body)
        return _say(answer, _line(verb, incident_id, answer), as_json)

    return _run(act)


def _on_db(db: Database, verb: str, incident_id: str, who: str,
           body: dict[str, str]) -> dict[str, Any]:
    """What the API answers, done on the database (engine/runtime/operators.py)."""
    try:
        if verb == "ack":
            changed = operators.acknowledge(db, incident_id, who)
            return {"id": incident_id, "acknowledged_by": who, "changed": changed}
        if verb == "assign":
            changed = operators.assign(db, incident_id, body["assignee"], who)
            return {"id": incident_id, "assignee": body["assignee"].strip() or None,
                    "who": who, "changed": changed}
        if verb == "notes":
            return operators.note_json(operators.add_note(db, incident_id, body["text"], who))
        closed = operators.resolve(db, incident_id, body["note"], who)
        return {"id": incident_id, "state": closed.state, "reason": closed.reason, "who": who}
    except operators.OperatorError as exc:
        if exc.problem == "invalid":
            raise Usage(str(exc)) from exc
        raise Refused(str(exc)) from exc


def _line(verb: str, incident_id: str, answer: dict[str, Any]) -> str:
    """One line saying what was done."""
    same = "" if answer.get("changed", True) else " (already so: nothing changed)"
    if verb == "ack":
        return f"{incident_id}: acknowledged by {answer['acknowledged_by']}{same}"
    if verb == "assign":
        return (f"{incident_id}: assigned to {answer['assignee'] or 'nobody'} by "
                f"{answer['who']}{same}")
    if verb == "notes":
        return f"{incident_id}: note {answer['id']} added by {answer['who']}"
    if verb == "resolve":
        return f"{incident_id}: {answer['state']} ({answer['reason']})"
    return (f"{incident_id}: re-run by {answer['who']} as {answer['incident_id']}, "
            f"{answer['state']} ({answer['reason']})")


def _json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the answer as JSON (the API's shape).")(command)


@click.command("ack")
@click.argument("incident_id")
@_WHO
@_json_option
@_where
@click.pass_context
def ack(ctx: click.Context, incident_id: str, who: str | None, as_json: bool, url: str,
        key: str | None, db: str | None) -> None:
    """Acknowledge an active or escalated incident: you take it on."""
    ctx.exit(run_hand(_target(url, key, db), "ack", incident_id, who=who, as_json=as_json))


@click.command("assign")
@click.argument("incident_id")
@click.argument("assignee", required=False)
@click.option("--nobody", is_flag=True, help="Assign it to nobody.")
@_WHO
@_json_option
@_where
@click.pass_context
def assign(ctx: click.Context, incident_id: str, assignee: str | None, nobody: bool,
           who: str | None, as_json: bool, url: str, key: str | None, db: str | None) -> None:
    """Assign an active or escalated incident to ASSIGNEE (or --nobody)."""
    if (assignee is None) == (not nobody):
        raise click.UsageError("give an ASSIGNEE or --nobody (one of them)")
    ctx.exit(run_hand(_target(url, key, db), "assign", incident_id, who=who,
                      body={"assignee": assignee or ""}, as_json=as_json))


@click.command("note")
@click.argument("incident_id")
@click.argument("text")
@_WHO
@_json_option
@_where
@click.pass_context
def note(ctx: click.Context, incident_id: str, text: str, who: str | None, as_json: bool,
         url: str, key: str | None, db: str | None) -> None:
    """Add a note to an incident (any state; at most 4,000 characters; `-` reads stdin)."""
    body = sys.stdin.read(operators.MAX_NOTE + 1) if text == "-" else text
    ctx.exit(run_hand(_target(url, key, db), "notes", incident_id, who=who,
                      body={"text": body}, as_json=as_json))


@click.command("resolve")
@click.argument("incident_id")
@click.option("--note", "text", required=True, help="How it was resolved (kept as the reason).")
@_WHO
@_json_option
@_where
@click.pass_context
def resolve(ctx: click.Context, incident_id: str, text: str, who: str | None, as_json: bool,
            url: str, key: str | None, db: str | None) -> None:
    """Resolve an active incident by hand: its pending actions are cancelled."""
    ctx.exit(run_hand(_target(url, key, db), "resolve", incident_id, who=who,
                      body={"note": text}, as_json=as_json))


@click.command("rerun")
@click.argument("incident_id")
@_WHO
@_json_option
@_where
@click.pass_context
def rerun(ctx: click.Context, incident_id: str, who: str | None, as_json: bool, url: str,
          key: str | None, db: str | None) -> None:
    """Re-run a closed incident's rule as a new incident, through the guards (approval: it
    waits for it); its actions run at the scheduler's next tick. Needs the running server."""
    ctx.exit(run_hand(_target(url, key, db), "rerun", incident_id, who=who, as_json=as_json))


@click.command("hash-password")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin instead of asking.")
@click.pass_context
def hash_password_command(ctx: click.Context, password_stdin: bool) -> None:
    """Print the hash of a named admin user's password, for `[http.users]`
    (`NAME = "HASH"`); the password itself is never printed nor stored."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    if len(password) < 12:
        click.echo("hash-password: a password of at least 12 characters, please", err=True)
        ctx.exit(2)
    click.echo(hash_password(password))
    click.echo('add it to the configuration: [http.users] NAME = "<the hash above>"', err=True)
