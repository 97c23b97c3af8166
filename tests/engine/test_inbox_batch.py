"""One group commit of the inbox on both backends (on PostgreSQL the batch's inserts and its
NOTIFY travel in one round trip, psycopg's pipeline): receipts in order, a key repeated in the
batch or stored before answers the first event's id and counts as a duplicate."""

from __future__ import annotations

import msgspec

from engine.events import ErrorEvent
from engine.store import inbox
from engine.store.db import Database
from receivers import intake
from tests.fixtures.common import load_sample


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
