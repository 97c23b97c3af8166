"""Parked events (engine/runtime/deadletter.py) on a real database with the real worker: an event
whose claims all run out of lease is parked at the next claim and never handed out again; an error a
retry would repeat parks at once; a bug is retried, then parked with its last error; a replay
puts it back with its claims reset; a database from before parking keeps its failed events."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.config import EngineSettings, load_settings
from engine.errors import ConfigError
from engine.runtime import deadletter
from engine.runtime.worker import Worker
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store.db import Database
from tests.engine.actions.conftest import PIPELINE, adf_event
from tests.engine.test_worker import RERUN, reruns
from tests.fixtures.engine import EngineRig

OPTIONS = EngineSettings(max_claims=3, event_lease_s=60)

BAD_TEMPLATE = """\
name: engine
rules:
  - id: adf-copy-failed
    match: {source: adf, error_code: "2200"}
    actions:
      - action: noop
        with: {note: "{{ event.attributes.no_such_field }}"}
"""

UNMATCHED = """\
name: engine
rules:
  - id: other
    match: {source: databricks}
    actions:
      - action: noop
"""


def _stored(db: Database, event_id: str) -> inbox.StoredEvent:
    stored = inbox.get(db, event_id)
    assert stored is not None
    return stored


def _records(db: Database, event_id: str, kind: str) -> list[Any]:
    return [(r.actor, r.data) for r in audit_store.list_records(db, event_id=event_id,
                                                                 kind=kind, limit=100)]


def _claims_run_out(rig: EngineRig, worker: Worker, times: int) -> list[list[str]]:
    """Claim ``times`` times, each claim left unfinished (its worker was killed), the clock
    moved past the lease after each: what every claim handed out."""
    handed = []
    for _ in range(times):
        handed.append([s.event.id for s in deadletter.claim(worker.deps, 10)])
        rig.clock.advance(OPTIONS.event_lease_s + 1)
    return handed


def test_an_event_claimed_max_claims_times_is_parked_at_the_next_claim(
        engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True, options=OPTIONS)
    event_id = engine_rig.deliver(adf_event())
    assert _claims_run_out(engine_rig, worker, 3) == [[event_id]] * 3
    assert _stored(engine_rig.db, event_id).attempts == 3

    assert deadletter.claim(worker.deps, 10) == []
    stored = _stored(engine_rig.db, event_id)
    reason = "claimed 3 times without finishing: its stages crashed or stalled each time"
    assert (stored.state, stored.attempts, stored.reason) == ("parked", 3, reason)
    assert _records(engine_rig.db, event_id, "parked") == [
        ("engine", {"reason": reason, "claims": 3, "error": "", "resource": PIPELINE})]

    # never handed out again: not by the worker, not by a claim long after
    engine_rig.clock.advance(days=30)
    assert worker.drain() == 0
    assert inbox.claim(engine_rig.db, limit=10, lease_ms=1, now_ms=2**62) == []
    assert reruns(engine_rig.sandbox) == []
    assert len(_records(engine_rig.db, event_id, "parked")) == 1


def test_the_claim_itself_refuses_an_exhausted_event(engine_rig: EngineRig) -> None:
    event_id = engine_rig.deliver(adf_event())
    now = 1_000_000
    for n in range(2):
        [claimed] = inbox.claim(engine_rig.db, limit=5, lease_ms=10, now_ms=now + 100 * n,
                                max_claims=2)
        assert claimed.attempts == n + 1
    # Its lease ran out after 2 claims: the claim leaves it for the park, even uncalled.
    assert inbox.claim(engine_rig.db, limit=5, lease_ms=10, now_ms=now + 200,
                       max_claims=2) == []
    assert [s.event.id for s in inbox.exhausted(engine_rig.db, max_claims=2,
                                                now_ms=now + 200)] == [event_id]
    assert _stored(engine_rig.db, event_id).state == "processing"


def test_other_events_go_on_beside_a_parked_one(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, options=OPTIONS)
    stuck = engine_rig.deliver(adf_event())
    _claims_run_out(engine_rig, worker, 3)
    other = engine_rig.deliver(adf_event(dedup_key="azmon:other:Fired", resource="pl_other"))
    assert worker.drain() == 1
    assert (_stored(engine_rig.db, stuck).state, _stored(engine_rig.db, other).state) == (
        "parked", "done")


def test_an_error_a_retry_would_repeat_parks_at_once_and_a_replay_after_the_fix_runs_it(
        engine_rig: EngineRig) -> None:
    broken = engine_rig.worker(BAD_TEMPLATE, options=OPTIONS)
    event_id = engine_rig.deliver(adf_event())
    assert broken.drain() == 1
    stored = _stored(engine_rig.db, event_id)
    error = ("engine.yaml:adf-copy-failed/actions[0]: with.note: 'dict object' has no "
             "attribute 'no_such_field'")
    assert (stored.state, stored.attempts, stored.error) == ("parked", 1, error)
    assert stored.reason == f"its stages failed with an error that a retry would repeat: {error}"
    [(actor, data)] = _records(engine_rig.db, event_id, "parked")
    assert (actor, data["claims"], data["error"]) == ("engine", 1, error)
    assert broken.drain() == 0

    fixed = engine_rig.worker(RERUN, options=OPTIONS)  # the playbook is fixed...
    replayed = deadletter.replay(engine_rig.db, event_id, "alice", reason="template fixed",
                                 now=engine_rig.clock.now())  # ...then the event replayed
    assert (replayed.state, replayed.attempts, replayed.error, replayed.reason) == (
        "pending", 0, "", "replayed by alice: template fixed")
    assert _records(engine_rig.db, event_id, "replayed") == [
        ("alice", {"who": "alice", "reason": "template fixed", "resource": PIPELINE})]
    assert fixed.drain() == 1
    assert (_stored(engine_rig.db, event_id).state,
            _stored(engine_rig.db, event_id).attempts) == ("done", 1)


def test_a_bug_is_retried_when_its_lease_runs_out_then_parked_with_its_last_error(
        engine_rig: EngineRig) -> None:
    def rca(event: Any, history: Any) -> dict[str, Any]:
        raise ZeroDivisionError("division by zero")

    worker = engine_rig.worker(UNMATCHED, options=OPTIONS, rca=rca)
    event_id = engine_rig.deliver(adf_event())
    for claim in range(1, 4):
        with pytest.raises(ZeroDivisionError):
            worker.drain()
        stored = _stored(engine_rig.db, event_id)
        assert (stored.state, stored.attempts, stored.error) == (
            "processing", claim, "ZeroDivisionError: division by zero")
        assert worker.drain() == 0  # leased: not before its lease runs out
        engine_rig.clock.advance(OPTIONS.event_lease_s + 1)
    assert worker.drain() == 0
    stored = _stored(engine_rig.db, event_id)
    assert (stored.state, stored.reason) == (
        "parked", "claimed 3 times without finishing: its stages crashed or stalled each "
                  "time; last error: ZeroDivisionError: division by zero")


def test_only_a_parked_event_is_replayed(engine_rig: EngineRig) -> None:
    event_id = engine_rig.deliver(adf_event())
    with pytest.raises(deadletter.ReplayError) as pending:
        deadletter.replay(engine_rig.db, event_id, "alice")
    assert (str(pending.value), pending.value.missing) == (
        f"event {event_id} is pending, not parked: only a parked event can be replayed", False)
    with pytest.raises(deadletter.ReplayError) as unknown:
        deadletter.replay(engine_rig.db, "evt_nope", "alice")
    assert (str(unknown.value), unknown.value.missing) == ("unknown event evt_nope", True)
    assert audit_store.list_records(engine_rig.db, kind="replayed") == []


def test_failed_events_of_an_older_database_become_parked(tmp_path: Path,
                                                          engine_rig: EngineRig) -> None:
    path = tmp_path / "old.db"
    db = Database(path)
    [receipt] = inbox.insert(db, [adf_event().with_fingerprint()], {}, "/test")
    db.close()
    with sqlite3.connect(path) as conn:  # the schema and state an older version left
        conn.execute("ALTER TABLE events DROP COLUMN reason")
        conn.execute("UPDATE events SET state = 'failed', error = 'template broke'")
    conn.close()
    db = Database(path)
    try:
        stored = _stored(db, receipt.event_id)
        assert (stored.state, stored.error, stored.reason) == (
            "parked", "template broke",
            "its stages failed (marked failed before parking existed): template broke")
    finally:
        db.close()


def test_max_claims_must_be_at_least_one(tmp_path: Path) -> None:
    path = tmp_path / "remediator.toml"
    path.write_text("[engine]\nmax_claims = 0\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path, env={})
    assert str(raised.value) == (
        f"{path}: max_claims must be at least 1, got 0 - at `$.engine`")
    path.write_text("[engine]\nmax_claims = 2\n")
    assert load_settings(path, env={}).engine.max_claims == 2
