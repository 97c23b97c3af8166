"""Each guard blocking with its reason, and approval, pause and breaker reset letting go."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine import guards
from engine.clock import to_ms
from engine.config import load_settings
from engine.errors import ConfigError
from engine.runtime.pipeline import target_of
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store import state as state_store
from engine.store.db import Database
from tests.engine.actions.conftest import ADF_RUN as RUN
from tests.engine.actions.conftest import adf_event
from tests.engine.test_worker import RERUN, reruns
from tests.fixtures.engine import EngineRig

APPROVAL = RERUN.replace("    verify:", "    approval: required\n    verify:")
COOLDOWN = RERUN.replace("    verify:", "    cooldown: 10m\n    verify:")


def guard_reasons(rig: EngineRig, name: str) -> list[tuple[str, str]]:
    return [(r.data["decision"], r.data["reason"])
            for r in audit_store.list_records(rig.db, kind="guard", limit=1000)
            if r.data["name"] == name]


def newest(rig: EngineRig) -> incidents_store.Incident:
    return incidents_store.list_incidents(rig.db)[0]


def test_approval_waits_then_approve_runs(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(APPROVAL, live=True)
    engine_rig.deliver(adf_event())
    worker.drain()
    incident = newest(engine_rig)
    assert incident.state == "waiting_approval"
    assert worker.scheduler.tick().ran == 0
    assert reruns(engine_rig.sandbox) == []
    guards.approve(engine_rig.db, incident.id, "alice", now=engine_rig.clock.now())
    assert worker.scheduler.tick().ran == 1
    assert len(reruns(engine_rig.sandbox)) == 1
    [record] = audit_store.list_records(engine_rig.db, kind="approval")
    assert (record.actor, record.data["decision"]) == ("alice", "approved")
    with pytest.raises(guards.GuardError,
                       match=f"incident {incident.id} is verifying, not waiting_approval"):
        guards.approve(engine_rig.db, incident.id, "bob")


def test_reject_runs_nothing(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(APPROVAL, live=True)
    engine_rig.deliver(adf_event())
    worker.drain()
    incident = newest(engine_rig)
    guards.reject(engine_rig.db, incident.id, "alice", reason="maintenance window")
    assert worker.scheduler.tick().ran == 0
    assert reruns(engine_rig.sandbox) == []
    incident = newest(engine_rig)
    assert (incident.state, incident.reason) == ("ignored",
                                                 "rejected by alice: maintenance window")


def test_approval_expiry_goes_to_on_failure(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(APPROVAL, live=True)
    engine_rig.deliver(adf_event())
    worker.drain()
    engine_rig.clock.advance(hours=24)
    assert worker.scheduler.tick().expired == 1
    incident = newest(engine_rig)
    assert (incident.state, incident.reason) == ("escalated", "approval expired")
    assert reruns(engine_rig.sandbox) == []


def test_pause_holds_actions_and_resume_runs_them(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    guards.pause(engine_rig.db, "alice", now=engine_rig.clock.now())
    engine_rig.deliver(adf_event())
    assert worker.drain() == 1  # intake goes on
    assert guard_reasons(engine_rig, "pause") == [
        ("paused", "actions paused by alice; they run after resume")]
    assert worker.scheduler.tick().ran == 0
    assert reruns(engine_rig.sandbox) == []
    guards.resume(engine_rig.db, "alice", now=engine_rig.clock.now())
    assert worker.scheduler.tick().ran == 1
    assert len(reruns(engine_rig.sandbox)) == 1


def _fail_first(rig: EngineRig, worker: Any) -> None:
    """One incident whose remediation is under way (verifying) on the pipeline."""
    rig.deliver(adf_event())
    worker.drain()


def test_target_lock_blocks_a_second_incident_on_the_same_target(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    _fail_first(engine_rig, worker)
    first = newest(engine_rig)
    engine_rig.deliver(adf_event(dedup_key="other", message="Copy failed again differently"))
    worker.drain()
    second = newest(engine_rig)
    assert second.id != first.id
    assert (second.state, second.reason) == (
        "ignored", f"target {first.target} is locked by incident {first.id}")
    assert len(reruns(engine_rig.sandbox)) == 1


def test_cooldown_blocks_a_new_incident_soon_after(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(COOLDOWN, live=True)
    _fail_first(engine_rig, worker)
    for _ in range(2):
        engine_rig.clock.advance(60)
        worker.scheduler.tick()
    assert newest(engine_rig).state == "resolved"
    engine_rig.clock.advance(60)
    engine_rig.deliver(adf_event(dedup_key="again"))
    worker.drain()
    incident = newest(engine_rig)
    assert (incident.state, incident.reason) == (
        "ignored", f"cooldown: rule adf-copy-failed acted on {incident.target} 180s ago "
                   "(cooldown 600s)")
    assert len(reruns(engine_rig.sandbox)) == 1


def test_budget_spent_escalates(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    for n in range(3):  # three failed runs of the pipeline (a rerun run needs no other)
        engine_rig.deliver(adf_event(dedup_key=f"d{n}", run_id=f"{RUN[:-4]}{n:04x}"))
        worker.drain()
        for _ in range(2):
            engine_rig.clock.advance(60)
            worker.scheduler.tick()
    incident = newest(engine_rig)
    assert incident.state == "escalated"
    assert incident.reason == (f"budget spent: 2 of 2 attempts in 86400s per target "
                               f"{incident.target}")
    assert len(reruns(engine_rig.sandbox)) == 2


def test_circuit_opens_after_consecutive_failures_and_reset_closes_it(
    engine_rig: EngineRig,
) -> None:
    target = target_of(adf_event())
    now_ms = to_ms(engine_rig.clock.now())
    for _ in range(5):
        state_store.record_outcome(engine_rig.db, "adf-copy-failed", target, success=False,
                                   threshold=5, cool_off_ms=1_800_000, now_ms=now_ms)
    worker = engine_rig.worker(RERUN, live=True)
    engine_rig.deliver(adf_event())
    worker.drain()
    incident = newest(engine_rig)
    assert (incident.state, incident.reason) == (
        "escalated", f"circuit open for rule adf-copy-failed on target {target} until "
                     "2025-03-14T09:30:00Z after 5 consecutive failed remediations; reset it "
                     "to remediate sooner")
    assert reruns(engine_rig.sandbox) == []
    guards.reset_breaker(engine_rig.db, "adf-copy-failed", "alice")
    engine_rig.deliver(adf_event(dedup_key="after-reset"))
    worker.drain()
    assert len(reruns(engine_rig.sandbox)) == 1


def test_a_rule_wide_breaker_of_an_older_database_is_treated_as_expired(
    engine_rig: EngineRig, tmp_path: Path,
) -> None:
    """Before breakers were per target, an open one (table ``breakers``, keyed by rule)
    stopped the rule everywhere for good; opening such a database drops it."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE breakers (rule_id TEXT PRIMARY KEY, failures INTEGER, "
                     "open INTEGER, opened_ms INTEGER, updated_ms INTEGER)")
        conn.execute("INSERT INTO breakers VALUES ('adf-copy-failed', 5, 1, 1, 1)")
    conn.close()
    old = Database(path)
    try:
        assert "breakers" not in old.utils.table_names()
        rig = EngineRig(db=old, clock=engine_rig.clock, sandbox=engine_rig.sandbox,
                        tmp=engine_rig.tmp, ctx=engine_rig.ctx)
        worker = rig.worker(RERUN, live=True)
        rig.deliver(adf_event())
        worker.drain()
        assert len(reruns(engine_rig.sandbox)) == 1
        assert guard_reasons(rig, "circuit") == [
            ("allow", f"circuit closed for rule adf-copy-failed on target "
                      f"{target_of(adf_event())} (0 consecutive failures)")]
        worker.stop()
    finally:
        old.close()


@pytest.mark.parametrize("engine", [{"breaker_threshold": 0}, {"breaker_cool_off_s": 0}])
def test_breaker_settings_are_checked(engine: dict[str, int]) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, env={}, engine=engine)
    assert str(raised.value) == ("settings: breaker_threshold and breaker_cool_off_s must be "
                                 "at least 1 - at `$.engine`")
