"""The two backends hold the same tables and columns: what a module's ``create_schema`` makes on
SQLite, engine/store/migrations/ makes on PostgreSQL (a new table without its migration would
work in every SQLite test and fail on the first replica)."""

from __future__ import annotations

from pathlib import Path

from engine.store.db import Database


def _sqlite_columns(path: Path) -> dict[str, set[str]]:
    db = Database(path)
    try:
        tables = [r["name"] for r in db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: {r["name"] for r in db.query(f"PRAGMA table_info({t})")} for t in tables}
    finally:
        db.close()


def _postgres_columns(url: str) -> dict[str, set[str]]:
    db = Database(url)
    try:
        rows = db.query("SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = 'public'")
    finally:
        db.close()
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], set()).add(row["column_name"])
    found.pop("schema_migrations", None)  # the migrations' own bookkeeping
    return found


def test_every_sqlite_table_and_column_has_its_postgres_migration(tmp_path: Path,
                                                                  pg_url: str) -> None:
    sqlite = _sqlite_columns(tmp_path / "remediator.db")
    postgres = _postgres_columns(pg_url)
    assert sorted(set(sqlite) ^ set(postgres)) == []
    # PostgreSQL's events carry ``seq``, the insertion order SQLite keeps as its rowid
    assert {t: sorted(sqlite[t] ^ postgres[t]) for t in sqlite if sqlite[t] ^ postgres[t]} == {
        "events": ["seq"]}
