"""Group commit keeps the intake's promises: no answer before its commit, one transaction per
batch, duplicates inside a batch answer the first id, a failed batch fails only its requests.

The writer thread is held back by holding the database's write transaction in the test, so
that what is submitted meanwhile forms the next batch (no timing involved).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from engine.errors import StorageError
from engine.events import ErrorEvent
from engine.store import inbox
from engine.store.db import Database
from receivers import intake
from receivers.group_commit import GroupCommitter
from tests.fixtures.common import Commits, load_sample


def _event(key: str) -> ErrorEvent:
    payload = load_sample("databricks/databricks-job-on-failure.json")
    [event] = intake.normalize("databricks-monitor", payload)
    return msgspec.structs.replace(event, dedup_key=key)


async def _until_taken(committer: GroupCommitter) -> None:
    """Wait (bounded) until the writer has taken everything queued."""
    await asyncio.sleep(0)  # let the submitting tasks run up to their queueing
    for _ in range(2000):
        if committer._queue.empty():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the writer never took the queued request")


def _run(db: Database, scenario: Any) -> Any:
    committer = GroupCommitter(db)
    committer.start()
    try:
        return asyncio.run(scenario(committer))
    finally:
        committer.close()


def test_no_receipt_before_the_commit_and_requests_that_wait_share_one_transaction(
    db: Database,
) -> None:
    commits = Commits(db)

    async def scenario(committer: GroupCommitter) -> tuple[Any, ...]:
        with db.write():  # the writer cannot commit while we hold the transaction
            first = asyncio.create_task(committer.commit("x", [_event("k-first")], {"n": 1}))
            await _until_taken(committer)
            rest = [
                asyncio.create_task(committer.commit("x", [_event(f"k-{i}")], {"n": i}))
                for i in range(5)
            ]
            await asyncio.sleep(0)
            answered_while_held = first.done() or any(task.done() for task in rest)
            stored_while_held = db.query("SELECT count(*) AS n FROM events")[0]["n"]
            commits_before = commits.count
        results = [await first, *[await task for task in rest]]
        return answered_while_held, stored_while_held, commits_before, results

    answered, stored, before, results = _run(db, scenario)
    assert (answered, stored) == (False, 0)
    # ours (empty), then the first request's batch, then the five that waited, together
    assert commits.count - before == 3
    assert [len(r) for r in results] == [1] * 6
    assert all(not r[0].duplicate and r[0].status == "firing" for r in results)
    ids = [r[0].event_id for r in results]
    assert inbox.get(db, ids[3]).raw == {"n": 2}
    assert db.query("SELECT count(*) AS n FROM events")[0]["n"] == 6


def test_a_duplicate_inside_one_batch_answers_the_first_id(db: Database) -> None:
    async def scenario(committer: GroupCommitter) -> list[list[inbox.Receipt]]:
        with db.write():
            blocker = asyncio.create_task(committer.commit("x", [_event("k-0")], {}))
            await _until_taken(committer)
            same = [
                asyncio.create_task(committer.commit("x", [_event("k-dup")], {"try": i}))
                for i in range(3)
            ]
            await asyncio.sleep(0)  # queued behind the blocked batch
        await blocker
        return [await task for task in same]

    first, second, third = _run(db, scenario)
    assert first[0].duplicate is False
    assert (second[0].event_id, second[0].duplicate) == (first[0].event_id, True)
    assert (third[0].event_id, third[0].duplicate) == (first[0].event_id, True)
    rows = db.query("SELECT duplicates FROM events WHERE dedup_key = 'k-dup'")
    assert [row["duplicates"] for row in rows] == [2]


def test_a_failed_batch_answers_storage_error_to_exactly_its_requests(db: Database) -> None:
    # An event without a dedup key breaks the NOT NULL constraint: the whole transaction
    # rolls back, so its batch-mate is not stored either, and both must be told so.
    broken = msgspec.structs.replace(_event("unused"), dedup_key=None)  # type: ignore[arg-type]

    async def scenario(committer: GroupCommitter) -> list[Any]:
        with db.write():
            before = asyncio.create_task(committer.commit("x", [_event("k-before")], {}))
            await _until_taken(committer)
            good = asyncio.create_task(committer.commit("x", [_event("k-good")], {}))
            bad = asyncio.create_task(committer.commit("x", [broken], {}))
            await asyncio.sleep(0)
        outcomes = await asyncio.gather(before, good, bad, return_exceptions=True)
        after = await committer.commit("x", [_event("k-after")], {})
        return [*outcomes, after]

    before, good, bad, after = _run(db, scenario)
    assert isinstance(good, StorageError) and isinstance(bad, StorageError)
    assert str(bad).startswith("write failed: NOT NULL constraint failed: events.dedup_key")
    assert before[0].duplicate is False and after[0].duplicate is False
    keys = [row["dedup_key"] for row in db.query("SELECT dedup_key FROM events ORDER BY id")]
    assert keys == ["k-before", "k-after"]


def test_close_commits_what_is_queued_and_a_closed_writer_refuses(db: Database) -> None:
    committer = GroupCommitter(db)
    committer.start()

    async def submit() -> list[inbox.Receipt]:
        task = asyncio.create_task(committer.commit("x", [_event("k-last")], {}))
        await _until_taken(committer)
        return await task

    [receipt] = asyncio.run(submit())
    committer.close()
    assert inbox.get(db, receipt.event_id).event.dedup_key == "k-last"

    async def late() -> None:
        await committer.commit("x", [_event("k-late")], {})

    with pytest.raises(StorageError, match=r"^the intake writer is not running$"):
        asyncio.run(late())


def test_each_committed_batch_wakes_the_engine_and_a_failed_one_does_not(db: Database) -> None:
    woken: list[int] = []
    committer = GroupCommitter(
        db, on_commit=lambda: woken.append(db.query("SELECT count(*) AS n FROM events")[0]["n"])
    )
    committer.start()
    broken = msgspec.structs.replace(_event("k-x"), dedup_key=None)  # type: ignore[arg-type]

    async def scenario() -> None:
        await committer.commit("x", [_event("k-1")], {})
        with pytest.raises(StorageError):
            await committer.commit("x", [broken], {})
        await committer.commit("x", [_event("k-2")], {})

    try:
        asyncio.run(scenario())
    finally:
        committer.close()
    # Called after each successful commit, when its rows are visible; not for the failed batch.
    assert woken == [1, 2]
