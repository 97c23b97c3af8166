"""The audit table: append-only (triggers refuse DELETE, and every UPDATE but the link),
hash-chained.

Each record has a ``seq``, its name (listings, pages, timelines, cursors), given when it is
written, and once linked a ``chain`` position, with ``prev_hash`` and ``hash``. ``audit_head``
keeps the seq, hash and position of the last linked record, so that deleting the tail is
caught too; :func:`verify_chain` walks the linked records in position order against it.
A kind outside the log's vocabulary (engine/audit.py, ``AuditKind``) is refused before
anything is written.

**SQLite** (one writer per file) links inline: :func:`append` reads the head and writes the
next record, linked, in one ``BEGIN IMMEDIATE`` transaction; its position is its seq.

**PostgreSQL** (several replicas writing side by side) splits the two. :func:`append` only
inserts the record, unlinked (``seq`` from a sequence; ``chain``, ``prev_hash`` and ``hash``
NULL): no head to read, nothing to wait for. The leader's chainer (:func:`link`, every half
second, engine/runtime/chainer.py) links what is committed, in bounded batches, in one
transaction that first locks the leader lease's row under its epoch (``leases.fence_sql``: a
deposed leader links nothing, and no new leader is elected until the batch commits) and then
the head row (``SELECT ... FOR UPDATE``: two chainers never fork the chain). Ordering: the
chain is the order in which records were *linked*, not their seq. A sequence has gaps (a
rolled-back write) and a lower seq may commit after a higher one (transactions end in any
order); the chainer never walks seq as a cursor but takes every committed unlinked record
(``hash IS NULL``, a partial index), lowest seq first, and gives each the next position. A
record that commits late is simply linked in a later batch, after records with higher seqs;
none is skipped and a gap in seq is no gap in the chain, whose positions run 1, 2, 3, ...
without holes. The one UPDATE the table allows (migration 0007's trigger) sets the chain
columns of an unlinked record once and changes nothing else.

Listings read every record, linked or not, in seq order, so a record shows at once;
:func:`verify_chain` checks the linked chain up to the head it read first and reports the
unlinked ones as pending (how many, the age of the oldest), which :func:`lag` also gives the
metrics (``remediator_audit_chain_lag_entries`` / ``_seconds``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from engine.audit import (
    GENESIS,
    AuditRecord,
    VerifyResult,
    check_kind,
    record_hash,
    verify_links,
)
from engine.errors import StorageError
from engine.store.leases import LEADER, fence_sql
from engine.store.query import Where
from engine.store.replicas import now_sql
from engine.text.redact import redact

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["LINK_BATCH", "Lag", "append", "create_schema", "head", "iter_records", "lag",
           "link", "list_records", "verify_chain"]

LINK_BATCH = 500
"""Records linked per transaction by :func:`link` (the head row is held meanwhile)."""


class Lag(msgspec.Struct, frozen=True):
    """Records written but not linked yet, and the age of the oldest on the database's clock."""

    entries: int
    oldest_s: float


def create_schema(db: Database) -> None:
    """Create the audit table, its head row and the triggers that make it append-only (a file
    from before ``chain`` gets the column, each record's position being its seq)."""
    conn = db.utils.conn
    table = db.utils["audit"]
    table.create(
        {
            "seq": int, "ts": str, "ts_ms": int, "incident_id": str, "event_id": str,
            "kind": str, "actor": str, "resource": str, "data": str, "prev_hash": str,
            "hash": str, "chain": int, "added_ms": int,
        },
        pk="seq",
        not_null={"ts", "kind", "data", "prev_hash", "hash"},
        if_not_exists=True,
    )
    if "chain" not in table.columns_dict:
        table.add_column("chain", int)
        table.add_column("added_ms", int)
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
        conn.execute("UPDATE audit SET chain = seq")
    table.create_index(["incident_id", "seq"], if_not_exists=True)
    table.create_index(["resource", "seq"], if_not_exists=True)
    table.create_index(["kind", "seq"], if_not_exists=True)
    table.create_index(["chain"], unique=True, if_not_exists=True)
    conn.execute("CREATE INDEX IF NOT EXISTS idx_audit_unlinked ON audit (seq) "
                 "WHERE hash IS NULL")
    heads = db.utils["audit_head"]
    heads.create({"id": int, "seq": int, "hash": str, "chain": int}, pk="id",
                 if_not_exists=True)
    if "chain" not in heads.columns_dict:
        heads.add_column("chain", int)
        conn.execute("UPDATE audit_head SET chain = seq")
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
    """Append one record (``data`` is redacted first) and return it as stored (on PostgreSQL
    unlinked: ``prev_hash`` and ``hash`` empty until the leader links it).

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
    ts_text, ts_ms = _ts(ts), int(ts.timestamp() * 1000)
    fields = (ts_text, ts_ms, incident_id, event_id, kind, actor, resource, stored.decode())
    if db.dialect.name == "postgresql":
        # Unlinked: no head to read, so writers run side by side; the leader links it.
        with db.write() as conn:
            seq = conn.execute(
                "INSERT INTO audit (ts, ts_ms, incident_id, event_id, kind, actor, resource, "
                "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq", fields).fetchone()["seq"]
        return AuditRecord(seq=seq, ts=ts_text, incident_id=incident_id, event_id=event_id,
                           kind=kind, actor=actor, data=body_data, prev_hash="", hash="")
    with db.write() as conn:
        row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        seq, prev = (row["seq"] + 1, row["hash"]) if row else (1, GENESIS)
        body = {
            "seq": seq, "ts": ts_text, "incident_id": incident_id, "event_id": event_id,
            "kind": kind, "actor": actor, "data": body_data, "prev_hash": prev,
        }
        digest = record_hash(body)
        conn.execute(
            f"""INSERT INTO audit (seq, ts, ts_ms, incident_id, event_id, kind, actor, resource,
                                  data, prev_hash, hash, chain, added_ms)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {now_sql(db)})""",
            (seq, *fields, prev, digest, seq),
        )
        _set_head(conn, seq, digest, seq)
    return AuditRecord(hash=digest, **body)


def _set_head(conn: Any, seq: int, digest: str, position: int) -> None:
    conn.execute(
        "INSERT INTO audit_head (id, seq, hash, chain) VALUES (1, ?, ?, ?) ON CONFLICT (id) "
        "DO UPDATE SET seq = excluded.seq, hash = excluded.hash, chain = excluded.chain",
        (seq, digest, position),
    )


def link(db: Database, *, fence: tuple[str, int] | None = None,
         limit: int = LINK_BATCH) -> int | None:
    """Link up to ``limit`` committed unlinked records, lowest seq first, after the head, in
    one transaction; returns how many (0: none waited). ``fence`` (owner, epoch): only while
    that owner holds the leader lease under that epoch; None (nothing written) if it does not.
    Without ``fence`` (tests, a single process) the head row alone keeps it one chain.
    Raises StorageError if the database fails, or if a record changed under it."""
    if not db.query("SELECT 1 FROM audit WHERE hash IS NULL LIMIT 1"):
        return 0  # nothing waits: no transaction, no lock (an idle leader writes nothing)
    with db.write() as conn:
        if fence is not None and conn.execute(fence_sql(db), (LEADER, *fence)).fetchone() is None:
            return None
        # The head row exists before it is locked (a missing row locks nothing).
        conn.execute("INSERT INTO audit_head (id, seq, hash, chain) VALUES (1, 0, ?, 0) "
                     "ON CONFLICT (id) DO NOTHING", (GENESIS,))
        lock = " FOR UPDATE" if db.dialect.name == "postgresql" else ""
        top = conn.execute(f"SELECT hash, chain FROM audit_head WHERE id = 1{lock}").fetchone()
        rows = conn.execute("SELECT * FROM audit WHERE hash IS NULL ORDER BY seq LIMIT ?",
                            (limit,)).fetchall()
        if not rows:
            return 0
        prev, position = top["hash"], top["chain"]
        links: list[tuple[int, int, str, str]] = []
        for row in rows:
            position += 1
            record = msgspec.structs.replace(_record(row), prev_hash=prev)
            digest = record_hash(record.body())
            links.append((record.seq, position, prev, digest))
            prev = digest
        values = ", ".join("(CAST(? AS BIGINT), CAST(? AS BIGINT), ?, ?)" for _ in links)
        changed = conn.execute(
            f"UPDATE audit SET chain = v.chain, prev_hash = v.prev_hash, hash = v.hash "
            f"FROM (VALUES {values}) AS v (seq, chain, prev_hash, hash) "
            f"WHERE audit.seq = v.seq AND audit.hash IS NULL",
            [value for one in links for value in one]).rowcount
        if changed != len(links):
            raise StorageError(f"audit link failed: {len(links) - changed} of {len(links)} "
                               "records changed while they were linked")
        _set_head(conn, links[-1][0], prev, position)
    return len(links)


def lag(db: Database) -> Lag:
    """How many records wait to be linked, and how long the oldest has waited."""
    row = db.query(f"SELECT count(*) AS n, min(added_ms) AS oldest, {now_sql(db)} AS now "
                   "FROM audit WHERE hash IS NULL")[0]
    if not row["n"]:
        return Lag(0, 0.0)
    return Lag(int(row["n"]), max(0.0, (row["now"] - (row["oldest"] or row["now"])) / 1000))


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=row["seq"], ts=row["ts"], incident_id=row["incident_id"] or "",
        event_id=row["event_id"] or "", kind=row["kind"], actor=row["actor"] or "",
        data=json.loads(row["data"]), prev_hash=row["prev_hash"] or "", hash=row["hash"] or "",
    )


def _links(db: Database, upto: int, page: int = 1000) -> Iterator[tuple[int, AuditRecord]]:
    """(position, record) of the linked records up to position ``upto``, in position order,
    read a page at a time."""
    last = 0
    while True:
        rows = db.query("SELECT * FROM audit WHERE chain > ? AND chain <= ? ORDER BY chain "
                        "LIMIT ?", (last, upto, page))
        if not rows:
            return
        for row in rows:
            yield row["chain"], _record(row)
        last = rows[-1]["chain"]


def iter_records(db: Database, page: int = 1000) -> Iterator[AuditRecord]:
    """Every linked record in chain order (on SQLite: every record, in ``seq`` order), read a
    page at a time."""
    found = _head(db)
    for _, record in _links(db, found[2] if found else 0, page):
        yield record


def _head(db: Database) -> tuple[int, str, int] | None:
    """(seq, hash, position) of the last record linked; None before the first (the head row
    of an empty chain, position 0, is the chainer's to lock)."""
    rows = db.query("SELECT seq, hash, chain FROM audit_head WHERE id = 1")
    if not rows or not rows[0]["chain"]:
        return None
    return rows[0]["seq"], rows[0]["hash"], rows[0]["chain"]


def head(db: Database) -> tuple[int, str] | None:
    """(seq, hash) of the last record linked, or None for an empty chain."""
    found = _head(db)
    return found[:2] if found else None


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
    """Verify the linked audit log against its head (read first: what is linked meanwhile is
    left for the next walk), and count what waits to be linked; see
    :func:`engine.audit.verify_links`."""
    found = _head(db)
    result = verify_links(_links(db, found[2] if found else 0), found[:2] if found else None)
    behind = lag(db)
    if not behind.entries:
        return result
    return msgspec.structs.replace(result, pending=behind.entries,
                                   pending_age_s=round(behind.oldest_s, 3))
