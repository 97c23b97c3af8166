"""The inbox and idempotency ledger: every received event, exactly once, with its processing state.

An event is committed under its UNIQUE ``dedup_key`` before the receiver answers 202; a second
delivery of the same key only counts a duplicate. The worker claims pending events with a
lease, so that an event whose worker died is picked up again once the lease runs out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.events import ErrorEvent
from engine.store import Database, new_id

__all__ = [
    "Receipt",
    "StoredEvent",
    "claim",
    "count_pending",
    "create_schema",
    "existing_keys",
    "finish",
    "get",
    "insert",
    "insert_batch",
    "list_events",
    "save_enriched",
]

STATES = ("pending", "processing", "done", "failed")


class Receipt(msgspec.Struct, frozen=True):
    """What the receiver answers for one event: its id, whether it was seen before, its status."""

    event_id: str
    duplicate: bool
    status: str


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the inbox holds it."""

    event: ErrorEvent
    enriched: ErrorEvent | None
    raw: Any
    received_at: datetime
    endpoint: str
    state: str
    attempts: int
    duplicates: int
    error: str

    @property
    def current(self) -> ErrorEvent:
        """The enriched event if enrichment ran, else the event as received."""
        return self.enriched or self.event


def create_schema(db: Database) -> None:
    """Create the events table and its indexes if they do not exist."""
    db.utils["events"].create(
        {
            "id": str,
            "dedup_key": str,
            "received_ms": int,
            "endpoint": str,
            "source": str,
            "kind": str,
            "status": str,
            "resource": str,
            "run_id": str,
            "fingerprint": str,
            "event": str,
            "enriched": str,
            "raw": str,
            "state": str,
            "lease_until_ms": int,
            "attempts": int,
            "duplicates": int,
            "error": str,
        },
        pk="id",
        not_null={"dedup_key", "received_ms", "source", "kind", "status", "event", "state"},
        defaults={"state": "pending", "attempts": 0, "duplicates": 0, "lease_until_ms": 0,
                  "error": ""},
        if_not_exists=True,
    )
    db.utils["events"].create_index(["dedup_key"], unique=True, if_not_exists=True)
    db.utils["events"].create_index(["state", "lease_until_ms"], if_not_exists=True)
    db.utils["events"].create_index(["received_ms"], if_not_exists=True)
    db.utils["events"].create_index(["resource", "received_ms"], if_not_exists=True)
    db.utils["events"].create_index(["fingerprint"], if_not_exists=True)


_encoder = msgspec.json.Encoder()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def insert(db: Database, events: Sequence[ErrorEvent], raw: Any, endpoint: str) -> list[Receipt]:
    """Commit ``events`` (from one payload, whose redacted form is ``raw``) in one transaction.

    Returns one receipt per event, in order. An event whose ``dedup_key`` is already stored is
    not stored again: its receipt carries the first event's id and ``duplicate=True``.
    Raises :class:`~engine.errors.StorageError` if nothing could be committed.
    """
    return insert_batch(db, [(events, raw, endpoint)])[0]


def insert_batch(
    db: Database, payloads: Sequence[tuple[Sequence[ErrorEvent], Any, str]]
) -> list[list[Receipt]]:
    """Commit the events of several payloads (``(events, raw, endpoint)``) in ONE transaction.

    What :func:`insert` does for each payload, in order, with one commit for all of them (the
    receivers' group commit: one disk sync per batch instead of per request). A key seen
    earlier in the same batch answers duplicate with the first event's id. Raises
    :class:`~engine.errors.StorageError` if the transaction fails: then nothing is stored.
    """
    now = _now_ms()
    rows = [
        (
            [(event, new_id("evt")) for event in events],
            _encoder.encode(raw).decode(),
            endpoint,
        )
        for events, raw, endpoint in payloads
    ]
    out: list[list[Receipt]] = []
    with db.write() as conn:
        for events, raw_json, endpoint in rows:
            receipts: list[Receipt] = []
            for event, event_id in events:
                stored = msgspec.structs.replace(event, id=event_id)
                row = conn.execute(
                    _INSERT,
                    (
                        event_id, event.dedup_key, now, endpoint, event.source, event.kind,
                        event.status, event.resource, event.run_id, event.fingerprint,
                        _encoder.encode(stored).decode(), raw_json,
                    ),
                ).fetchone()
                receipts.append(Receipt(row["id"], row["duplicates"] > 0, row["status"]))
            out.append(receipts)
    return out


_INSERT = """
    INSERT INTO events (id, dedup_key, received_ms, endpoint, source, kind, status,
                        resource, run_id, fingerprint, event, raw)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (dedup_key) DO UPDATE SET duplicates = duplicates + 1
    RETURNING id, status, duplicates
"""


def existing_keys(db: Database, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` are dedup keys of stored events (look-ups on the unique index)."""
    found: set[str] = set()
    for lo in range(0, len(keys), 500):
        chunk = keys[lo:lo + 500]
        marks = ", ".join("?" * len(chunk))
        rows = db.query(f"SELECT dedup_key FROM events WHERE dedup_key IN ({marks})", chunk)
        found.update(row["dedup_key"] for row in rows)
    return found


def _decode_event(text: str | None) -> ErrorEvent | None:
    return msgspec.json.decode(text, type=ErrorEvent) if text else None


def _stored(row: Any) -> StoredEvent:
    event = _decode_event(row["event"])
    assert event is not None  # NOT NULL column
    return StoredEvent(
        event=event,
        enriched=_decode_event(row["enriched"]),
        raw=json.loads(row["raw"]) if row["raw"] else None,
        received_at=datetime.fromtimestamp(row["received_ms"] / 1000, UTC),
        endpoint=row["endpoint"] or "",
        state=row["state"],
        attempts=row["attempts"],
        duplicates=row["duplicates"],
        error=row["error"] or "",
    )


def get(db: Database, event_id: str) -> StoredEvent | None:
    """The stored event with this id, or None."""
    rows = db.query("SELECT * FROM events WHERE id = ?", (event_id,))
    return _stored(rows[0]) if rows else None


def list_events(
    db: Database,
    *,
    source: str | None = None,
    status: str | None = None,
    resource: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    before: str | None = None,
) -> list[StoredEvent]:
    """Newest first, filtered; ``before`` (an event id) pages to older events."""
    where, params = [], []
    for column, value in (("source", source), ("status", status), ("resource", resource)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("received_ms >= ?")
        params.append(int(since.timestamp() * 1000))
    if before is not None:
        where.append("id < ?")
        params.append(before)
    sql = "SELECT * FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [_stored(row) for row in db.query(sql, params)]


def claim(
    db: Database, *, limit: int, lease_ms: int, now_ms: int | None = None
) -> list[StoredEvent]:
    """Lease up to ``limit`` events to process: pending ones, or those whose lease ran out.

    A leased event is invisible to other claims until ``lease_ms`` passes; call :func:`finish`
    when done. An event whose worker crashed is therefore processed again after its lease.
    ``now_ms`` is the worker's clock (wall time by default), so that a demo that warps time
    also ages leases; every claimer of one database must use the same clock.
    """
    now = _now_ms() if now_ms is None else now_ms
    with db.write() as conn:
        rows = conn.execute(
            """
            UPDATE events SET state = 'processing', lease_until_ms = ?, attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM events
                WHERE state = 'pending' OR (state = 'processing' AND lease_until_ms < ?)
                ORDER BY id LIMIT ?
            )
            RETURNING *
            """,
            (now + lease_ms, now, limit),
        ).fetchall()
    return sorted((_stored(row) for row in rows), key=lambda s: s.event.id)


def save_enriched(db: Database, event: ErrorEvent) -> None:
    """Keep the enriched form of an event beside the form it was received in."""
    with db.write() as conn:
        conn.execute(
            "UPDATE events SET enriched = ?, fingerprint = ? WHERE id = ?",
            (_encoder.encode(event).decode(), event.fingerprint, event.id),
        )


def finish(db: Database, event_id: str, *, state: str = "done", error: str = "") -> None:
    """Mark a claimed event processed (``done``) or given up on (``failed``, with the reason)."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}; expected one of {STATES}")
    with db.write() as conn:
        conn.execute(
            "UPDATE events SET state = ?, error = ?, lease_until_ms = 0 WHERE id = ?",
            (state, error, event_id),
        )


def count_pending(db: Database) -> int:
    """How many events wait to be processed (the queue depth)."""
    rows = db.query("SELECT count(*) AS n FROM events WHERE state IN ('pending', 'processing')")
    return rows[0]["n"]
