"""The audit table: append-only (triggers refuse UPDATE and DELETE), hash-chained.

:func:`append` reads the head of the chain and writes the next record in one write
transaction holding the ``audit`` lock (engine/store/locks.py; SQLite's writer lock), so
concurrent writers cannot fork the chain. ``audit_head`` keeps the
seq and hash of the last record, so that deleting the tail is caught too; :func:`verify_chain`
walks the stored chain against it. A kind outside the log's vocabulary (engine/audit.py,
``AuditKind``) is refused before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from engine.audit import GENESIS, AuditRecord, VerifyResult, check_kind, record_hash, verify_records
from engine.store import locks
from engine.store.query import Where
from engine.text.redact import redact

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["append", "create_schema", "head", "iter_records", "list_records", "verify_chain"]


def create_schema(db: Database) -> None:
    """Create the audit table, its head row and the triggers that make it append-only."""
    db.utils["audit"].create(
        {
            "seq": int, "ts": str, "ts_ms": int, "incident_id": str, "event_id": str,
            "kind": str, "actor": str, "resource": str, "data": str, "prev_hash": str,
            "hash": str,
        },
        pk="seq",
        not_null={"ts", "kind", "data", "prev_hash", "hash"},
        if_not_exists=True,
    )
    db.utils["audit"].create_index(["incident_id", "seq"], if_not_exists=True)
    db.utils["audit"].create_index(["resource", "seq"], if_not_exists=True)
    db.utils["audit"].create_index(["kind", "seq"], if_not_exists=True)
    db.utils["audit_head"].create(
        {"id": int, "seq": int, "hash": str}, pk="id", if_not_exists=True
    )
    conn = db.utils.conn
    for op in ("UPDATE", "DELETE"):
        conn.execute(
            f"""CREATE TRIGGER IF NOT EXISTS audit_no_{op.lower()} BEFORE {op} ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"""
        )


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append(
    db: Database,
    kind: str,
    *,
    ts: datetime,
    data: Any = None,
    incident_id: str = "",
    event_id: str = "",
    actor: str = "engine",
    resource: str = "",
) -> AuditRecord:
    """Append one record (``data`` is redacted first) and return it as stored.

    Raises :class:`~engine.errors.UnknownAuditKind` for a kind the log does not have (nothing
    is written), :class:`~engine.errors.StorageError` if it cannot be written; the caller
    decides whether the step it records may go on (the worker does not act without its record).
    """
    check_kind(kind)
    body_data = redact(msgspec.to_builtins(data if data is not None else {}))
    if not isinstance(body_data, dict):
        body_data = {"value": body_data}
    if resource:
        body_data.setdefault("resource", resource)
    # Exactly what reading it back will give (tuples become lists, keys strings); msgspec
    # encodes sorted and compact, so the same bytes are also what is stored.
    stored = msgspec.json.encode(body_data, order="sorted")
    body_data = msgspec.json.decode(stored)
    with db.write() as conn:
        # One appender at a time across replicas, until the transaction ends: the head read
        # here is the one this record follows.
        locks.hold(db, "audit", conn=conn)
        row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        seq, prev = (row["seq"] + 1, row["hash"]) if row else (1, GENESIS)
        body = {
            "seq": seq, "ts": _ts(ts), "incident_id": incident_id, "event_id": event_id,
            "kind": kind, "actor": actor, "data": body_data, "prev_hash": prev,
        }
        digest = record_hash(body)
        conn.execute(
            """INSERT INTO audit (seq, ts, ts_ms, incident_id, event_id, kind, actor, resource,
                                  data, prev_hash, hash)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (seq, body["ts"], int(ts.timestamp() * 1000), incident_id, event_id, kind, actor,
             resource, stored.decode(), prev,
             digest),
        )
        conn.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (seq, digest),
        )
    return AuditRecord(hash=digest, **body)


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=row["seq"], ts=row["ts"], incident_id=row["incident_id"] or "",
        event_id=row["event_id"] or "", kind=row["kind"], actor=row["actor"] or "",
        data=json.loads(row["data"]), prev_hash=row["prev_hash"], hash=row["hash"],
    )


def iter_records(db: Database, page: int = 1000) -> Iterator[AuditRecord]:
    """Every record in ``seq`` order, read a page at a time."""
    last = -1
    while True:
        rows = db.query("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (last, page))
        if not rows:
            return
        for row in rows:
            yield _record(row)
        last = rows[-1]["seq"]


def head(db: Database) -> tuple[int, str] | None:
    """(seq, hash) of the last record the engine wrote, or None for an empty log."""
    rows = db.query("SELECT seq, hash FROM audit_head WHERE id = 1")
    return (rows[0]["seq"], rows[0]["hash"]) if rows else None


def list_records(db: Database, *, incident_id: str | None = None, event_id: str | None = None,
                 resource: str | None = None, kind: str | None = None,
                 since: datetime | None = None, limit: int = 100,
                 before: int | None = None) -> list[AuditRecord]:
    """Records in ``seq`` order, filtered; with ``limit``, the newest ``limit`` of them
    (older than seq ``before``, if given: the next page back)."""
    where = Where().equal(incident_id=incident_id, event_id=event_id, resource=resource,
                          kind=kind).at_least("ts_ms", _ms(since)).where("seq < ?", before)
    rows = db.query(f"SELECT * FROM audit{where.sql} ORDER BY seq DESC LIMIT ?",
                    [*where.params, limit])
    return [_record(row) for row in reversed(rows)]


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def verify_chain(db: Database) -> VerifyResult:
    """Verify the whole stored audit log against its head; see
    :func:`engine.audit.verify_records`."""
    return verify_records(iter_records(db), head(db))
