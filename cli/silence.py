"""``remediator silence add|list|expire``: silences (maintenance windows) from the shell, as
``amtool silence`` does for Alertmanager.

Like the other admin commands, each talks to a running server through ``/api/silences``
(``--url``, ``--key`` or ``REMEDIATOR_ADMIN_KEY``; ``--who`` is the name the audit log
records, as basic auth's user name) or, with ``--db PATH``, acts on a stopped service's
database through :mod:`engine.silences`, the functions the API calls. Matchers are written as
amtool writes them: ``resource=~pl_finance_.*``, ``source=adf``, ``attributes.factory!=dev``.
Exit codes: 0 done, 1 refused (unknown or already ended silence, key refused, server
unreachable), 2 bad usage (a bad matcher, time or comment).
"""

from __future__ import annotations

import getpass
import json
from typing import Any
from urllib.parse import quote

import click

from cli._exits import Refused, Usage
from cli.admin import _WHO, Target, _call, _run, _show, _target, _where, _with_db
from engine import silences
from engine.events import utcnow
from engine.store.db import Database

__all__ = ["run_silence_add", "run_silence_expire", "run_silence_list", "silence"]


def _line(row: dict[str, Any]) -> list[str]:
    return [row["id"], row["state"], row["text"], f"until {row['ends_at']}",
            f"by {row['author']}", json.dumps(row["comment"])]


def run_silence_add(target: Target, matchers: tuple[str, ...], *, comment: str,
                    duration: str | None, ends_at: str | None, starts_at: str | None = None,
                    who: str | None = None, as_json: bool = False) -> int:
    """Create a silence; print it (a line, or its JSON)."""

    def act() -> int:
        if target.db:
            try:
                specs = silences.matcher_specs(matchers)
                now = utcnow()
                starts, ends = silences.times(now, duration=duration, ends_at=ends_at,
                                              starts_at=starts_at)
            except silences.SilenceError as exc:
                raise Usage(str(exc)) from exc

            def work(db: Database) -> dict[str, Any]:
                try:
                    return silences.create(db, specs, author=who or getpass.getuser(),
                                           comment=comment, starts=starts, ends=ends, now=now)
                except silences.SilenceError as exc:
                    raise (Usage if exc.status == 400 else Refused)(str(exc)) from exc

            made = _with_db(target, work)
        else:
            body = {"matchers": list(matchers), "comment": comment, "duration": duration,
                    "ends_at": ends_at, "starts_at": starts_at}
            made = _call(target, "POST", "/api/silences", who=who,
                         body={k: v for k, v in body.items() if v is not None})
        if as_json:
            click.echo(json.dumps(made, indent=2))
        else:
            click.echo(f"{made['id']}: silenced {made['text']} from {made['starts_at']} until "
                       f"{made['ends_at']} by {made['author']}")
        return 0

    return _run(act)


def run_silence_list(target: Target, *, expired: bool = False, as_json: bool = False) -> int:
    """Print the silences not yet ended (or the ended ones), as lines or a JSON list."""

    def act() -> int:
        if target.db:
            rows = _with_db(target, lambda db: silences.list_views(db, now=utcnow(),
                                                                   expired=expired))
        else:
            rows = _call(target, "GET", "/api/silences",
                         {"state": "expired"} if expired else None)["items"]
        return _show(rows, _line, as_json=as_json,
                     none="no expired silence" if expired else "no active silence")

    return _run(act)


def run_silence_expire(target: Target, silence_id: str, *, who: str | None = None) -> int:
    """Expire a silence now."""

    def act() -> int:
        if target.db:
            def work(db: Database) -> dict[str, Any]:
                try:
                    return silences.expire(db, silence_id, who or getpass.getuser(),
                                           now=utcnow())
                except silences.SilenceError as exc:
                    raise Refused(str(exc)) from exc

            done = _with_db(target, work)
        else:
            done = _call(target, "DELETE", f"/api/silences/{quote(silence_id, safe='')}",
                         who=who)
        click.echo(f"{done['id']}: expired by {done['expired_by']} at {done['expired_at']}")
        return 0

    return _run(act)


@click.group("silence")
def silence() -> None:
    """Silences: matchers that hold remediation (recorded, not acted on) until they end."""


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--comment", "-c", required=True, help="Why (shown with every held incident).")
@click.option("--duration", "-d", default=None, help="How long, from its start (2h, 1d).")
@click.option("--ends", "ends_at", default=None, help="Or when it ends (an ISO time).")
@click.option("--starts", "starts_at", default=None,
              help="When it starts (an ISO time; default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the silence as JSON.")
@_WHO
@_where
@click.pass_context
def silence_add(ctx: click.Context, matchers: tuple[str, ...], comment: str,
                duration: str | None, ends_at: str | None, starts_at: str | None,
                as_json: bool, who: str | None, url: str, key: str | None,
                db: str | None) -> None:
    """Silence the events all MATCHERS hold for (name=value, name!=value, name=~regex,
    name!~regex; names: source, kind, target, resource, resource_id, error_code,
    failure_type, run_id, attributes.<path>)."""
    ctx.exit(run_silence_add(_target(url, key, db), matchers, comment=comment,
                             duration=duration, ends_at=ends_at, starts_at=starts_at, who=who,
                             as_json=as_json))


@silence.command("list")
@click.option("--expired", is_flag=True, help="The ended silences instead.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@_where
@click.pass_context
def silence_list(ctx: click.Context, expired: bool, as_json: bool, url: str, key: str | None,
                 db: str | None) -> None:
    """List the silences not yet ended (active, pending): id, state, matchers, end, author,
    comment."""
    ctx.exit(run_silence_list(_target(url, key, db), expired=expired, as_json=as_json))


@silence.command("expire")
@click.argument("silence_id")
@_WHO
@_where
@click.pass_context
def silence_expire(ctx: click.Context, silence_id: str, who: str | None, url: str,
                   key: str | None, db: str | None) -> None:
    """End a silence now: what it held is remediated again from now on."""
    ctx.exit(run_silence_expire(_target(url, key, db), silence_id, who=who))
