"""Retention SQL: drop raw payloads past their age. Audit rows are never touched."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["drop_raw_payloads"]


def drop_raw_payloads(db: Database, *, before_ms: int, batch: int = 5000) -> int:
    """Set ``raw`` to NULL on events received before ``before_ms``, ``batch`` rows per
    transaction (so that intake is never blocked for long); returns how many were dropped."""
    total, rowid = 0, db.dialect.rowid
    while True:
        with db.write() as conn:
            changed = conn.execute(
                f"UPDATE events SET raw = NULL WHERE {rowid} IN (SELECT {rowid} FROM events "
                "WHERE received_ms < ? AND raw IS NOT NULL LIMIT ?)", (before_ms, batch),
            ).rowcount
        total += changed
        if changed < batch:
            return total
