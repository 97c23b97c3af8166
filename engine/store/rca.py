"""The RCA cache (one analysis per fingerprint) and the LLM call budget (calls per hour).

Both live in the database so that every worker thread and process shares them and a restart
keeps them: the budget is a counter per clock hour, taken in one write transaction. A pending
row per fingerprint lets one asker (of every replica) ask the LLM about one failure at a time.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["answered", "ask", "calls_in_hour", "create_schema", "get_cached", "put_cached",
           "take_call"]

HOUR_MS = 3_600_000


def create_schema(db: Database) -> None:
    """Create the cache and budget tables."""
    db.utils["rca_cache"].create(
        {"fingerprint": str, "analysis": str, "created_ms": int},
        pk="fingerprint", not_null={"analysis", "created_ms"}, if_not_exists=True,
    )
    db.utils["rca_budget"].create({"hour": int, "calls": int}, pk="hour", if_not_exists=True)
    db.utils["rca_pending"].create({"fingerprint": str, "holder": str, "until_ms": int},
                                   pk="fingerprint", if_not_exists=True)


def ask(db: Database, fingerprint: str, holder: str, *, now_ms: int, lease_ms: int) -> bool:
    """Take the pending row of ``fingerprint`` (one asker of the LLM per failure, across
    replicas) unless another holder's is unexpired; whether ``holder`` may ask."""
    with db.write() as conn:
        return conn.execute(
            "INSERT INTO rca_pending (fingerprint, holder, until_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (fingerprint) DO UPDATE SET holder = excluded.holder, "
            "until_ms = excluded.until_ms WHERE rca_pending.holder = excluded.holder "
            "OR rca_pending.until_ms < ?",
            (fingerprint, holder, now_ms + lease_ms, now_ms)).rowcount > 0


def answered(db: Database, fingerprint: str, holder: str) -> None:
    """Drop ``holder``'s pending row of ``fingerprint`` (its answer is cached, or failed)."""
    with db.write() as conn:
        conn.execute("DELETE FROM rca_pending WHERE fingerprint = ? AND holder = ?",
                     (fingerprint, holder))


def get_cached(
    db: Database, fingerprint: str, *, now_ms: int, ttl_ms: int
) -> dict[str, Any] | None:
    """The analysis stored for ``fingerprint`` within the last ``ttl_ms``, or None."""
    rows = db.query("SELECT analysis FROM rca_cache WHERE fingerprint = ? AND created_ms > ?",
                    (fingerprint, now_ms - ttl_ms))
    return json.loads(rows[0]["analysis"]) if rows else None


def put_cached(db: Database, fingerprint: str, analysis: dict[str, Any], *, now_ms: int) -> None:
    """Store (or replace) the analysis of ``fingerprint``; it carries no secret (redacted)."""
    with db.write() as conn:
        conn.execute(
            "INSERT INTO rca_cache (fingerprint, analysis, created_ms) VALUES (?, ?, ?) "
            "ON CONFLICT(fingerprint) DO UPDATE SET analysis = excluded.analysis, "
            "created_ms = excluded.created_ms",
            (fingerprint, json.dumps(analysis), now_ms),
        )


def take_call(db: Database, *, now_ms: int, limit: int) -> bool:
    """Count one LLM call in the current hour if fewer than ``limit`` were made; whether it
    was counted (False: over budget, make no call). One statement: replicas that take the
    last call at once wait for each other's row, and one of them gets it."""
    hour = now_ms // HOUR_MS
    if limit <= 0:
        return False
    with db.write() as conn:
        taken = conn.execute(
            "INSERT INTO rca_budget (hour, calls) VALUES (?, 1) ON CONFLICT (hour) "
            "DO UPDATE SET calls = rca_budget.calls + 1 WHERE rca_budget.calls < ? "
            "RETURNING calls", (hour, limit)).fetchone()
        if taken is not None and taken["calls"] == 1:  # the hour's first: drop old hours
            conn.execute("DELETE FROM rca_budget WHERE hour < ?", (hour - 24,))
    return taken is not None


def calls_in_hour(db: Database, *, now_ms: int) -> int:
    """LLM calls counted in the hour of ``now_ms``."""
    rows = db.query("SELECT calls FROM rca_budget WHERE hour = ?", (now_ms // HOUR_MS,))
    return rows[0]["calls"] if rows else 0
