"""Running totals for ``/metrics``, folded in from the append-only tables at scrape time.

The audit log and the inbox only grow (retention nulls payloads, never removes rows), so each
scrape reads only what was appended since the last one (a cursor per table, at most ``batch``
rows a scrape) and adds it to ``metric_counts``. A scrape therefore stays cheap however long
the log is; after a bulk import the totals catch up over a few scrapes.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import msgspec

from engine.store import locks

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = [
    "FIRST_ACTION_BUCKETS",
    "Count",
    "counts",
    "create_schema",
    "duplicates",
    "refresh",
]

FIRST_ACTION_BUCKETS: tuple[float, ...] = (
    1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600, 86400, float("inf"))
"""Upper bounds (seconds) of the receipt-to-first-action histogram."""

_ACTION_OUTCOMES = {"action_succeeded": "succeeded", "action_failed": "failed",
                    "action_cancelled": "cancelled"}
SETTLED_MS = 60_000
"""PostgreSQL: events are folded once this old (an intake commit never takes as long)."""
_KINDS = ("matched", "guard", "rca", "action_planned", "action_started", "precheck",
          *_ACTION_OUTCOMES)


class Count(msgspec.Struct, frozen=True):
    """One running total: its series, labels, value and when it last grew (ms, 0 if never)."""

    series: str
    labels: dict[str, str]
    value: float
    last_ms: int


def create_schema(db: Database) -> None:
    """The totals and the cursors of what has been folded in."""
    db.utils["metric_counts"].create(
        {"series": str, "labels": str, "value": float, "last_ms": int},
        pk=("series", "labels"), if_not_exists=True,
    )
    db.utils["metric_cursors"].create({"name": str, "last": int}, pk="name", if_not_exists=True)
    # sum(duplicates) reads only the rows that had one.
    db.utils["events"].create_index(["duplicates"], if_not_exists=True)


class _Totals:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], tuple[float, int]] = {}

    def add(self, series: str, labels: dict[str, str], amount: float, ts: int) -> None:
        key = (series, json.dumps(labels, sort_keys=True))
        value, last = self.values.get(key, (0.0, 0))
        self.values[key] = (value + amount, max(last, ts))


def _cursor(conn: Any, name: str) -> int:
    row = conn.execute("SELECT last FROM metric_cursors WHERE name = ?", (name,)).fetchone()
    return row["last"] if row else 0


def _first_action(conn: Any, row: Any, totals: _Totals, plain: str) -> None:
    earlier = conn.execute(
        f"SELECT 1 FROM audit WHERE incident_id = ? AND chain < ? AND {plain}kind = "
        "'action_started' LIMIT 1", (row["incident_id"], row["chain"])).fetchone()
    if earlier is not None or not row["incident_id"]:
        return
    received = conn.execute("SELECT received_ms FROM events WHERE id = ?",
                            (row["event_id"].split(".", 1)[0],)).fetchone()
    if received is None:
        return
    seconds = max(0.0, (row["ts_ms"] - received["received_ms"]) / 1000)
    le = next(b for b in FIRST_ACTION_BUCKETS if seconds <= b)
    totals.add("first_action_bucket", {"le": str(le)}, 1, row["ts_ms"])
    totals.add("first_action_sum", {}, seconds, row["ts_ms"])
    totals.add("first_action_count", {}, 1, row["ts_ms"])


def _fold_audit(conn: Any, row: Any, totals: _Totals, plain: str) -> None:
    kind, ts, data = row["kind"], row["ts_ms"], json.loads(row["data"])
    if kind == "matched":
        for rule in data.get("rules") or []:
            totals.add("matches", {"rule": str(rule)}, 1, ts)
    elif kind == "guard" and data.get("decision") != "allow":
        totals.add("guard_blocks", {"guard": str(data.get("name", "")),
                                    "decision": str(data.get("decision", ""))}, 1, ts)
    elif kind == "rca":
        analysis = data.get("analysis") if isinstance(data.get("analysis"), dict) else {}
        totals.add("rca_calls", {}, 1, ts)
        if analysis.get("cached"):
            totals.add("rca_cache_hits", {}, 1, ts)
    elif kind == "action_planned":
        outcome = "dry_run" if data.get("dry_run") else "planned"
        totals.add("actions", {"action": str(data.get("action", "")), "outcome": outcome}, 1, ts)
    elif kind in _ACTION_OUTCOMES:
        totals.add("actions", {"action": str(data.get("action") or "unknown"),
                               "outcome": _ACTION_OUTCOMES[kind]}, 1, ts)
    elif kind == "action_started":
        _first_action(conn, row, totals, plain)
    elif kind == "precheck" and data.get("decision") == "skip" and not data.get("dry_run"):
        # The pre-check found nothing to do: the action ended skipped, nothing was called.
        totals.add("actions", {"action": str(data.get("action") or "unknown"),
                               "outcome": "skipped"}, 1, ts)


def refresh(db: Database, *, batch: int = 50_000) -> None:
    """Fold up to ``batch`` new audit records and new inbox events into the totals."""
    totals = _Totals()
    plain, rowid = db.dialect.unindexed, db.dialect.rowid
    with db.write() as conn:
        # Replicas scraping at once fold each row once: one folds, the others do not wait for
        # it (a scrape answers with the totals as they stand).
        if not locks.try_hold(db, "metrics", conn=conn):
            return
        audit_last = _cursor(conn, "audit")
        # By chain position, not seq: positions are given in order and never later to a
        # lower one (engine/store/audit.py), so a cursor on them misses no record.
        head = conn.execute("SELECT chain FROM audit_head WHERE id = 1").fetchone()
        audit_to = min(audit_last + batch, (head["chain"] or 0) if head else 0)
        marks = ", ".join("?" for _ in _KINDS)
        for row in conn.execute(
            f"SELECT chain, kind, ts_ms, incident_id, event_id, data FROM audit "
            f"WHERE chain > ? AND chain <= ? AND {plain}kind IN ({marks}) ORDER BY chain",
            (audit_last, audit_to, *_KINDS),
        ).fetchall():
            _fold_audit(conn, row, totals, plain)
        events_last = _cursor(conn, "events")
        # On PostgreSQL replicas store events side by side: an insertion number may commit
        # after a greater one. What is older than any commit can take is final.
        settled = ("" if db.dialect.name == "sqlite"
                   else f" AND received_ms < {time.time_ns() // 1_000_000 - SETTLED_MS}")
        rows = conn.execute(
            f"SELECT {rowid} AS r, source, status, received_ms FROM events WHERE {rowid} > ?"
            f"{settled} ORDER BY {rowid} LIMIT ?", (events_last, batch)).fetchall()
        for row in rows:
            totals.add("events", {"source": row["source"], "status": row["status"]}, 1,
                       row["received_ms"])
        for (series, labels), (value, last) in totals.values.items():
            conn.execute(
                "INSERT INTO metric_counts (series, labels, value, last_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (series, labels) DO UPDATE SET "
                "value = metric_counts.value + excluded.value, "
                f"last_ms = {db.dialect.greatest}(metric_counts.last_ms, excluded.last_ms)",
                (series, labels, value, last))
        for name, last in (("audit", audit_to), ("events", rows[-1]["r"] if rows else None)):
            if last is not None and last > 0:
                conn.execute(
                    "INSERT INTO metric_cursors (name, last) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET last = excluded.last", (name, last))


def counts(db: Database, series: str | None = None) -> list[Count]:
    """The running totals (of one series, or all), as last folded by :func:`refresh`."""
    sql, params = "SELECT * FROM metric_counts", []
    if series is not None:
        sql += " WHERE series = ?"
        params.append(series)
    return [Count(row["series"], json.loads(row["labels"]), row["value"], row["last_ms"])
            for row in db.query(sql + " ORDER BY series, labels", params)]


def duplicates(db: Database) -> int:
    """Deliveries refused as duplicates, over the whole inbox (index on ``duplicates``)."""
    return db.query("SELECT CAST(coalesce(sum(duplicates), 0) AS BIGINT) AS n FROM events "
                    "WHERE duplicates > 0")[0]["n"]
