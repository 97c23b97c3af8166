"""The inbox and idempotency ledger: every received event, exactly once, with its processing state.

An event is committed under its UNIQUE ``dedup_key`` before the receiver answers 202; a second
delivery of the same key only counts a duplicate. The worker claims pending events with a
lease, so that an event whose worker died is picked up again once the lease runs out. Each
claim counts (``attempts``, in the claim's own statement); an event whose stages never finish
is ``parked`` (engine/runtime/deadletter.py) instead of being claimed forever, until an admin
replays it.

States: ``pending`` (waits for a claim), ``processing`` (claimed, leased until
``lease_until_ms``), ``done``, ``parked`` (set aside, ``reason`` says why).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from engine.events import ErrorEvent
from engine.store import locks
from engine.store.ids import new_id
from engine.store.query import Where
from engine.store.replicas import live_sql
from engine.targets import target_of

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = [
    "WAKE_CHANNEL",
    "Receipt",
    "StoredEvent",
    "claim",
    "count_parked",
    "count_pending",
    "create_schema",
    "exhausted",
    "existing_keys",
    "finish",
    "get",
    "insert",
    "insert_batch",
    "list_events",
    "note_error",
    "park",
    "renew",
    "replay",
    "save_enriched",
]

STATES = ("pending", "processing", "done", "parked")

WAKE_CHANNEL = "remediator_inbox"
"""PostgreSQL's NOTIFY channel of new events (every replica's worker listens on it)."""


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
    """How many times the worker claimed it (since it was last replayed)."""
    duplicates: int
    error: str
    """The last error its stages raised, if any."""
    reason: str = ""
    """Why it is parked, or who replayed it."""

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
            "reason": str,
        },
        pk="id",
        not_null={"dedup_key", "received_ms", "source", "kind", "status", "event", "state"},
        defaults={"state": "pending", "attempts": 0, "duplicates": 0, "lease_until_ms": 0,
                  "error": "", "reason": ""},
        if_not_exists=True,
    )
    _add_reason_column(db)
    if "lane" not in db.utils["events"].columns_dict:
        db.utils["events"].add_column("lane", str, not_null_default="")
    db.utils["events"].create_index(["dedup_key"], unique=True, if_not_exists=True)
    db.utils["events"].create_index(["state", "lease_until_ms"], if_not_exists=True)
    db.utils["events"].create_index(["received_ms"], if_not_exists=True)
    db.utils["events"].create_index(["resource", "received_ms"], if_not_exists=True)
    db.utils["events"].create_index(["fingerprint"], if_not_exists=True)




def _add_reason_column(db: Database) -> None:
    """Add ``reason`` to a database made before parking; the events an older version marked
    ``failed`` (a stage raised an engine error: final then) become parked, so that they can be
    replayed."""
    table = db.utils["events"]
    if "reason" in table.columns_dict:
        return
    table.add_column("reason", str, not_null_default="")
    db.utils.conn.execute(
        "UPDATE events SET state = 'parked', lease_until_ms = 0, "
        "reason = 'its stages failed (marked failed before parking existed): ' || error "
        "WHERE state = 'failed'")


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
    params = [
        _columns((event_id, event.dedup_key, now, endpoint, event.source, event.kind,
                  event.status, event.resource, event.run_id, event.fingerprint, event_json,
                  raw_json, target_of(event)), event_json)
        for events, raw_json, endpoint in rows for event, event_id in events
        for event_json in (_encoder.encode(msgspec.structs.replace(event, id=event_id))
                           .decode(),)
    ]
    # The unique dedup_key settles two replicas storing one delivery at once.
    if not params:  # payloads whose parser found no event (ignored): nothing to commit
        stored = []
    elif db.dialect.name == "postgresql":
        stored = _insert_rows(db, now, params)
    else:
        with db.write() as conn:
            stored = [(row["id"], row["duplicates"] > 0, row["status"])
                      for row in (conn.execute(_INSERT, p).fetchone() for p in params)]
    found = iter(stored)
    return [[Receipt(*next(found)) for _ in events] for events, _, _ in rows]


def _columns(values: tuple[Any, ...], event_json: str) -> tuple[Any, ...]:
    """An event's row, each NUL character of its text columns as U+FFFD: PostgreSQL's text
    holds none (the insert, and with it every payload of the group commit, would fail). The
    event's JSON (and the raw payload's) keeps them, escaped, so the engine sees the event as
    sent (a name with a NUL is still refused as one)."""
    if "\\u0000" not in event_json:  # rare: the replacement only then
        return values
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in values)


_INSERT = """
    INSERT INTO events (id, dedup_key, received_ms, endpoint, source, kind, status,
                        resource, run_id, fingerprint, event, raw, lane)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (dedup_key) DO UPDATE SET duplicates = events.duplicates + 1
    RETURNING id, status, duplicates
"""


def _insert_rows(db: Database, now: int, params: list[tuple[Any, ...]]
                 ) -> list[tuple[str, bool, str]]:
    """PostgreSQL: :data:`_INSERT` of each row of ``params`` (without its ``now``), as ONE
    statement over arrays (one plan and one result for the batch, the values sent in binary),
    committed with the NOTIFY that wakes every replica's idle worker, in one round trip.

    ON CONFLICT cannot update a row twice in one statement, so a key repeated in the batch is
    sent once with its repeats counted as duplicates; each row's ``(id, duplicate, status)`` is
    what :data:`_INSERT` row by row would answer (a repeat: the first's id, a duplicate).
    """
    first: dict[str, int] = {}  # dedup key -> its index in unique
    unique: list[tuple[Any, ...]] = []
    repeats: list[int] = []
    for row in params:
        at = first.setdefault(row[1], len(unique))
        if at == len(unique):
            unique.append(row[:2] + row[3:])
            repeats.append(0)
        else:
            repeats[at] += 1
    columns = [list(column) for column in zip(*unique, strict=True)]
    stored = {row[0]: row for row in db.insert_now(  # type: ignore[attr-defined]
        _INSERT_ROWS, [now, *columns, repeats], notify=WAKE_CHANNEL)}
    answers, seen = [], set()
    for row in params:
        key, id_, status, duplicates = stored[row[1]]
        # A new row holds just its repeats; a stored one was counted once more.
        answers.append((id_, key in seen or duplicates > repeats[first[key]], status))
        seen.add(key)
    return answers


_INSERT_ROWS = """
    INSERT INTO events (id, dedup_key, received_ms, endpoint, source, kind, status, resource,
                        run_id, fingerprint, event, raw, lane, duplicates)
    SELECT id, dedup_key, %b, endpoint, source, kind, status, resource, run_id, fingerprint,
           event, raw, lane, repeats
    FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                %b::int[])
         WITH ORDINALITY AS batch (id, dedup_key, endpoint, source, kind, status, resource,
                                   run_id, fingerprint, event, raw, lane, repeats, n)
    ORDER BY n
    ON CONFLICT (dedup_key) DO UPDATE
        SET duplicates = events.duplicates + 1 + excluded.duplicates
    RETURNING dedup_key, id, status, duplicates
"""
"""PostgreSQL's :data:`_INSERT` of a batch, in psycopg's marks: the time, then a column each
(``ORDER BY n``: stored, hence claimed, in the order given)."""


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
        reason=row["reason"] or "",
    )


def get(db: Database, event_id: str) -> StoredEvent | None:
    """The stored event with this id, or None."""
    rows = db.query("SELECT * FROM events WHERE id = ?", (event_id,))
    return _stored(rows[0]) if rows else None


def list_events(db: Database, *, source: str | None = None, status: str | None = None,
                resource: str | None = None, state: str | None = None,
                since: datetime | None = None, limit: int = 50,
                before: str | None = None) -> list[StoredEvent]:
    """Newest first, filtered; ``before`` (an event id) pages to older events."""
    where = (Where().equal(source=source, status=status, resource=resource, state=state)
             .at_least("received_ms", None if since is None else int(since.timestamp() * 1000))
             .where("id < ?", before))
    rows = db.query(f"SELECT * FROM events{where.sql} ORDER BY id DESC LIMIT ?",
                    [*where.params, limit])
    return [_stored(row) for row in rows]


def _reclaimable(db: Database) -> str:
    """A ``processing`` event whose lease ran out may be claimed again by its own owner (a
    stalled stage) or once its owner's heartbeat expired (engine/store/replicas.py); never
    while another replica that claimed it is alive. One ``?``: the claimer."""
    return f"(owner = ? OR NOT {live_sql(db, 'events.owner')})"


def claim(
    db: Database, *, limit: int, lease_ms: int, now_ms: int | None = None,
    max_claims: int | None = None, owner: str = "",
) -> list[StoredEvent]:
    """Lease up to ``limit`` events to process: pending ones, or those whose lease ran out.

    On PostgreSQL at most one event per lane (its target, kept at intake) is in processing,
    across every replica: a claim takes the first claimable event of each lane whose lane has
    none in processing (on SQLite, one process, the worker's lanes keep the order).

    A leased event is invisible to other claims until ``lease_ms`` passes; call :func:`finish`
    when done. An event whose worker crashed is therefore processed again after its lease.
    The claim counts in the same statement (``attempts``); with ``max_claims``, an event
    claimed that many times already is not claimed again (:func:`exhausted` finds it, to be
    parked; a pending event was not claimed since it was stored or replayed). ``now_ms`` is
    the worker's clock (wall time by default), so that a demo that warps time also ages
    leases; every claimer of one database must use the same clock. ``owner`` (the claimer's
    replica) is kept with each event claimed.
    """
    now = _now_ms() if now_ms is None else now_ms
    cap = "" if max_claims is None else "AND attempts < ?"
    claimable = f"""(state = 'pending' OR (state = 'processing' AND lease_until_ms < ? {cap}
                                            AND {_reclaimable(db)}))"""
    params = (now, *(() if max_claims is None else (max_claims,)), owner)
    with db.write() as conn:
        if db.dialect.name == "postgresql":
            locks.hold(db, "claims", conn=conn)  # one claim at a time (engine/store/locks.py)
            rows = conn.execute(_CLAIM_BY_LANE.format(claimable=claimable),
                                (*params, limit * 4, now + lease_ms, owner, limit)).fetchall()
        else:
            rows = conn.execute(
                f"""
                UPDATE events SET state = 'processing', lease_until_ms = ?,
                                  attempts = attempts + 1, owner = ?
                WHERE id IN (SELECT id FROM events WHERE {claimable} ORDER BY id LIMIT ?)
                RETURNING *
                """,
                (now + lease_ms, owner, *params, limit),
            ).fetchall()
    return sorted((_stored(row) for row in rows), key=lambda s: s.event.id)


_CLAIM_BY_LANE = """
    WITH candidates AS (
        SELECT id, lane, seq FROM events
        WHERE {claimable}
          AND NOT EXISTS (SELECT 1 FROM events p WHERE p.lane = events.lane
                          AND events.lane <> '' AND p.state = 'processing'
                          AND p.id <> events.id)
        ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED
    ), firsts AS (
        SELECT DISTINCT ON (coalesce(nullif(lane, ''), id)) id, seq FROM candidates
        ORDER BY coalesce(nullif(lane, ''), id), seq
    )
    UPDATE events SET state = 'processing', lease_until_ms = ?, attempts = attempts + 1,
                      owner = ?
    WHERE id IN (SELECT id FROM firsts ORDER BY seq LIMIT ?)
    RETURNING *
"""
"""PostgreSQL's claim, for several replicas: candidates in the order they were stored (ids of
one millisecond do not sort by arrival) that no other transaction
holds (SKIP LOCKED) and whose lane has no event in processing, then the first of each lane.
The unique index ``events_one_per_lane`` (migration 0003) makes the rule the database's own."""


def exhausted(db: Database, *, max_claims: int, now_ms: int,
              owner: str = "") -> list[StoredEvent]:
    """The events whose lease ran out after ``max_claims`` claims: each claim crashed or
    stalled before it finished, so the next one would too (another live replica's are its
    own to park)."""
    rows = db.query(
        f"""SELECT * FROM events WHERE state = 'processing' AND lease_until_ms < ?
               AND attempts >= ? AND {_reclaimable(db)} ORDER BY id""",
        (now_ms, max_claims, owner))
    return [_stored(row) for row in rows]


def park(db: Database, event_id: str, reason: str, *, error: str | None = None) -> bool:
    """Set the event aside (``parked``, with ``reason``, and ``error`` if given) unless it is
    done or parked already; returns whether it was parked. Nothing claims a parked event
    until :func:`replay`."""
    with db.write() as conn:
        row = conn.execute(
            """UPDATE events SET state = 'parked', reason = ?, error = coalesce(?, error),
                                 lease_until_ms = 0
               WHERE id = ? AND state IN ('pending', 'processing') RETURNING id""",
            (reason, error, event_id)).fetchone()
    return row is not None


def replay(db: Database, event_id: str, reason: str) -> StoredEvent | None:
    """Put a parked event back to ``pending`` with its claim count and error cleared and
    ``reason`` (who replayed it) kept; returns it, or None if it is not parked (or unknown)."""
    with db.write() as conn:
        row = conn.execute(
            """UPDATE events SET state = 'pending', attempts = 0, lease_until_ms = 0,
                                 error = '', reason = ?
               WHERE id = ? AND state = 'parked' RETURNING *""",
            (reason, event_id)).fetchone()
    return _stored(row) if row is not None else None


def renew(db: Database, event_ids: Sequence[str], *, lease_until_ms: int) -> None:
    """Extend the leases of claimed events that wait for a thread (they are not stalled)."""
    with db.write() as conn:
        for lo in range(0, len(event_ids), 500):
            chunk = event_ids[lo:lo + 500]
            conn.execute(
                f"""UPDATE events SET lease_until_ms = ? WHERE state = 'processing'
                    AND id IN ({", ".join("?" * len(chunk))})""", (lease_until_ms, *chunk))


def note_error(db: Database, event_id: str, error: str) -> None:
    """Keep the error of a claim that failed and will be retried when its lease runs out
    (the reason an event parked later gives)."""
    with db.write() as conn:
        conn.execute("UPDATE events SET error = ? WHERE id = ? AND state = 'processing'",
                     (error, event_id))


def save_enriched(db: Database, event: ErrorEvent) -> None:
    """Keep the enriched form of an event beside the form it was received in."""
    with db.write() as conn:
        conn.execute(
            "UPDATE events SET enriched = ?, fingerprint = ? WHERE id = ?",
            (_encoder.encode(event).decode(), event.fingerprint, event.id),
        )


def finish(db: Database, event_id: str) -> None:
    """Mark a claimed event processed (``done``)."""
    with db.write() as conn:
        conn.execute(
            "UPDATE events SET state = 'done', error = '', lease_until_ms = 0 WHERE id = ?",
            (event_id,),
        )


def count_pending(db: Database) -> int:
    """How many events wait to be processed (the queue depth)."""
    rows = db.query("SELECT count(*) AS n FROM events WHERE state IN ('pending', 'processing')")
    return rows[0]["n"]


def count_parked(db: Database) -> int:
    """How many events are parked (waiting for an admin)."""
    return db.query("SELECT count(*) AS n FROM events WHERE state = 'parked'")[0]["n"]
