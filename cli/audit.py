"""``remediator audit verify`` and ``remediator audit list``: the audit log from the shell.

Both open the database read-mostly through the store (the schema is created if missing, as
the service would); ``verify`` walks the whole chain and names the first record that does not
fit; ``list`` filters by incident, resource, kind and age.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import click
import msgspec
from rich.console import Console
from rich.table import Table

from cli._db import db_option, shown
from engine.audit import KINDS
from engine.errors import StorageError
from engine.events import utcnow
from engine.rules.durations import parse_duration
from engine.store import audit as audit_store
from engine.store.db import Database

__all__ = ["audit", "run_list", "run_verify"]


def run_verify(db_path: str) -> int:
    """0 if the chain verifies, 1 if not (the first bad record named on stderr), 2 if the
    database cannot be read."""
    try:
        db = Database(db_path)
        result = audit_store.verify_chain(db)
        db.close()
    except StorageError as exc:
        click.echo(f"{shown(db_path)}: {exc}", err=True)
        return 2
    if result.ok:
        click.echo(f"ok: {result.checked} records verified")
        return 0
    click.echo(f"FAILED: {result.reason}", err=True)
    click.echo(f"{result.checked} records verified before record {result.bad_seq}", err=True)
    return 1


def run_list(db_path: str, *, incident: str | None, resource: str | None, kind: str | None,
             since: str | None, limit: int, as_json: bool) -> int:
    """Print the newest ``limit`` records that pass the filters, oldest first. 0, or 2 on a
    bad ``--since`` or an unreadable database."""
    try:
        moment = utcnow() - timedelta(seconds=parse_duration(since)) if since else None
    except ValueError as exc:
        click.echo(f"--since: {exc}", err=True)
        return 2
    try:
        db = Database(db_path)
        records = audit_store.list_records(db, incident_id=incident, resource=resource,
                                           kind=kind, since=moment, limit=limit)
        db.close()
    except StorageError as exc:
        click.echo(f"{shown(db_path)}: {exc}", err=True)
        return 2
    if as_json:
        click.echo(json.dumps({"records": msgspec.to_builtins(records)}, indent=2))
        return 0
    table = Table("seq", "ts", "kind", "actor", "incident", "event", "data")
    for r in records:
        table.add_row(str(r.seq), r.ts, r.kind, r.actor, r.incident_id, r.event_id,
                      json.dumps(r.data, sort_keys=True))
    Console(file=sys.stdout, width=200).print(table)
    return 0


@click.group()
def audit() -> None:
    """Check and read the hash-chained audit log."""


_DB = db_option(default="remediator.db", exists=True, help="The database.")


@audit.command("verify")
@_DB
@click.pass_context
def verify(ctx: click.Context, db_path: str) -> None:
    """Verify the hash chain; exit 1 naming the first bad record."""
    ctx.exit(run_verify(db_path))


@audit.command("list")
@_DB
@click.option("--incident", default=None, help="Only this incident's records.")
@click.option("--resource", default=None, help="Only records about this resource.")
@click.option("--kind", default=None, help=f"Only this kind ({', '.join(KINDS)}, ...).")
@click.option("--since", default=None, help="Only records this recent (30m, 24h, 7d).")
@click.option("--limit", default=100, show_default=True, help="At most this many (newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, db_path: str, incident: str | None, resource: str | None,
          kind: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """List audit records, oldest first, filtered."""
    ctx.exit(run_list(db_path, incident=incident, resource=resource, kind=kind, since=since,
                      limit=limit, as_json=as_json))
