"""Retries of a failed call: backoff with Retry-After honoured, the retry limit then
escalation with ``on_failure``, a permanent error escalating at once, a hung call timed out
and retried; a retry moves the row, not the incident."""

from __future__ import annotations

from typing import Any

from engine.clock import to_ms
from engine.config import EngineSettings
from engine.runtime.worker import Worker
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from tests.engine.actions.conftest import adf_event
from tests.engine.test_worker import RERUN, kinds, only_incident, reruns
from tests.fixtures.engine import EngineRig

OPTIONS = EngineSettings(retry_limit=2, retry_backoff_s=60)
REF = "engine.yaml:adf-copy-failed/actions[0]"
WHERE = "adf.rerun_pipeline[factory=adf-contoso-prod pipeline=pl_ingest_sales_daily]"


def first_call_fails(rig: EngineRig, **fault: Any) -> Worker:
    """A live worker whose first rerun meets ``fault`` (scripted on the sandbox), after one
    event was delivered and processed."""
    rig.sandbox.script("adf", "adf.createRun", **fault)
    worker = rig.worker(RERUN, live=True, options=OPTIONS)
    rig.deliver(adf_event())
    worker.drain()
    return worker


def failures(rig: EngineRig) -> list[dict[str, Any]]:
    return [r.data for r in audit_store.list_records(rig.db, kind="action_failed", limit=100)]


def test_429_waits_for_retry_after_then_503_backs_off_then_succeeds(engine_rig: EngineRig) -> None:
    rig = engine_rig
    rig.sandbox.script("adf", "adf.createRun", status=429, retry_after=300)
    rig.sandbox.script("adf", "adf.createRun", status=503)
    worker = rig.worker(RERUN, live=True, options=OPTIONS)
    rig.deliver(adf_event())
    start = rig.clock.now()
    worker.drain()
    [row] = actions_store.for_incident(rig.db, only_incident(rig).id)
    assert (row.state, row.retries, row.due_ms) == ("scheduled", 1, to_ms(start) + 300_000)
    [first] = failures(rig)
    assert (first["retry"], first["delay_s"], first["retry_limit"]) == (1, 300.0, 2)
    assert first["error"] == (f"{WHERE}: 429 Too Many Requests (TooManyRequests: Scripted "
                              "failure 429 (TooManyRequests).) (retry after 300 s)")

    rig.clock.advance(299)
    assert worker.scheduler.tick().ran == 0  # Retry-After is honoured, not cut short
    rig.clock.advance(1)
    assert worker.scheduler.tick().ran == 1  # 503 now: the backoff doubles to 120 s
    [row] = actions_store.for_incident(rig.db, only_incident(rig).id)
    assert (row.state, row.retries, row.due_ms) == ("scheduled", 2, to_ms(rig.clock.now())
                                                    + 120_000)
    assert failures(rig)[-1]["delay_s"] == 120.0
    rig.clock.advance(120)
    assert worker.scheduler.tick().ran == 1
    assert only_incident(rig).state == "verifying"
    assert [c["status"] for c in reruns(rig.sandbox)] == [429, 503, 200]
    started = [r.data["retry"] for r in audit_store.list_records(rig.db, kind="action_started")]
    assert started == [0, 1, 2]
    assert audit_store.verify_chain(rig.db).ok


def test_retries_spent_escalate_and_run_on_failure(engine_rig: EngineRig) -> None:
    rig = engine_rig
    rig.sandbox.script("adf", "adf.createRun", status=503, times=3)
    worker = rig.worker(RERUN, live=True, options=OPTIONS)
    rig.deliver(adf_event())
    worker.drain()
    for seconds in (60, 120):
        rig.clock.advance(seconds)
        assert worker.scheduler.tick().ran == 1
    incident = only_incident(rig)
    assert incident.state == "escalated"
    assert incident.reason == (f"{REF}: {WHERE}: 503 Service Unavailable (ServiceUnavailable: "
                               "Scripted failure 503 (ServiceUnavailable).) (gave up after 2 "
                               "retries)")
    rows = actions_store.for_incident(rig.db, incident.id)
    assert [(r.action, r.phase, r.state) for r in rows] == [
        ("adf.rerun_pipeline", "remediate", "failed"), ("noop", "on_failure", "succeeded")]
    assert len(reruns(rig.sandbox)) == 3
    assert kinds(rig, incident.id).count("action_failed") == 3
    assert "escalation" in kinds(rig, incident.id)


def test_a_permanent_error_escalates_at_once(engine_rig: EngineRig) -> None:
    rig = engine_rig
    worker = first_call_fails(rig, status=404)
    incident = only_incident(rig)
    assert incident.state == "escalated"
    assert incident.reason == (f"{REF}: {WHERE}: 404 Not Found (NotFound: Scripted failure 404 "
                               "(NotFound).)")
    assert [r.state for r in actions_store.for_incident(rig.db, incident.id)] == [
        "failed", "succeeded"]
    assert len(reruns(rig.sandbox)) == 1
    rig.clock.advance(hours=1)
    worker.scheduler.tick()
    assert len(reruns(rig.sandbox)) == 1


def test_a_hung_call_times_out_and_is_retried(engine_rig: EngineRig) -> None:
    rig = engine_rig
    worker = first_call_fails(rig, hang=4)  # the client's 2 s read timeout ends the call
    [row] = actions_store.for_incident(rig.db, only_incident(rig).id)
    assert (row.state, row.retries) == ("scheduled", 1)
    assert failures(rig)[0]["delay_s"] == 60.0
    rig.clock.advance(60)
    assert worker.scheduler.tick().ran == 1
    assert only_incident(rig).state == "verifying"


def test_incidents_store_untouched_by_retries(engine_rig: EngineRig) -> None:
    """A retry is a row moved to a later due time: the incident stays remediating."""
    rig = engine_rig
    first_call_fails(rig, status=503)
    [incident] = incidents_store.list_incidents(rig.db)
    assert (incident.state, incident.attempts) == ("remediating", 1)
