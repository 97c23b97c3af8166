"""``remediator audit verify`` and ``remediator audit list``: the audit log from the shell.

Like the operating commands (cli/client.py), each reads a running server's ``/api/audit``
(``--url``, ``--key``) or, with ``--db PATH``, the database file directly (for a stopped
service). ``verify`` walks the whole chain and names the first record that does not fit; a
log with no record at all fails too (exit 1): the wrong file, or a server that never wrote;
``list`` filters by incident, resource, kind and age.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any, TypeVar

import click
import msgspec
from rich.console import Console
from rich.table import Table

from cli._exits import Refused
from cli._terminal import shown
from cli.client import Target, call, run, where, with_db
from engine.audit import KINDS, VerifyResult
from engine.events import utcnow
from engine.rules.durations import parse_duration
from engine.store import audit as audit_store

__all__ = ["audit", "run_list", "run_verify"]

EMPTY = ("{where}: the audit log has no record: not Remediator's database, or a service that "
         "never ran")
"""What ``verify`` says (exit 1) about an empty log: nothing verified is not a pass."""


class _Record(msgspec.Struct):
    """One record of ``GET /api/audit``, as far as ``list`` reads it."""

    seq: int
    ts: str
    kind: str
    actor: str
    incident_id: str
    event_id: str
    data: Any


class _Page(msgspec.Struct):
    """``GET /api/audit``'s answer, as far as ``list`` reads it."""

    records: list[_Record]


T = TypeVar("T")


def _shaped(answer: object, shape: type[T], target: Target) -> T:
    """The server's answer as ``shape``, or :class:`Refused` saying it is not."""
    try:
        return msgspec.convert(answer, shape)
    except msgspec.ValidationError as exc:
        raise Refused(f"{target.url}: answered JSON of another shape than Remediator's: "
                      f"{str(exc)[:200]}") from exc


def _where(target: Target) -> str:
    return target.db or target.url


def run_verify(target: Target, *, as_json: bool = False) -> int:
    """0 if the chain verifies; 1 if not (the first bad record named on stderr), if there is
    no record, or if the database or the server cannot be read; 2 for bad usage.
    ``as_json``: ``{"ok", "checked", "bad_seq", "reason"}`` on stdout, with ``pending`` and
    ``pending_age_s`` when records wait to be linked (a lag, not a failure)."""

    def act() -> int:
        if target.db:
            result = with_db(target, audit_store.verify_chain)
        else:
            result = _shaped(call(target, "GET", "/api/audit/verify"), VerifyResult, target)
        if result.ok and not result.checked and not result.pending:
            result = VerifyResult(ok=False, checked=0, bad_seq=None,
                                  reason=EMPTY.format(where=_where(target)))
        if as_json:
            click.echo(json.dumps(msgspec.to_builtins(result), indent=2))
        if result.ok:
            if not as_json:
                click.echo(f"ok: {result.checked} records verified" + _pending(result))
            return 0
        click.echo(f"FAILED: {result.reason}", err=True)
        if result.bad_seq is not None:
            click.echo(f"{result.checked} records verified before record {result.bad_seq}",
                       err=True)
        return 1

    return run(act)


def _pending(result: VerifyResult) -> str:
    """What waits to be linked (PostgreSQL: the leader links within a second), if any."""
    if not result.pending:
        return ""
    return (f"; {result.pending} more not linked yet (the oldest written "
            f"{result.pending_age_s:.1f} s ago)")


def run_list(target: Target, *, incident: str | None, resource: str | None, kind: str | None,
             since: str | None, limit: int, as_json: bool) -> int:
    """Print the newest ``limit`` records that pass the filters, oldest first. 0; 1 if the
    database or the server cannot be read; 2 on a bad ``--since``."""
    try:
        seconds = parse_duration(since) if since else None
    except ValueError as exc:
        click.echo(f"--since: {exc}", err=True)
        return 2

    def act() -> int:
        if target.db:
            moment = utcnow() - timedelta(seconds=seconds) if seconds is not None else None
            records = msgspec.to_builtins(with_db(target, lambda db: audit_store.list_records(
                db, incident_id=incident, resource=resource, kind=kind, since=moment,
                limit=limit)))
        else:
            params = {name: value for name, value in (
                ("incident", incident), ("resource", resource), ("kind", kind),
                ("since", f"{seconds:.0f}s" if seconds is not None else None),
                ("limit", str(limit))) if value}
            answer = call(target, "GET", "/api/audit", params)
            _shaped(answer, _Page, target)
            records = answer["records"]
        if as_json:
            click.echo(json.dumps({"records": records}, indent=2))
            return 0
        table = Table("seq", "ts", "kind", "actor", "incident", "event", "data")
        for r in records:
            table.add_row(*(shown(v) for v in (
                str(r["seq"]), r["ts"], r["kind"], r["actor"], r["incident_id"], r["event_id"],
                json.dumps(r["data"], sort_keys=True))))
        # markup=False: a record's "[/bold]" is text, not Rich markup (that was a crash).
        Console(file=sys.stdout, width=200, markup=False, highlight=False).print(table)
        return 0

    return run(act)


@click.group()
def audit() -> None:
    """Check and read the hash-chained audit log."""


def _target(url: str, key: str | None, db: str | None) -> Target:
    return Target(url=url, key=key or "", db=db or "", timeout=600.0)


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/CLI.md).")
@where
@click.pass_context
def verify(ctx: click.Context, as_json: bool, url: str, key: str | None,
           db: str | None) -> None:
    """Verify the hash chain; exit 1 naming the first bad record, or if there is none."""
    ctx.exit(run_verify(_target(url, key, db), as_json=as_json))


@audit.command("list")
@click.option("--incident", default=None, help="Only this incident's records.")
@click.option("--resource", default=None, help="Only records about this resource.")
@click.option("--kind", default=None, help=f"Only this kind ({', '.join(KINDS)}, ...).")
@click.option("--since", default=None, help="Only records this recent (30m, 24h, 7d).")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True,
              help="At most this many (newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@where
@click.pass_context
def list_(ctx: click.Context, incident: str | None, resource: str | None, kind: str | None,
          since: str | None, limit: int, as_json: bool, url: str, key: str | None,
          db: str | None) -> None:
    """List audit records, oldest first, filtered."""
    ctx.exit(run_list(_target(url, key, db), incident=incident, resource=resource, kind=kind,
                      since=since, limit=limit, as_json=as_json))
