"""The audit log: append-only in the engine, and every edit behind its back is named."""

from __future__ import annotations

import ast
import sqlite3
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from engine.actions.context import ActionContext
from engine.actions.registry import action_table
from engine.audit import GENESIS, KINDS, record_hash
from engine.clock import FakeClock
from engine.cloud.clients import Clients
from engine.config import CloudSettings
from engine.deps import Deps
from engine.errors import StorageError, UnknownAuditKind
from engine.rules.active import ActivePlaybooks
from engine.store import audit as audit_store
from engine.store.db import Database, SqliteDatabase
from engine.store.postgres import sql_for_psycopg
from tests.fixtures.common import ROOT

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


def _fill(db: Database, n: int = 5) -> None:
    for i in range(n):
        audit_store.append(
            db, "guard", ts=T0, incident_id="inc_1", event_id=f"evt_{i}",
            data={"name": "budget", "decision": "allow", "n": i}, resource="daily_load",
        )
    audit_store.link(db)  # PostgreSQL: as the leader's chainer does (SQLite linked inline)


def _raw(db: Database) -> Any:
    """A second connection, as another tool would open the database, with the triggers
    dropped (its ``execute`` takes ``?`` marks on either backend)."""
    if isinstance(db, SqliteDatabase):
        conn = sqlite3.connect(db.path, isolation_level=None)
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        return conn
    raw = psycopg.connect(db.url, autocommit=True)
    raw.execute("ALTER TABLE audit DISABLE TRIGGER USER")
    return _Tool(raw)


class _Tool:
    """A psycopg connection that runs the store's ``?`` SQL, closed at the end of a block."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.raw.execute(sql_for_psycopg(sql), params)

    def __enter__(self) -> _Tool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def test_records_chain_and_verify(db: Database) -> None:
    _fill(db)
    records = list(audit_store.iter_records(db))
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS
    assert records[1].prev_hash == records[0].hash
    assert records[0].hash == record_hash(records[0].body())
    assert records[0].data == {"name": "budget", "decision": "allow", "n": 0,
                               "resource": "daily_load"}
    assert records[0].ts == "2025-03-14T09:00:00.000Z"
    result = audit_store.verify_chain(db)
    assert (result.ok, result.checked, result.bad_seq) == (True, 5, None)


def test_data_is_redacted_before_hashing(db: Database) -> None:
    record = audit_store.append(
        db, "action_planned", ts=T0,
        data={"params": {"url": "https://x.example/hook?sig=abcdef123", "token": "s3cret"}},
    )
    assert record.data["params"] == {"url": "https://x.example/hook?sig=***", "token": "***"}
    assert audit_store.verify_chain(db).ok


def test_triggers_refuse_update_and_delete(db: Database) -> None:
    _fill(db, 1)
    with pytest.raises(StorageError, match="the audit log is append-only"), db.write() as conn:
        conn.execute("UPDATE audit SET kind = 'x'")
    with pytest.raises(StorageError, match="the audit log is append-only"), db.write() as conn:
        conn.execute("DELETE FROM audit")


@pytest.mark.parametrize(
    ("tamper", "checked", "bad_seq", "reason"),
    [
        ("""UPDATE audit SET data = '{"decision":"deny"}' WHERE seq = 3""", 2, 3,
         "record 3: hash does not match its content: it was edited"),
        # a delete names the record after the gap
        ("DELETE FROM audit WHERE seq = 2", 1, 3,
         "record 3: expected seq 2: a record was deleted or inserted"),
        ("DELETE FROM audit WHERE seq = 5", 4, 5,
         "record 5: missing: the log ends at record 4"),
    ],
    ids=["edit", "delete", "delete-the-tail"],
)
def test_tampering_names_the_record(
    db: Database, tamper: str, checked: int, bad_seq: int, reason: str
) -> None:
    _fill(db)
    with _raw(db) as conn:
        conn.execute(tamper)
    result = audit_store.verify_chain(db)
    assert (result.ok, result.checked, result.bad_seq) == (False, checked, bad_seq)
    assert result.reason == reason


def test_an_insert_with_a_recomputed_hash_breaks_the_next_link(db: Database) -> None:
    _fill(db)
    records = list(audit_store.iter_records(db))
    with _raw(db) as conn:
        # Renumber 4..5 to 5..6 (seq and chain position) and slip a forged, self-consistent
        # record in as 4.
        conn.execute("UPDATE audit SET seq = -seq, chain = -chain WHERE seq >= 4")
        conn.execute("UPDATE audit SET seq = 1 - seq, chain = 1 - chain WHERE seq < 0")
        forged = records[3].body() | {"data": {"decision": "allow", "forged": True}}
        conn.execute(
            "INSERT INTO audit (seq, ts, ts_ms, incident_id, event_id, kind, actor, resource, "
            "data, prev_hash, hash, chain) "
            "VALUES (4, ?, 0, 'inc_1', 'evt_3', 'guard', 'engine', '', ?, ?, ?, 4)",
            (forged["ts"], '{"decision":"allow","forged":true}', forged["prev_hash"],
             record_hash(forged)),
        )
    result = audit_store.verify_chain(db)
    assert (result.ok, result.checked, result.bad_seq) == (False, 4, 5)
    assert result.reason == "record 5: prev_hash does not match the hash of record 4"


def test_list_records_filters(db: Database) -> None:
    _fill(db, 3)
    audit_store.append(db, "pause", ts=T0, actor="alice")
    assert [r.kind for r in audit_store.list_records(db, kind="pause")] == ["pause"]
    assert [r.seq for r in audit_store.list_records(db, resource="daily_load")] == [1, 2, 3]
    assert [r.seq for r in audit_store.list_records(db, incident_id="inc_1", limit=2)] == [2, 3]
    assert audit_store.list_records(db, since=datetime(2026, 1, 1, tzinfo=UTC)) == []


def test_an_unknown_kind_is_refused_and_nothing_is_written(db: Database) -> None:
    with pytest.raises(UnknownAuditKind, match=r"^unknown audit kind 'rerun_started': add it to "
                       r"engine\.audit\.AuditKind \(with a comment\) before writing it$"):
        audit_store.append(db, "rerun_started", ts=T0, incident_id="inc_1")
    assert audit_store.head(db) is None
    assert audit_store.list_records(db) == []


def _written_kinds() -> dict[str, str]:
    """Every kind the product writes, found in its code: the first argument of
    ``deps.audit(...)`` and the second of ``audit_store.append(db, ...)``, each a string
    literal. A kind that is not a literal is reported as such (so that this walk cannot miss
    one), except a parameter named ``kind`` handed on (typed ``AuditKind``: Deps.audit)."""
    found: dict[str, str] = {}
    sources = (p for top in ("engine", "receivers", "cli") for p in (ROOT / top).rglob("*.py"))
    for path in sorted(sources):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = ast.unparse(node.func.value)
            if node.func.attr == "audit" and owner.endswith("deps") and node.args:
                arg = node.args[0]
            elif node.func.attr == "append" and owner in ("audit_store", "audit") \
                    and len(node.args) >= 2:
                arg = node.args[1]
            else:
                continue
            if isinstance(arg, ast.Name) and arg.id == "kind":
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            kind = arg.value if isinstance(arg, ast.Constant) else f"<not a literal at {where}>"
            found.setdefault(str(kind), where)
    return found


def test_the_vocabulary_is_every_kind_the_code_writes() -> None:
    written = _written_kinds()
    assert sorted(set(written) - set(KINDS)) == []
    assert sorted(set(KINDS) - set(written)) == []
    assert {"repeat", "poll", "notification", "playbooks_reload"} <= set(KINDS)


def test_deps_audit_refuses_an_unknown_kind(db: Database) -> None:
    clients = Clients(CloudSettings())
    try:
        deps = Deps(db=db, playbooks=ActivePlaybooks([], action_table()), actions={},
                    ctx=ActionContext(clients=clients), live=False, clock=FakeClock(T0))
        deps.audit("guard", {"name": "pause", "decision": "allow"}, incident_id="inc_1")
        with pytest.raises(UnknownAuditKind, match=r"^unknown audit kind 'remediated'"):
            deps.audit("remediated", {"ok": True}, incident_id="inc_1")  # type: ignore[arg-type]
    finally:
        clients.close()
    assert [r.kind for r in audit_store.list_records(db)] == ["guard"]
