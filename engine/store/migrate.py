"""PostgreSQL's schema: the numbered SQL files of engine/store/migrations/, applied in order.

Each file runs once, in its own transaction, and is recorded in ``schema_migrations``; every
replica (and ``remediator migrate``) applies what is missing under one session advisory lock
(:data:`MIGRATE_LOCK`), so that two replicas starting together do not apply a file twice.
Files are written expand/contract so that a rolling deploy works: a file only adds (tables,
nullable or defaulted columns, indexes), which the version still running ignores; what a new
version no longer uses is dropped by a later file, once no replica of the old version runs.
A database that has files this version does not know (a newer replica migrated it) is used
as it is. SQLite needs none of this: each module's ``create_schema`` runs when it is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import psycopg

from engine.errors import StorageError

if TYPE_CHECKING:
    from engine.store.postgres import PostgresDatabase

__all__ = ["MIGRATE_LOCK", "MIGRATIONS", "Migration", "apply", "available"]

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATE_LOCK = 0x52454D32
"""The advisory lock held while migrating ("REM2")."""



class Migration(msgspec.Struct, frozen=True):
    """One numbered SQL file."""

    version: int
    name: str
    path: str


def available() -> list[Migration]:
    """The migrations this version ships, in order."""
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        if not (len(number) == 4 and number.isdigit() and name):
            raise StorageError(f"{path.name}: a migration is named NNNN_words.sql")
        found.append(Migration(int(number), name, str(path)))
    return found


def apply(db: PostgresDatabase) -> list[Migration]:
    """Apply the migrations ``db`` lacks, in order; returns those applied. Raises
    StorageError if one fails (it is rolled back, and so are none before it)."""
    applied: list[Migration] = []
    current = "the migrations table"
    with db.connection() as raw:
        try:
            raw.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
            try:
                raw.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                done = {row["version"] for row in
                        raw.execute("SELECT version FROM schema_migrations").fetchall()}
                for migration in available():
                    if migration.version in done:
                        continue
                    current = Path(migration.path).name
                    with raw.transaction():
                        raw.execute(Path(migration.path).read_text())  # type: ignore[arg-type]
                        raw.execute("INSERT INTO schema_migrations (version, name) "
                                    "VALUES (%s, %s)", (migration.version, migration.name))
                    applied.append(migration)
            finally:
                raw.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()
            raise StorageError(f"migration {current} failed: "
                               f"{first[0] if first else type(exc).__name__}") from exc
    return applied
