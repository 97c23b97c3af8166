"""Every guard through the running engine: webhooks over HTTP, the worker, the real SDK clients
and the sandbox; each test checks which cloud calls happened and the reason the engine gives
(in the incident and its audit timeline). The clock is moved by hand."""

from __future__ import annotations

import json
from typing import Any

from engine import guards
from engine.store import audit as audit_store
from tests.e2e.test_actions_e2e import JOB, TASK
from tests.e2e.test_remediation import BLOB, CREATE_RUN, RUN
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN

TARGET = "adf:pipeline:adf-contoso-prod/pl_ingest_sales_daily"


def playbook(extra: str = "", action: str = "adf.rerun_pipeline", match: str = "{source: adf}",
             rule_id: str = "rerun") -> str:
    return f"""
name: guards
rules:
  - id: {rule_id}
    match: {match}
    actions:
      - action: {action}
{extra}
"""


def alert(n: int) -> dict[str, Any]:
    """The blob-missing alert as the n-th distinct firing: its own alert id (so not a
    duplicate of the others) and its own failed run (a run already rerun needs nothing: the
    pre-check would skip a second rerun of the same run)."""
    payload = json.loads(json.dumps(load_sample(BLOB)).replace(RUN, RUN[:-4] + f"{n:04x}"))
    essentials = payload["data"]["essentials"]
    essentials["alertId"] = essentials["alertId"][:-4] + f"{n:04d}"
    return payload


def deliver(rig: Any, payload: Any, endpoint: str = "azure-monitor", *, settle: int = 3) -> None:
    """Post, process, and let the probe read the rerun until it is terminal."""
    rig.post(endpoint, payload)
    assert rig.run() == 1
    rig.tick(1)
    for _ in range(settle):
        rig.tick(60)


def guard_reasons(rig: Any, incident_id: str) -> list[str]:
    """The reasons of the blocking guard decisions in the incident's audit timeline."""
    return [r.data["reason"] for r in audit_store.list_records(
        rig.db, incident_id=incident_id, limit=1000)
        if r.kind == "guard" and r.data["decision"] != "allow"]


def creates(rig: Any) -> int:
    return rig.mutating_calls().count(CREATE_RUN)


def blocked(rig: Any) -> list[tuple[str, str, list[str]]]:
    """(state, reason, blocking guard reasons) of every incident, oldest first."""
    return [(i.state, i.reason, guard_reasons(rig, i.id)) for i in reversed(rig.incidents())]


BUDGET_SPENT = f"budget spent: 2 of 2 attempts in 86400s per target {TARGET}"


def test_budget_blocks_the_third_failure_of_a_target(service_rig: Any) -> None:
    rig = service_rig(playbook("    budget: {max_attempts: 2, window: 24h}"), live=True)
    for n in range(3):
        deliver(rig, alert(n))
    assert creates(rig) == 2
    assert blocked(rig) == [("resolved", "verified", []), ("resolved", "verified", []),
                            ("escalated", BUDGET_SPENT, [BUDGET_SPENT])]


def test_cooldown_ignores_a_new_failure_then_lets_one_through(service_rig: Any) -> None:
    rig = service_rig(playbook("    cooldown: 10m"), live=True)
    deliver(rig, alert(1))
    deliver(rig, alert(2))
    reason = f"cooldown: rule rerun acted on {TARGET} 181s ago (cooldown 600s)"
    assert blocked(rig) == [("resolved", "verified", []), ("ignored", reason, [reason])]
    assert creates(rig) == 1
    rig.tick(10 * 60)
    deliver(rig, alert(3))
    assert creates(rig) == 2
    assert blocked(rig)[2] == ("resolved", "verified", [])


def test_one_remediation_at_a_time_per_target(service_rig: Any) -> None:
    """A job failure and a task failure of the same job: the second waits its turn out."""
    rig = service_rig(playbook("    verify: {timeout: 1h, interval: 1m}",
                               action="databricks.repair_run", match="{source: databricks}"),
                      live=True)
    deliver(rig, load_sample(JOB), "databricks-monitor", settle=0)
    first = rig.incidents()[0]
    assert first.state == "verifying"
    deliver(rig, load_sample(TASK), "databricks-monitor", settle=0)
    second = rig.incidents()[0]
    reason = f"target databricks:job:816305927331 is locked by incident {first.id}"
    assert (second.state, second.reason, guard_reasons(rig, second.id)) == (
        "ignored", reason, [reason])
    repairs = [c for c in rig.mutating_calls() if c[1].endswith("/jobs/runs/repair")]
    assert len(repairs) == 1


def test_circuit_breaker_opens_after_five_failed_remediations_and_resets(
        service_rig: Any) -> None:
    rig = service_rig(playbook(), live=True)
    rig.sandbox.script("adf", "adf.createRun", status=400, times=5)
    for n in range(5):
        deliver(rig, alert(n), settle=0)
    assert [i.state for i in rig.incidents()] == ["escalated"] * 5
    deliver(rig, alert(5), settle=0)
    opened = (f"circuit open for rule rerun on target {TARGET} until 2025-03-14T09:30:04Z "
              "after 5 consecutive failed remediations; reset it to remediate sooner")
    assert blocked(rig)[5] == ("escalated", opened, [opened])
    assert creates(rig) == 5  # the sixth failure only escalated
    guards.reset_breaker(rig.db, "rerun", "ops", now=rig.clock.now())
    deliver(rig, alert(6))
    assert creates(rig) == 6
    assert blocked(rig)[6] == ("resolved", "verified", [])


REQUIRES = "rule rerun requires approval"


def test_approval_rejected_through_the_api_calls_nothing(service_rig: Any) -> None:
    rig = service_rig(playbook("    approval: required"), live=True)
    deliver(rig, alert(1))
    [incident] = rig.incidents()
    assert (incident.state, guard_reasons(rig, incident.id)) == ("waiting_approval", [REQUIRES])
    answer = rig.client.post(f"/api/incidents/{incident.id}/reject", headers=ADMIN)
    assert answer.status_code == 200
    assert answer.json() == {"id": incident.id, "decision": "rejected", "who": "admin"}
    rig.tick(60)
    assert rig.mutating_calls() == []
    assert blocked(rig) == [("ignored", "rejected by admin", [REQUIRES])]
    again = rig.client.post(f"/api/incidents/{incident.id}/approve", headers=ADMIN)
    assert (again.status_code, again.json()) == (409, {
        "error": "conflict", "detail": f"incident {incident.id} is ignored, not waiting_approval"})


def test_approval_approved_through_the_api_remediates(service_rig: Any) -> None:
    rig = service_rig(playbook("    approval: required"), live=True)
    deliver(rig, alert(1))
    [incident] = rig.incidents()
    assert rig.client.post(f"/api/incidents/{incident.id}/approve",
                           headers=ADMIN).status_code == 200
    for _ in range(3):
        rig.tick(60)
    assert rig.mutating_calls() == [CREATE_RUN]
    assert blocked(rig) == [("resolved", "verified", [REQUIRES])]


def test_global_pause_holds_the_action_keeps_intake_and_resume_runs_it(
        service_rig: Any) -> None:
    rig = service_rig(playbook(), live=True)
    assert rig.client.post("/api/pause", headers=ADMIN).json() == {"paused": True,
                                                                   "who": "admin"}
    deliver(rig, alert(1))
    [incident] = rig.incidents()
    held = "actions paused by admin; they run after resume"
    assert guard_reasons(rig, incident.id) == [held]
    assert rig.mutating_calls() == []
    status = rig.client.get("/api/status", headers=ADMIN).json()
    assert (status["mode"], status["paused_by"]) == ("PAUSED", "admin")
    assert rig.client.post("/api/resume", headers=ADMIN).status_code == 200
    for _ in range(3):
        rig.tick(60)
    assert rig.mutating_calls() == [CREATE_RUN]
    assert blocked(rig) == [("resolved", "verified", [held])]
