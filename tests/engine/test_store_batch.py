"""Database.batch / outside / per-thread readers: the writes of a batch share one transaction,
a failed write inside it rolls back alone, what was written is committed also when the block
raises, ``outside`` commits before its block (an action's intent before its call), and reads
of other threads see only what is committed."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from engine.errors import StorageError
from engine.store.db import Database


@pytest.fixture
def store(tmp_path: Path) -> Database:
    db = Database(tmp_path / "batch.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    return db


def _put(db: Database, key: str, value: int | None) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (key, value))


def _seen_by_another_process(db: Database) -> list[str]:
    other = sqlite3.connect(db.path)
    try:
        return [row[0] for row in other.execute("SELECT k FROM t ORDER BY k")]
    finally:
        other.close()


def _seen_by_another_thread(db: Database) -> list[str]:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.extend(
        row["k"] for row in db.query("SELECT k FROM t ORDER BY k")))
    reader.start()
    reader.join()
    return found


def test_a_batch_is_one_transaction_seen_by_others_only_when_it_ends(store: Database) -> None:
    with store.batch():
        _put(store, "a", 1)
        _put(store, "b", 2)
        assert [r["k"] for r in store.query("SELECT k FROM t ORDER BY k")] == ["a", "b"]
        assert _seen_by_another_thread(store) == []
        assert _seen_by_another_process(store) == []
    assert _seen_by_another_thread(store) == ["a", "b"]
    assert _seen_by_another_process(store) == ["a", "b"]


def test_a_failed_write_in_a_batch_rolls_back_alone(store: Database) -> None:
    with store.batch():
        _put(store, "a", 1)
        with pytest.raises(StorageError, match="write failed"), store.write() as conn:
            conn.execute("INSERT INTO t (k, v) VALUES ('b', 2)")
            conn.execute("INSERT INTO t (k, v) VALUES ('c', NULL)")  # NOT NULL
        _put(store, "d", 4)
    assert _seen_by_another_process(store) == ["a", "d"]


def test_what_a_batch_wrote_is_committed_when_its_block_raises(store: Database) -> None:
    with pytest.raises(ValueError, match="template"), store.batch():
        _put(store, "a", 1)
        raise ValueError("a template failed")
    assert _seen_by_another_process(store) == ["a"]
    _put(store, "b", 2)  # the lock was released
    assert _seen_by_another_thread(store) == ["a", "b"]


def test_outside_commits_before_its_block_and_begins_again_after(store: Database) -> None:
    during: list[list[str]] = []
    with store.batch():
        _put(store, "intent", 1)
        with store.outside():
            during.append(_seen_by_another_process(store))
            _put(store, "other-thread", 2)  # the lock is free meanwhile
        _put(store, "outcome", 3)
        assert _seen_by_another_process(store) == ["intent", "other-thread"]
    assert during == [["intent"]]
    assert _seen_by_another_process(store) == ["intent", "other-thread", "outcome"]


def test_outside_of_a_batch_does_nothing(store: Database) -> None:
    with store.outside():
        _put(store, "a", 1)
    assert _seen_by_another_process(store) == ["a"]


def test_close_closes_the_readers_of_every_thread(store: Database) -> None:
    _put(store, "a", 1)
    assert _seen_by_another_thread(store) == ["a"]
    assert [r["k"] for r in store.query("SELECT k FROM t")] == ["a"]
    store.close()
    with pytest.raises(StorageError):
        store.query("SELECT k FROM t")
    with pytest.raises(StorageError):
        _seen_by_another_thread_raising(store)


def _seen_by_another_thread_raising(db: Database) -> None:
    errors: list[BaseException] = []

    def read() -> None:
        try:
            db.query("SELECT k FROM t")
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    if errors:
        raise errors[0]
