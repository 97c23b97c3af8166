"""The service's claim loop (``Worker.start``): it claims again as soon as a thread frees up
instead of waiting for a whole batch, keeps the events of one target in order, and claims at
once when ``wake()`` says the inbox has news. A scripted hang of the ADF emulator's createRun
holds one event mid-call for as long as the test wants (the client's timeout is 30 s here)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.actions.context import ActionContext
from engine.clock import FakeClock, to_ms
from engine.cloud.clients import Clients
from engine.config import EngineSettings
from engine.runtime.worker import Worker
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store.db import Database
from tests.engine.actions.conftest import adf_event, cloud_settings
from tests.engine.test_worker import RERUN, reruns
from tests.fixtures.common import Commits, read_elsewhere
from tests.fixtures.engine import EngineRig
from tests.reliability.conftest import poll

OPTIONS = EngineSettings(threads=2, batch=4)


@pytest.fixture
def rig(db: Database, sandbox: Any, tmp_path: Path) -> Iterator[EngineRig]:
    """An engine rig whose cloud clients wait 30 s for an answer (the test ends hangs)."""
    clients = Clients(cloud_settings(sandbox, timeout=30.0))
    built = EngineRig(db=db, clock=FakeClock(), sandbox=sandbox, tmp=tmp_path,
                      ctx=ActionContext(clients=clients))
    yield built
    sandbox.reset()
    for worker in built.workers:
        worker.stop()
    clients.close()


def _event(sandbox: Any, n: int, pipeline: str) -> Any:
    """A distinct firing alert about ``pipeline`` (its own target) and a failed run of it,
    which the sandbox gets."""
    run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, pipeline))
    sandbox.failure("adf", "given-run", run_id=run_id, pipeline=pipeline)
    event = adf_event(resource=pipeline, run_id=run_id, dedup_key=f"azmon:claim-loop:{n}")
    return event.__class__(**{**{f: getattr(event, f) for f in event.__struct_fields__},
                              "attributes": {**event.attributes, "pipeline": pipeline}})


def _state(db: Database, event_id: str) -> str:
    stored = inbox.get(db, event_id)
    assert stored is not None
    return stored.state


def _received(db: Database, event_id: str) -> bool:
    return bool(audit_store.list_records(db, event_id=event_id, kind="received"))


def _started(worker: Worker, poll_s: float = 0.02) -> Worker:
    worker._poll_s = poll_s  # the tests below set how often an idle loop looks
    worker._fallback_poll_s = poll_s
    worker.start()
    return worker


def test_a_free_thread_takes_new_events_while_another_is_mid_call(rig: EngineRig) -> None:
    rig.sandbox.script("adf", "adf.createRun", hang=60)
    _started(rig.worker(RERUN, live=True, options=OPTIONS))
    stuck = rig.deliver(_event(rig.sandbox, 1, "pl_stuck"))
    poll(lambda: rig.sandbox.calls("adf") and any(
        c["path"].endswith("/createRun") for c in rig.sandbox.calls("adf")))
    # The first event is inside its createRun; a batch-at-a-time loop would wait for it.
    later = rig.deliver(_event(rig.sandbox, 2, "pl_later"))
    poll(lambda: _state(rig.db, later) == "done")
    assert _state(rig.db, stuck) == "processing"
    assert [c["path"].split("/pipelines/")[1] for c in reruns(rig.sandbox)] == [
        "pl_stuck/createRun", "pl_later/createRun"]
    rig.sandbox.reset()  # ends the hang: the connection drops
    poll(lambda: _state(rig.db, stuck) == "done")


def test_events_of_one_target_wait_for_the_one_before_them(rig: EngineRig) -> None:
    rig.sandbox.script("adf", "adf.createRun", hang=60)
    _started(rig.worker(RERUN, live=True, options=OPTIONS))
    first = rig.deliver(_event(rig.sandbox, 1, "pl_same"))
    poll(lambda: reruns(rig.sandbox))
    second = rig.deliver(_event(rig.sandbox, 2, "pl_same"))
    if rig.db.dialect.name == "postgresql":
        # The database holds the lane (issue 17): no replica may claim it meanwhile.
        assert inbox.claim(rig.db, limit=10, lease_ms=60_000, owner="proc_other",
                           now_ms=to_ms(rig.clock.now())) == []
        assert _state(rig.db, second) == "pending"
    else:
        # Claimed (a thread is free), but queued behind the first event of its target.
        poll(lambda: _state(rig.db, second) == "processing")
    assert not _received(rig.db, second)
    assert _state(rig.db, first) == "processing"
    rig.sandbox.reset()  # ends the hang: the connection drops
    poll(lambda: _state(rig.db, second) == "done")
    order = [r.event_id for r in audit_store.list_records(rig.db, kind="received", limit=10)]
    assert order == [first, second]
    first_records = audit_store.list_records(rig.db, event_id=first, limit=100)
    second_records = audit_store.list_records(rig.db, event_id=second, limit=100)
    assert max(r.seq for r in first_records) < min(r.seq for r in second_records)


def test_wake_claims_at_once_where_the_poll_would_wait_an_hour(rig: EngineRig) -> None:
    worker = rig.worker(RERUN, options=OPTIONS)
    before = rig.deliver(_event(rig.sandbox, 1, "pl_a"))
    event = _event(rig.sandbox, 2, "pl_b")
    _started(worker, poll_s=3600)
    poll(lambda: _state(rig.db, before) == "done")  # the first claim at start
    after = rig.deliver(event)
    with pytest.raises(AssertionError):
        poll(lambda: _state(rig.db, after) == "done", bound_s=0.5)
    worker.wake()
    poll(lambda: _state(rig.db, after) == "done")


def test_a_dry_run_event_costs_two_commits_the_claim_and_its_stages(rig: EngineRig) -> None:
    worker = rig.worker(RERUN, options=OPTIONS)
    event_id = rig.deliver(_event(rig.sandbox, 1, "pl_dry"))
    commits = Commits(rig.db)
    assert worker.drain() == 1
    # The claim, then received, matched, incident, 7 guards, planned, state and done at once.
    assert commits.count == 2
    assert len(audit_store.list_records(rig.db, event_id=event_id, limit=100)) == 11
    assert _state(rig.db, event_id) == "done"


def test_a_live_event_commits_its_intent_before_the_call_then_the_outcome(
    rig: EngineRig,
) -> None:
    worker = rig.worker(RERUN, live=True, options=OPTIONS)
    rig.deliver(_event(rig.sandbox, 1, "pl_live"))
    seen: list[str] = []
    commits = Commits(rig.db)
    rig.sandbox.script("adf", "adf.createRun", hang=60)
    threading.Thread(target=worker.drain, daemon=True).start()
    poll(lambda: reruns(rig.sandbox))
    # Mid-call: the claim and everything up to the intent are committed, read back by
    # another connection (a second process would see the same).
    seen.extend(row[0] for row in read_elsewhere(rig.db, "SELECT state FROM actions"))
    assert (seen, commits.count) == (["started"], 2)
    rig.sandbox.reset()  # the call fails (connection dropped): the outcome is committed
    poll(lambda: commits.count == 3)
    assert rig.db.query("SELECT state FROM actions")[0]["state"] == "scheduled"


def test_a_stage_stalled_past_its_leases_counts_each_is_not_run_twice_and_is_parked(
    rig: EngineRig,
) -> None:
    rig.sandbox.script("adf", "adf.createRun", hang=60)
    options = EngineSettings(threads=2, batch=4, max_claims=3, event_lease_s=60)
    worker = _started(rig.worker(RERUN, live=True, options=options))
    stalled = rig.deliver(_event(rig.sandbox, 1, "pl_stalled"))
    poll(lambda: reruns(rig.sandbox))
    for claims in (2, 3):  # the lease runs out while the stage stalls: claimed again
        rig.clock.advance(61)
        worker.wake()
        poll(lambda n=claims: inbox.get(rig.db, stalled).attempts == n)  # type: ignore[union-attr]
    rig.clock.advance(61)
    worker.wake()
    poll(lambda: _state(rig.db, stalled) == "parked")
    # counted, never queued behind itself: one pass through the stages, one call
    assert len(audit_store.list_records(rig.db, event_id=stalled, kind="received")) == 1
    assert len(reruns(rig.sandbox)) == 1
    other = rig.deliver(_event(rig.sandbox, 2, "pl_other"))
    poll(lambda: _state(rig.db, other) == "done")
    assert _state(rig.db, stalled) == "parked"
    rig.sandbox.reset()  # the stall ends at last (the connection drops): its stages finish
    poll(lambda: _state(rig.db, stalled) == "done")
    assert len(audit_store.list_records(rig.db, event_id=stalled, kind="received")) == 1


def test_an_event_waiting_behind_a_stalled_one_keeps_its_lease_and_its_claim_count(
    rig: EngineRig,
) -> None:
    rig.sandbox.script("adf", "adf.createRun", hang=60)
    options = EngineSettings(threads=2, batch=4, max_claims=2, event_lease_s=60)
    worker = _started(rig.worker(RERUN, live=True, options=options))
    stalled = rig.deliver(_event(rig.sandbox, 1, "pl_same"))
    poll(lambda: reruns(rig.sandbox))
    waiting = rig.deliver(_event(rig.sandbox, 2, "pl_same"))
    if rig.db.dialect.name == "postgresql":
        # The database holds the lane (issue 17): the waiting event is not even claimed
        # while the stalled one is in processing; once that one is parked, it runs.
        def claims(event_id: str) -> int:
            stored = inbox.get(rig.db, event_id)
            assert stored is not None
            return stored.attempts

        rig.clock.advance(61)  # the stalled one's first lease runs out: claimed again
        worker.wake()
        poll(lambda: claims(stalled) == 2)
        assert (_state(rig.db, waiting), claims(waiting)) == ("pending", 0)
        rig.clock.advance(61)  # and its second: parked
        worker.wake()
        poll(lambda: _state(rig.db, stalled) == "parked")
        rig.sandbox.reset()
        poll(lambda: _state(rig.db, waiting) == "done")
        stored = inbox.get(rig.db, waiting)
        assert stored is not None and stored.attempts == 1
        return
    poll(lambda: _state(rig.db, waiting) == "processing")  # claimed, queued behind

    def lease_left_ms(event_id: str) -> int:
        [row] = rig.db.query("SELECT lease_until_ms FROM events WHERE id = ?", (event_id,))
        return int(row["lease_until_ms"]) - to_ms(rig.clock.now())

    for _ in range(8):  # 160 s in steps of 20: the stalled one's two leases run out
        rig.clock.advance(20)
        worker.wake()
        poll(lambda: lease_left_ms(waiting) >= 45_000)  # renewed once a quarter was used
    poll(lambda: _state(rig.db, stalled) == "parked")
    stored = inbox.get(rig.db, waiting)
    assert stored is not None and (stored.state, stored.attempts) == ("processing", 1)
    rig.sandbox.reset()  # the stall ends: the waiting event runs after it, on its first claim
    poll(lambda: _state(rig.db, waiting) == "done")
    stored = inbox.get(rig.db, waiting)
    assert stored is not None and stored.attempts == 1
