"""``remediator migrate``: bring the database's schema up to this version's.

On PostgreSQL it applies the numbered SQL files that the database lacks (engine/store/migrate.py),
under the migration lock, so that it can run before a rolling deploy while the old version
serves; a replica that starts applies them too. A SQLite file gets its tables when it is
opened, which this command does.
"""

from __future__ import annotations

import click

from cli._db import db_option, shown
from engine.errors import StorageError
from engine.store.db import Database, is_server_url

__all__ = ["migrate", "run_migrate"]


def run_migrate(db_path: str) -> int:
    """0 when the schema is current (what was applied is printed), 2 if it cannot be."""
    try:
        if is_server_url(db_path):
            from engine.store.migrate import apply
            from engine.store.postgres import PostgresDatabase

            db = PostgresDatabase(db_path, migrate=False)
            try:
                applied = apply(db)
            finally:
                db.close()
            for migration in applied:
                click.echo(f"applied {migration.version:04d}_{migration.name}")
            click.echo(f"ok: {shown(db_path)} is current ({len(applied)} applied)")
        else:
            Database(db_path).close()
            click.echo(f"ok: {db_path} is current (SQLite: made when opened)")
    except StorageError as exc:
        click.echo(f"remediator migrate: {shown(db_path)}: {exc}", err=True)
        return 2
    return 0


@click.command("migrate")
@db_option(default="remediator.db", exists=False, help="The database to migrate.")
@click.pass_context
def migrate(ctx: click.Context, db_path: str) -> None:
    """Apply the schema migrations the database lacks (PostgreSQL: under an advisory lock)."""
    ctx.exit(run_migrate(db_path))
