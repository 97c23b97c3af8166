"""The audit chain under concurrent writers (issue 17, item 5): on PostgreSQL writers append
unlinked records without the writer lock, the leader links them in the order they became
visible, and ``audit verify`` checks the linked chain and reports the rest as pending."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engine.audit import GENESIS, record_hash
from engine.clock import FakeClock
from engine.config import Settings
from engine.errors import StorageError
from engine.runtime import chainer
from engine.runtime.metrics import Metrics
from engine.runtime.service import Service
from engine.store import audit as audit_store
from engine.store import leases
from engine.store import metrics as metrics_store
from engine.store.db import Database
from engine.store.migrate import available
from tests.fixtures.postgres import PgServer

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


def _append(db: Database, n: int, **ids: Any) -> int:
    return audit_store.append(db, "guard", ts=T0, data={"n": n}, **ids).seq


def _positions(db: Database) -> dict[int, int]:
    """seq -> chain position of every linked record."""
    return {r["seq"]: r["chain"] for r in db.query(
        "SELECT seq, chain FROM audit WHERE chain IS NOT NULL")}


def _gauges(db: Database) -> dict[str, float]:
    text = Metrics(lambda: db).render().decode()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith("remediator_audit_chain_lag_")}


@pytest.fixture
def pg(pg_url: str) -> Any:
    db = Database(pg_url)
    yield db
    db.close()


def test_an_append_does_not_read_the_head(pg: Database) -> None:
    with psycopg.connect(pg.url) as other:  # a transaction that keeps everyone off the head
        other.execute("LOCK TABLE audit_head IN ACCESS EXCLUSIVE MODE")
        seq = _append(pg, 1)
    [record] = audit_store.list_records(pg)  # listed at once, not linked yet
    assert (record.seq, record.prev_hash, record.hash) == (seq, "", "")
    assert audit_store.head(pg) is None
    result = audit_store.verify_chain(pg)
    assert (result.ok, result.checked, result.pending) == (True, 0, 1)
    assert audit_store.link(pg) == 1
    result = audit_store.verify_chain(pg)
    assert (result.ok, result.checked, result.pending) == (True, 1, 0)


def test_many_writers_side_by_side_and_the_chainer_links_every_record(pg_url: str) -> None:
    writers, each = 6, 40
    handles = [Database(pg_url, pool_max=2) for _ in range(writers)]
    chainers = [Database(pg_url, pool_max=2) for _ in range(2)]  # two, as during a failover
    chainer_db = chainers[0]
    start, done = threading.Barrier(writers), threading.Event()
    seqs: list[int] = []
    errors: list[BaseException] = []

    def write(db: Database, w: int) -> None:
        try:
            start.wait()
            seqs.extend(_append(db, i, incident_id=f"inc_{w}") for i in range(each))
        except BaseException as exc:
            errors.append(exc)

    def link(db: Database) -> None:
        try:
            while not done.is_set():
                audit_store.link(db, limit=25)  # while the writers write
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(db, w)) for w, db in enumerate(handles)]
    linkers = [threading.Thread(target=link, args=(db,)) for db in chainers]
    try:
        for thread in [*linkers, *threads]:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        for thread in linkers:
            thread.join()
        assert errors == []
        while audit_store.link(chainer_db, limit=25):
            pass
        positions = _positions(chainer_db)
        assert sorted(positions) == sorted(seqs) and len(seqs) == writers * each
        assert sorted(positions.values()) == list(range(1, writers * each + 1))
        result = audit_store.verify_chain(chainer_db)
        assert (result.ok, result.checked, result.pending) == (True, writers * each, 0)
        head = audit_store.head(chainer_db)
        assert head is not None and positions[head[0]] == writers * each
    finally:
        for db in [*handles, *chainers]:
            db.close()


def test_a_lower_seq_committed_late_is_linked_after_the_higher_ones(pg: Database,
                                                                   pg_url: str) -> None:
    other = Database(pg_url)
    try:
        with other.batch():  # a writer's transaction still open...
            late = _append(other, 1)
            early = _append(pg, 2)  # ...while another writer commits a higher seq
            assert audit_store.link(pg) == 1  # the late one is not visible yet
        assert late < early
        assert audit_store.link(pg) == 1
    finally:
        other.close()
    assert _positions(pg) == {early: 1, late: 2}
    records = list(audit_store.iter_records(pg))
    assert [r.seq for r in records] == [early, late]
    assert records[1].prev_hash == records[0].hash and records[0].prev_hash == GENESIS
    result = audit_store.verify_chain(pg)
    assert (result.ok, result.checked, result.pending) == (True, 2, 0)


def test_a_gap_in_seq_is_no_gap_in_the_chain(pg: Database) -> None:
    first = _append(pg, 1)
    with psycopg.connect(pg.url) as raw:  # a writer that rolls back: its seq is never used
        raw.execute("INSERT INTO audit (ts, kind, data) VALUES ('t', 'guard', '{}')")
        raw.rollback()
    last = _append(pg, 3)
    assert audit_store.link(pg) == 2
    assert (last - first, _positions(pg)) == (2, {first: 1, last: 2})
    result = audit_store.verify_chain(pg)
    assert (result.ok, result.checked, result.pending) == (True, 2, 0)


def test_a_deposed_leader_links_nothing(pg: Database) -> None:
    epoch = leases.hold(pg, leases.LEADER, "replica-a", ttl_s=30)
    assert epoch is not None
    _append(pg, 1)
    assert audit_store.link(pg, fence=("replica-a", epoch)) == 1
    leases.release(pg, leases.LEADER, "replica-a")
    new_epoch = leases.hold(pg, leases.LEADER, "replica-b", ttl_s=30)
    assert new_epoch == epoch + 1
    _append(pg, 2)
    assert audit_store.link(pg, fence=("replica-a", epoch)) is None
    assert chainer.link_pending(pg, lambda: ("replica-a", epoch)) == 0
    assert (audit_store.lag(pg).entries, len(_positions(pg))) == (1, 1)
    assert chainer.link_pending(pg, lambda: ("replica-b", new_epoch)) == 1
    assert audit_store.verify_chain(pg).checked == 2


def test_the_lag_gauges_count_then_drain(pg: Database) -> None:
    for n in range(3):
        _append(pg, n)
    gauges = _gauges(pg)
    assert gauges["remediator_audit_chain_lag_entries"] == 3
    assert gauges["remediator_audit_chain_lag_seconds"] >= 0
    assert chainer.link_pending(pg, lambda: ("nobody", 0)) == 0  # not the leader: fenced
    assert _gauges(pg)["remediator_audit_chain_lag_entries"] == 3
    assert audit_store.link(pg) == 3
    assert _gauges(pg) == {"remediator_audit_chain_lag_entries": 0,
                           "remediator_audit_chain_lag_seconds": 0}


def test_a_tick_links_in_bounded_batches(pg: Database) -> None:
    for n in range(5):
        _append(pg, n)
    epoch = leases.hold(pg, leases.LEADER, "replica-a", ttl_s=30)
    assert epoch is not None
    fence = ("replica-a", epoch)
    assert chainer.link_pending(pg, lambda: fence, batch=2, max_batches=2) == 4
    assert audit_store.lag(pg).entries == 1
    assert chainer.link_pending(pg, lambda: fence, batch=2) == 1
    assert audit_store.verify_chain(pg).checked == 5


def test_the_triggers_allow_the_link_only(pg: Database) -> None:
    linked = _append(pg, 1)
    audit_store.link(pg)
    waiting = _append(pg, 2)
    refused = [
        # linked again, over its link
        ("UPDATE audit SET chain = 9, prev_hash = ?, hash = ? WHERE seq = ?",
         (GENESIS, "f" * 64, linked)),
        # linked while its content changes
        ("UPDATE audit SET chain = 2, prev_hash = ?, hash = ?, data = '{}' WHERE seq = ?",
         (GENESIS, "f" * 64, waiting)),
        # half a link
        ("UPDATE audit SET hash = ? WHERE seq = ?", ("f" * 64, waiting)),
        ("DELETE FROM audit WHERE seq = ?", (waiting,)),
    ]
    for sql, params in refused:
        with pytest.raises(StorageError, match="the audit log is append-only"), \
                pg.write() as conn:
            conn.execute(sql, params)
    assert audit_store.link(pg) == 1
    assert audit_store.verify_chain(pg).checked == 2


def test_tampering_with_a_linked_record_is_caught(pg: Database) -> None:
    for n in range(3):
        _append(pg, n)
    audit_store.link(pg)
    _append(pg, 3)  # pending: not part of what is checked
    with psycopg.connect(pg.url, autocommit=True) as raw:
        raw.execute("ALTER TABLE audit DISABLE TRIGGER USER")
        raw.execute("""UPDATE audit SET data = '{"n":7}' WHERE seq = 2""")
    result = audit_store.verify_chain(pg)
    assert (result.ok, result.checked, result.bad_seq, result.pending) == (False, 1, 2, 1)
    assert result.reason == "record 2: hash does not match its content: it was edited"


def test_a_record_moved_in_the_chain_is_named_by_its_position(pg: Database) -> None:
    for n in range(3):
        _append(pg, n)
    audit_store.link(pg)
    with psycopg.connect(pg.url, autocommit=True) as raw:
        raw.execute("ALTER TABLE audit DISABLE TRIGGER USER")
        raw.execute("DELETE FROM audit WHERE seq = 2")
        raw.execute("UPDATE audit SET seq = 30 WHERE seq = 3")
    result = audit_store.verify_chain(pg)
    assert (result.ok, result.checked, result.bad_seq) == (False, 1, 30)
    assert result.reason == ("record 30: expected chain position 2: a record was deleted or "
                             "inserted")


def test_sqlite_links_inline_and_has_no_lag(tmp_path: Path) -> None:
    db = Database(tmp_path / "remediator.db")
    try:
        seq = _append(db, 1)
        assert audit_store.link(db) == 0
        assert audit_store.lag(db) == audit_store.Lag(0, 0.0)
        assert _positions(db) == {seq: seq}
        assert _gauges(db) == {"remediator_audit_chain_lag_entries": 0,
                               "remediator_audit_chain_lag_seconds": 0}
        assert chainer.register(object(), db, lambda: ("x", 1)) is None  # type: ignore[arg-type]
    finally:
        db.close()


def test_a_sqlite_file_from_before_the_chain_column_verifies_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, ts_ms INTEGER,
            incident_id TEXT, event_id TEXT, kind TEXT NOT NULL, actor TEXT, resource TEXT,
            data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER, hash TEXT);
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """)
    prev = GENESIS
    for seq in (1, 2):
        body = {"seq": seq, "ts": "2025-03-14T09:00:00.000Z", "incident_id": "",
                "event_id": "", "kind": "pause", "actor": "alice", "data": {}, "prev_hash": prev}
        digest = record_hash(body)
        conn.execute("INSERT INTO audit VALUES (?, ?, 0, '', '', 'pause', 'alice', '', '{}', "
                     "?, ?)", (seq, body["ts"], prev, digest))
        prev = digest
    conn.execute("INSERT INTO audit_head VALUES (1, 2, ?)", (prev,))
    conn.close()
    db = Database(path)
    try:
        assert _positions(db) == {1: 1, 2: 2}
        assert audit_store.verify_chain(db).checked == 2
        assert _append(db, 3) == 3
        assert (audit_store.verify_chain(db).ok, audit_store.verify_chain(db).checked) == (
            True, 3)
        with pytest.raises(StorageError, match="the audit log is append-only"), \
                db.write() as write:
            write.execute("UPDATE audit SET kind = 'x'")
    finally:
        db.close()


def test_a_replica_of_an_older_release_cannot_write_beside_the_chain(pg: Database) -> None:
    _append(pg, 1)
    audit_store.link(pg)
    # What a replica from before migration 0007 does: the next seq after the head, linked.
    with pytest.raises(StorageError, match="a replica of an older release wrote it"), \
            pg.write() as conn:
        conn.execute("INSERT INTO audit (seq, ts, kind, data, prev_hash, hash) "
                     "VALUES (2, 't', 'guard', '{}', ?, ?)", (GENESIS, "f" * 64))
    assert audit_store.verify_chain(pg).checked == 1



def test_the_leaders_chainer_links_and_a_followers_does_not(pg_url: str,
                                                           tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("name: engine\nrules: []\n")
    settings = Settings(db=pg_url, playbooks=str(tmp_path))
    dbs = [Database(pg_url), Database(pg_url)]
    services = [Service(settings, db, clock=FakeClock()) for db in dbs]
    try:
        for service in services:
            service.liveness.start()
        leader, follower = sorted(services, key=lambda s: not s.liveness.is_leader())
        assert (leader.liveness.is_leader(), follower.liveness.is_leader()) == (True, False)
        jobs = {}
        for service in services:
            [(every, job)] = [(every, service.scheduler._if_leader(func))
                              for name, func, every in service.scheduler._extra
                              if name == "audit-chain"]
            assert every == chainer.EVERY_S
            jobs[service] = job
        _append(follower.db, 1)
        assert jobs[follower]() is None and audit_store.lag(leader.db).entries == 1
        assert jobs[leader]() == 1 and audit_store.lag(leader.db).entries == 0
        assert audit_store.verify_chain(follower.db).checked == 1
    finally:
        for service in services:
            service.liveness.stop()
            service.stop()
        for db in dbs:
            db.close()


def test_a_postgres_log_from_before_0007_keeps_verifying_and_goes_on(pg_server: PgServer) -> None:
    url = pg_server.empty()
    with psycopg.connect(url, autocommit=True) as raw:  # the schema of the release before
        raw.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
                    "NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for migration in available():
            if migration.version < 7:
                raw.execute(Path(migration.path).read_text())
                raw.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                            (migration.version, migration.name))
        prev = GENESIS
        for seq in (1, 2):
            body = {"seq": seq, "ts": "2025-03-14T09:00:00.000Z", "incident_id": "",
                    "event_id": "", "kind": "pause", "actor": "alice", "data": {},
                    "prev_hash": prev}
            digest = record_hash(body)
            raw.execute("INSERT INTO audit (seq, ts, ts_ms, incident_id, event_id, kind, actor, "
                        "resource, data, prev_hash, hash) VALUES (%s, %s, 0, '', '', 'pause', "
                        "'alice', '', '{}', %s, %s)", (seq, body["ts"], prev, digest))
            prev = digest
        raw.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 2, %s)", (prev,))
    db = Database(url)  # applies 0007
    try:
        assert _positions(db) == {1: 1, 2: 2}
        assert audit_store.verify_chain(db).checked == 2
        assert _append(db, 3) == 3  # the sequence goes on after the last seq
        assert audit_store.link(db) == 1
        result = audit_store.verify_chain(db)
        assert (result.ok, result.checked, result.pending) == (True, 3, 0)
    finally:
        db.close()


def test_the_metrics_count_a_record_committed_late_once(pg: Database, pg_url: str) -> None:
    def rca_calls() -> float:
        metrics_store.refresh(pg)
        return sum(c.value for c in metrics_store.counts(pg, "rca_calls"))

    other = Database(pg_url)
    try:
        with other.write():  # a writer's transaction still open
            audit_store.append(other, "rca", ts=T0, data={"analysis": {}})  # the lower seq
            audit_store.append(pg, "rca", ts=T0, data={"analysis": {}})
            assert rca_calls() == 0  # folded once linked
            audit_store.link(pg)
            assert rca_calls() == 1
        audit_store.link(pg)
    finally:
        other.close()
    assert rca_calls() == 2
    assert rca_calls() == 2
