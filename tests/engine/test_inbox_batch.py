"""One group commit of the inbox on both backends (on PostgreSQL the batch is one statement,
committed with its NOTIFY in one round trip): receipts in order, a key repeated in the batch or
stored before answers the first event's id and counts as a duplicate, the events are stored in
the order given, and the commit waits for no other writer of the process."""

from __future__ import annotations

import threading

import msgspec
import psycopg
import pytest

from engine.errors import StorageError
from engine.events import ErrorEvent
from engine.store import inbox, postgres
from engine.store.db import Database
from receivers import intake
from tests.fixtures.common import load_sample
from tests.reliability.conftest import poll


def _event(key: str) -> ErrorEvent:
    payload = load_sample("databricks/databricks-job-on-failure.json")
    [event] = intake.normalize("databricks-monitor", payload)
    return msgspec.structs.replace(event, dedup_key=key)


def test_a_batch_answers_each_payload_in_order_with_its_duplicates(db: Database) -> None:
    [[stored]] = inbox.insert_batch(db, [([_event("k-old")], {"n": 0}, "x")])
    receipts = inbox.insert_batch(db, [
        ([_event("k-a"), _event("k-b")], {"n": 1}, "x"),
        ([_event("k-old")], {"n": 2}, "x"),
        ([], {"n": 3}, "x"),
        ([_event("k-b"), _event("k-c")], {"n": 4}, "y"),
    ])
    [[a, b], [old], [], [b_again, c]] = receipts
    assert [r.duplicate for r in (a, b, old, b_again, c)] == [False, False, True, True, False]
    assert (old.event_id, b_again.event_id) == (stored.event_id, b.event_id)
    assert len({a.event_id, b.event_id, c.event_id, stored.event_id}) == 4
    rows = db.query("SELECT dedup_key, duplicates, endpoint FROM events ORDER BY dedup_key")
    assert [(r["dedup_key"], r["duplicates"], r["endpoint"]) for r in rows] == [
        ("k-a", 0, "x"), ("k-b", 1, "x"), ("k-c", 0, "y"), ("k-old", 1, "x")]
    assert inbox.get(db, c.event_id).raw == {"n": 4}


def test_a_key_stored_before_and_repeated_in_a_batch_counts_every_repeat(db: Database) -> None:
    [[stored]] = inbox.insert_batch(db, [([_event("k-old")], {}, "x")])
    [[old, old_again], [new, new_again]] = inbox.insert_batch(db, [
        ([_event("k-old"), _event("k-old")], {}, "x"),
        ([_event("k-new"), _event("k-new")], {}, "x"),
    ])
    assert [(r.event_id == stored.event_id, r.duplicate) for r in (old, old_again)] == [
        (True, True), (True, True)]
    assert (new.duplicate, new_again.duplicate, new_again.event_id) == (False, True,
                                                                        new.event_id)
    rows = db.query("SELECT dedup_key, duplicates FROM events ORDER BY dedup_key")
    assert [(r["dedup_key"], r["duplicates"]) for r in rows] == [("k-new", 1), ("k-old", 2)]


def test_a_batch_is_stored_in_the_order_given(db: Database) -> None:
    """The claims take events in their insertion order (the dialect's rowid)."""
    keys = [f"k-{n}" for n in (5, 3, 9, 1, 7)]
    inbox.insert_batch(db, [([_event(key)], {}, "x") for key in keys])
    rows = db.query(f"SELECT dedup_key FROM events ORDER BY {db.dialect.rowid}")
    assert [r["dedup_key"] for r in rows] == keys


def test_a_batch_inside_a_transaction_commits_with_it(db: Database) -> None:
    with db.batch():
        [[receipt]] = inbox.insert_batch(db, [([_event("k-in")], {"n": 1}, "x")])
        assert inbox.get(db, receipt.event_id) is not None  # seen by its own transaction
    assert inbox.get(db, receipt.event_id).raw == {"n": 1}


def test_a_batch_of_payloads_without_events_stores_nothing(db: Database) -> None:
    """Payloads whose parser found no event (answered ``ignored``) may make a group commit of
    their own: it succeeds with nothing to store."""
    assert inbox.insert_batch(db, [([], {"n": 1}, "x"), ([], {"n": 2}, "y")]) == [[], []]
    assert db.query("SELECT count(*) AS n FROM events")[0]["n"] == 0


def test_a_nul_character_fails_no_other_payload_and_the_event_keeps_it(
        db: Database) -> None:
    """PostgreSQL's text holds no NUL: without the replacement the whole group commit failed
    (503 to every payload in it, again at each retry)."""
    bad = msgspec.structs.replace(_event("k-\x00nul"), resource="job\x00x", message="a\x00b")
    [[stored], [other], [again]] = inbox.insert_batch(db, [
        ([bad], {"m": "a\x00b"}, "x"), ([_event("k-fine")], {}, "x"), ([bad], {}, "x")])
    assert (stored.duplicate, other.duplicate, again.duplicate) == (False, False, True)
    assert again.event_id == stored.event_id
    kept = inbox.get(db, stored.event_id)  # the event as sent, for the engine to judge
    assert (kept.event.dedup_key, kept.event.resource, kept.event.message) == (
        "k-\x00nul", "job\x00x", "a\x00b")
    [columns] = db.query("SELECT dedup_key, resource FROM events WHERE id = ?",
                         (stored.event_id,))
    assert tuple(columns) == ("k-\ufffdnul", "job\ufffdx")
    assert kept.raw == {"m": "a\x00b"}
    assert inbox.get(db, other.event_id).event.dedup_key == "k-fine"


def test_postgres_intake_commits_while_another_thread_of_the_process_writes(
        pg_url: str) -> None:
    """The intake's insert needs no writer lock (its unique key settles conflicts), so it does
    not queue behind a write transaction another thread of the process (the worker) holds."""
    db = Database(pg_url)
    holding, release = threading.Event(), threading.Event()

    def worker() -> None:
        with db.write():
            holding.set()
            release.wait(60)

    stored: list[list[inbox.Receipt]] = []
    writer = threading.Thread(target=worker)
    intake_thread = threading.Thread(target=lambda: stored.extend(
        inbox.insert_batch(db, [([_event("k-beside")], {}, "x")])))
    writer.start()
    try:
        assert holding.wait(30)
        intake_thread.start()
        intake_thread.join(30)  # a bound, not a measure: without the change it waits for ever
        committed_while_held = not intake_thread.is_alive()
    finally:
        release.set()
        writer.join(30)
        intake_thread.join(30)
        db.close()
    assert committed_while_held
    assert [[r.duplicate for r in receipts] for receipts in stored] == [[False]]


def test_postgres_a_batch_that_fails_stores_nothing_and_wakes_no_one(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's NOTIFY and insert are one transaction (one round trip, no BEGIN/COMMIT):
    an insert that fails (here: the table locked past the lock timeout) takes its NOTIFY with
    it, and the next batch commits on the same pool."""
    monkeypatch.setattr(postgres, "LOCK_TIMEOUT_S", 1)
    db, other = Database(pg_url), Database(pg_url)
    heard: list[str] = []
    connected, marked, stop = threading.Event(), threading.Event(), threading.Event()

    def on_notify(payload: str) -> None:
        heard.append(payload)
        (marked if payload == "marker" else connected).set()

    listener = threading.Thread(target=other.listen, args=(inbox.WAKE_CHANNEL, on_notify, stop))
    listener.start()
    try:
        assert connected.wait(30)
        with psycopg.connect(pg_url) as holder:
            holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StorageError) as failed:
                inbox.insert_batch(db, [([_event("k-locked")], {}, "x")])
        assert str(failed.value) == "write failed: canceling statement due to lock timeout"
        db.query("SELECT pg_notify(?, 'marker')", (inbox.WAKE_CHANNEL,))
        assert marked.wait(30)
        [[receipt]] = inbox.insert_batch(db, [([_event("k-later")], {}, "x")])
    finally:
        stop.set()
        listener.join(timeout=30)
        other.close()
    try:
        assert heard[:2] == ["", "marker"]  # notifications arrive in commit order
        assert [r["dedup_key"] for r in db.query("SELECT dedup_key FROM events")] == ["k-later"]
        assert not receipt.duplicate
    finally:
        db.close()


def _waiting_on_a_lock(pg_url: str, count: int) -> bool:
    with psycopg.connect(pg_url, autocommit=True) as watcher:
        [(n,)] = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()").fetchall()
    return n >= count


def test_postgres_two_replicas_group_commits_of_crossed_keys_both_commit(pg_url: str) -> None:
    """Two replicas' group commits hold the same two deliveries in opposite orders (a sender's
    retry of each landed on the other replica): each insert waits on the other's new key, and
    the server breaks the deadlock by rolling one back. That batch is run again (the winner's
    rows are now stored: its events answer duplicate) instead of failing every payload in it
    with 503. A third session holding a key of the first batch makes the crossing certain."""
    first, second = Database(pg_url), Database(pg_url)
    answers: dict[str, list[list[inbox.Receipt]]] = {}
    failures: dict[str, StorageError] = {}

    def commit(name: str, db: Database, keys: list[str]) -> None:
        try:
            answers[name] = inbox.insert_batch(db, [([_event(key)], {}, "x") for key in keys])
        except StorageError as exc:  # reported below, with its message
            failures[name] = exc

    a = threading.Thread(target=commit, args=("a", first, ["k-x", "k-hold", "k-y"]))
    b = threading.Thread(target=commit, args=("b", second, ["k-y", "k-x"]))
    try:
        with psycopg.connect(pg_url) as holder:  # holds k-hold, uncommitted
            holder.execute("INSERT INTO events (id, dedup_key, received_ms, endpoint, source,"
                           " kind, status, resource, run_id, fingerprint, event, raw, lane)"
                           " VALUES ('evt-hold', 'k-hold', 0, 'x', 's', 'k', 'new', 'r',"
                           " '', 'f', '{}', '{}', 'l')")
            a.start()  # stores k-x, then waits for k-hold
            assert poll(lambda: _waiting_on_a_lock(pg_url, 1))
            b.start()  # stores k-y, then waits for k-x
            assert poll(lambda: _waiting_on_a_lock(pg_url, 2))
            holder.rollback()  # a goes on to k-y: a waits for b, b for a
        a.join(60)
        b.join(60)
    finally:
        first.close()
        second.close()
    assert failures == {}
    assert sorted(r["dedup_key"] for r in Database(pg_url).query(
        "SELECT dedup_key FROM events")) == ["k-hold", "k-x", "k-y"]
    duplicates = [r.duplicate for receipts in answers["a"] + answers["b"] for r in receipts]
    assert sorted(duplicates) == [False, False, False, True, True]
