"""Events through the worker: dry-run plans only, live reruns once, idempotent on re-claim,
verification resolves, failures retry then escalate, a resolution cancels what is pending."""

from __future__ import annotations

import sqlite3
from typing import Any

from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store.db import Database
from tests.engine.actions.conftest import PIPELINE, adf_event
from tests.fixtures.engine import EngineRig

RERUN = """\
name: engine
rules:
  - id: adf-copy-failed
    match: {source: adf, error_code: "2200"}
    actions:
      - action: adf.rerun_pipeline
        with: {start_from_failure: true}
    verify: {timeout: 30m, interval: 1m}
    budget: {max_attempts: 2, window: 24h}
    on_failure:
      - action: noop
        with: {note: "still failing after {{ attempts }} attempts"}
"""


def reruns(sandbox: Any) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls("adf") if c["path"].endswith("/createRun")]


def kinds(rig: EngineRig, incident_id: str) -> list[str]:
    return [r.kind for r in audit_store.list_records(rig.db, incident_id=incident_id,
                                                     limit=1000)]


def only_incident(rig: EngineRig) -> incidents_store.Incident:
    [incident] = incidents_store.list_incidents(rig.db)
    return incident


def test_dry_run_plans_audits_and_calls_nothing(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN)
    event_id = engine_rig.deliver(adf_event())
    assert worker.drain() == 1

    records = audit_store.list_records(engine_rig.db, event_id=event_id, limit=100)
    assert [r.kind for r in records] == [
        "received", "matched", "incident", "guard", "guard", "guard", "guard", "guard",
        "guard", "guard", "action_planned",
    ]
    guards = {r.data["name"]: r.data["decision"] for r in records if r.kind == "guard"}
    assert guards == {"circuit": "allow", "budget": "allow", "cooldown": "allow",
                      "lock": "allow", "dry_run": "dry_run", "approval": "allow",
                      "pause": "allow"}
    planned = records[-1].data
    assert planned["dry_run"] is True
    assert planned["description"].startswith("would do: ")
    assert planned["reference"] == "engine.yaml:adf-copy-failed/actions[0]"
    assert reruns(engine_rig.sandbox) == []
    incident = only_incident(engine_rig)
    assert incident.state == "ignored"
    assert incident.reason.startswith("dry-run: would do: ")
    assert audit_store.verify_chain(engine_rig.db).ok


def test_live_reruns_once_then_verification_resolves(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    engine_rig.deliver(adf_event())
    worker.drain()
    assert len(reruns(engine_rig.sandbox)) == 1
    incident = only_incident(engine_rig)
    assert incident.state == "verifying"

    assert worker.scheduler.tick().probed == 0  # not due before the interval
    engine_rig.clock.advance(60)
    worker.scheduler.tick()  # the emulator answers InProgress first
    assert only_incident(engine_rig).state == "verifying"
    engine_rig.clock.advance(60)
    worker.scheduler.tick()
    incident = only_incident(engine_rig)
    assert (incident.state, incident.reason) == ("resolved", "verified")
    assert kinds(engine_rig, incident.id)[-3:] == ["verification", "verification", "resolution"]
    assert len(reruns(engine_rig.sandbox)) == 1
    assert audit_store.verify_chain(engine_rig.db).ok


def test_the_same_event_claimed_twice_calls_once(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    event_id = engine_rig.deliver(adf_event())
    worker.drain()
    # The lease ran out (a worker that died after acting): the event is claimed again.
    from engine.store import inbox
    with engine_rig.db.write() as conn:
        conn.execute("UPDATE events SET state = 'processing', lease_until_ms = 0 WHERE id = ?",
                     (event_id,))
    assert inbox.claim(engine_rig.db, limit=5, lease_ms=1)[0].attempts == 2
    with engine_rig.db.write() as conn:
        conn.execute("UPDATE events SET lease_until_ms = 0 WHERE id = ?", (event_id,))
    assert worker.drain() == 1
    assert len(reruns(engine_rig.sandbox)) == 1
    assert len(actions_store.for_incident(engine_rig.db, only_incident(engine_rig).id)) == 1


def test_failed_verification_retries_then_escalates(engine_rig: EngineRig) -> None:
    engine_rig.sandbox.script("adf", "adf.createRun", fail_rerun=True, times=5)
    worker = engine_rig.worker(RERUN, live=True)
    engine_rig.deliver(adf_event())
    worker.drain()
    for _ in range(2):
        engine_rig.clock.advance(60)
        worker.scheduler.tick()
    incident = only_incident(engine_rig)
    assert (incident.state, incident.attempts) == ("verifying", 2)
    assert len(reruns(engine_rig.sandbox)) == 2
    for _ in range(2):
        engine_rig.clock.advance(60)
        worker.scheduler.tick()
    incident = only_incident(engine_rig)
    assert incident.state == "escalated"
    assert "budget spent: 2 of 2 attempts" in incident.reason
    rows = actions_store.for_incident(engine_rig.db, incident.id)
    assert [(r.action, r.phase, r.state) for r in rows] == [
        ("adf.rerun_pipeline", "remediate", "succeeded"),
        ("adf.rerun_pipeline", "remediate", "succeeded"),
        ("noop", "on_failure", "succeeded"),
    ]
    assert [r.probe_state for r in rows[:2]] == ["failed", "failed"]
    assert len(reruns(engine_rig.sandbox)) == 2
    assert audit_store.verify_chain(engine_rig.db).ok


DELAYED = RERUN.replace("with: {start_from_failure: true}",
                        "with: {start_from_failure: true}\n        delay: 15m")


def test_a_delayed_action_waits_for_its_time(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(DELAYED, live=True)
    engine_rig.deliver(adf_event())
    worker.drain()
    assert only_incident(engine_rig).state == "remediating"
    engine_rig.clock.advance(minutes=14, seconds=59)
    assert worker.scheduler.tick().ran == 0
    assert reruns(engine_rig.sandbox) == []
    engine_rig.clock.advance(1)
    assert worker.scheduler.tick().ran == 1
    assert len(reruns(engine_rig.sandbox)) == 1


def test_a_resolved_alert_cancels_the_pending_action(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(DELAYED, live=True)
    alert = {"alert_id": "/subscriptions/x/alerts/9d3a"}
    firing = adf_event()
    engine_rig.deliver(adf_event(attributes={**firing.attributes, **alert}))
    worker.drain()
    engine_rig.deliver(adf_event(status="resolved", dedup_key="azmon:9d3a:Resolved",
                                 message="resolved",
                                 attributes={**firing.attributes, **alert}))
    worker.drain()
    incident = only_incident(engine_rig)
    assert incident.state == "resolved"
    [row] = actions_store.for_incident(engine_rig.db, incident.id)
    assert row.state == "cancelled"
    engine_rig.clock.advance(minutes=20)
    assert worker.scheduler.tick().ran == 0
    assert reruns(engine_rig.sandbox) == []


def test_no_rule_goes_to_rca(engine_rig: EngineRig) -> None:
    seen: list[str] = []

    def rca(event: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
        seen.append(event.error_code)
        return {"summary": "upstream file late", "history": len(history)}

    worker = engine_rig.worker(RERUN, live=True, rca=rca)
    engine_rig.deliver(adf_event(error_code="UserErrorSqlTimeout"))
    worker.drain()
    incident = only_incident(engine_rig)
    assert (incident.state, incident.reason) == ("escalated", "no rule matched")
    [record] = audit_store.list_records(engine_rig.db, kind="rca")
    assert record.data["analysis"] == {"summary": "upstream file late", "history": 0}
    assert seen == ["UserErrorSqlTimeout"]
    assert reruns(engine_rig.sandbox) == []
    assert PIPELINE in incident.target


GROUPS = """\
name: engine
rules:
  - id: blob-missing
    match: {{source: adf, message: {{regex: "{pattern} (?P<box>\\\\w+)"}}}}
    actions:
      - action: noop
        delay: 15m
        with: {{note: "box {{{{ match.box }}}}"}}
"""


def test_a_row_runs_with_the_groups_of_its_planning_not_a_second_match(
        engine_rig: EngineRig) -> None:
    """The row renders its action again when it runs (stored parameters are redacted), from
    the match's groups kept with the incident: a reload in between that would match the event
    differently (here: not at all) does not change what the planned action does."""
    worker = engine_rig.worker(GROUPS.format(pattern="Container"), live=True)
    engine_rig.deliver(adf_event(message="Container raw is missing"))
    worker.drain()
    (engine_rig.tmp / "playbooks" / "engine.yaml").write_text(GROUPS.format(pattern="Bucket"))
    assert worker.deps.playbooks.reload() == []
    engine_rig.clock.advance(minutes=15)
    assert worker.scheduler.tick().ran == 1
    [done] = audit_store.list_records(engine_rig.db, kind="action_succeeded")
    assert done.data["detail"] == "nothing done: box raw"


def test_an_incident_from_before_the_kept_groups_renders_with_its_match_found_again(
        engine_rig: EngineRig, tmp_path: Any) -> None:
    """A database made before incidents kept their match's groups gets the column (empty) on
    opening; a row of such an incident renders with the groups found again from its event."""
    old = tmp_path / "old.db"
    Database(old).close()
    conn = sqlite3.connect(old)
    conn.execute("ALTER TABLE incidents DROP COLUMN matches")
    conn.close()
    upgraded = Database(old)
    try:
        assert upgraded.utils["incidents"].columns_dict["matches"] is str
    finally:
        upgraded.close()
    worker = engine_rig.worker(GROUPS.format(pattern="Container"), live=True)
    engine_rig.deliver(adf_event(message="Container raw is missing"))
    worker.drain()
    with engine_rig.db.write() as write:
        write.execute("UPDATE incidents SET matches = '{}'")  # as an upgraded row has it
    engine_rig.clock.advance(minutes=15)
    assert worker.scheduler.tick().ran == 1
    [done] = audit_store.list_records(engine_rig.db, kind="action_succeeded")
    assert done.data["detail"] == "nothing done: box raw"
