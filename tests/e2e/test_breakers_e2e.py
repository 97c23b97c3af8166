"""Circuit breakers per rule and target through the running engine: webhooks over HTTP, the
worker, the real SDK clients against the sandbox, the clock moved by hand. A breaker opens on
the target whose remediations failed (others go on), half-opens after its cool-off, closes on
the trial's success or opens again on its failure, is reset through the API and the dashboard
(audited with who), and outlives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import guards
from engine.actions.context import ActionContext
from engine.cloud.clients import Clients
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store.db import Database
from tests.e2e.test_guards_e2e import TARGET, alert, blocked, deliver, playbook
from tests.engine.actions.conftest import adf_event, cloud_settings
from tests.fixtures.engine import EngineRig
from tests.fixtures.service import ADMIN

PIPELINE_B = "pl_load_orders"
TARGET_B = f"adf:pipeline:adf-contoso-prod/{PIPELINE_B}"
RUN_B = "3f9d2a61-0c4e-4b7a-9e15-8d2c6b1a0f47"


def alert_b(n: int) -> dict[str, Any]:
    """The same failure reported for another pipeline of the same factory."""
    payload = alert(n)
    context = payload["data"]["alertContext"]
    context["properties"].update(PipelineName=PIPELINE_B, PipelineRunId=RUN_B)
    for dimension in context["condition"]["allOf"][0]["dimensions"]:
        if dimension["name"] == "PipelineName":
            dimension["value"] = PIPELINE_B
        if dimension["name"] == "PipelineRunId":
            dimension["value"] = RUN_B
    return payload


def creates(rig: Any, pipeline: str = "pl_ingest_sales_daily") -> int:
    return sum(1 for _, path in rig.mutating_calls()
               if path.endswith(f"/pipelines/{pipeline}/createRun"))


def opened(until: str, failures: int = 5, target: str = TARGET) -> str:
    return (f"circuit open for rule rerun on target {target} until {until} after {failures} "
            "consecutive failed remediations; reset it to remediate sooner")


def five_failures(rig: Any) -> None:
    """Five alerts for pipeline A whose reruns are refused (400): its breaker opens at
    09:00:04 (each delivery moves the clock one second) until 09:30:04."""
    rig.sandbox.script("adf", "adf.createRun", status=400, times=5)
    for n in range(5):
        deliver(rig, alert(n), settle=0)
    assert [i.state for i in rig.incidents()] == ["escalated"] * 5


def circuit_reasons(rig: Any, incident_id: str) -> list[tuple[str, str]]:
    return [(r.data["decision"], r.data["reason"]) for r in audit_store.list_records(
        rig.db, incident_id=incident_id, kind="guard") if r.data["name"] == "circuit"]


def test_five_failures_on_one_pipeline_open_its_breaker_only(service_rig: Any) -> None:
    rig = service_rig(playbook(), live=True)
    five_failures(rig)
    deliver(rig, alert(5), settle=0)
    rig.sandbox.failure("adf", "given-run", run_id=RUN_B, pipeline=PIPELINE_B)
    deliver(rig, alert_b(6))
    assert (creates(rig), creates(rig, PIPELINE_B)) == (5, 1)
    assert blocked(rig)[5:] == [("escalated", opened("2025-03-14T09:30:04Z"),
                                 [opened("2025-03-14T09:30:04Z")]),
                                ("resolved", "verified", [])]
    answer = rig.client.get("/api/breakers", headers=ADMIN)
    assert (answer.status_code, answer.json()) == (200, {"items": [
        {"rule_id": "rerun", "target": TARGET, "state": "open", "failures": 5,
         "opened_at": "2025-03-14T09:00:04Z", "until": "2025-03-14T09:30:04Z"}]})
    [record] = audit_store.list_records(rig.db, kind="breaker")
    assert record.data == {"rule_id": "rerun", "target": TARGET, "decision": "opened",
                           "failures": 5, "threshold": 5, "cool_off_s": 1800,
                           "until_ms": 1741944604000, "resource": "pl_ingest_sales_daily"}
    assert record.incident_id == rig.incidents()[2].id  # the fifth failure


def test_after_the_cool_off_one_trial_goes_through_and_its_success_closes(
        service_rig: Any) -> None:
    rig = service_rig(playbook(), live=True)
    five_failures(rig)
    rig.tick(30 * 60)
    deliver(rig, alert(5))
    assert creates(rig) == 6
    trial = rig.incidents()[0]
    assert (trial.state, trial.reason) == ("resolved", "verified")
    assert circuit_reasons(rig, trial.id) == [(
        "allow", f"circuit half-open for rule rerun on target {TARGET} since "
                 "2025-03-14T09:30:04Z: one trial remediation (success closes it, failure "
                 "opens it again)")]
    assert rig.client.get("/api/breakers", headers=ADMIN).json() == {"items": []}
    rig.sandbox.script("adf", "adf.createRun", status=400, times=1)
    deliver(rig, alert(6), settle=0)  # one failure after closing counts from zero again
    deliver(rig, alert(7))
    assert creates(rig) == 8
    assert [i.state for i in rig.incidents()[:2]] == ["resolved", "escalated"]


def test_a_failed_trial_opens_the_breaker_for_another_cool_off(service_rig: Any) -> None:
    rig = service_rig(playbook(), live=True)
    five_failures(rig)
    rig.tick(30 * 60)
    rig.sandbox.script("adf", "adf.createRun", status=400, times=1)
    deliver(rig, alert(5), settle=0)  # the trial, at 09:30:05: refused again
    deliver(rig, alert(6), settle=0)
    assert creates(rig) == 6
    assert blocked(rig)[6] == ("escalated", opened("2025-03-14T10:00:05Z", 6),
                               [opened("2025-03-14T10:00:05Z", 6)])
    rig.tick(29 * 60)
    deliver(rig, alert(7), settle=0)
    assert creates(rig) == 6  # still within the second cool-off


def test_a_rule_sets_its_own_threshold_and_cool_off(service_rig: Any) -> None:
    rig = service_rig(playbook("    breaker: {threshold: 2, cool_off: 10m}"), live=True)
    rig.sandbox.script("adf", "adf.createRun", status=400, times=2)
    for n in range(3):
        deliver(rig, alert(n), settle=0)
    assert creates(rig) == 2
    assert blocked(rig)[2][1] == opened("2025-03-14T09:10:01Z", 2)
    rig.tick(10 * 60)
    deliver(rig, alert(3))
    assert creates(rig) == 3
    assert blocked(rig)[3] == ("resolved", "verified", [])


def test_reset_through_the_api_closes_it_and_audits_who(service_rig: Any) -> None:
    rig = service_rig(playbook(), live=True)
    five_failures(rig)
    answer = rig.client.post("/api/breakers/rerun/reset", headers=ADMIN,
                             json={"target": TARGET, "reason": "linked service fixed"})
    reset = [{"rule_id": "rerun", "target": TARGET, "state": "open", "failures": 5,
              "opened_at": "2025-03-14T09:00:04Z", "until": "2025-03-14T09:30:04Z"}]
    assert (answer.status_code, answer.json()) == (200, {
        "rule_id": "rerun", "target": TARGET, "who": "admin", "reason": "linked service fixed",
        "reset": reset})
    [record] = [r for r in audit_store.list_records(rig.db, kind="breaker")
                if r.data["decision"] == "reset"]
    assert (record.actor, record.data) == ("admin", {
        "rule_id": "rerun", "target": TARGET, "decision": "reset", "who": "admin",
        "reason": "linked service fixed", "breakers": reset})
    deliver(rig, alert(5))
    assert creates(rig) == 6
    assert blocked(rig)[5] == ("resolved", "verified", [])
    again = rig.client.post("/api/breakers/rerun/reset", headers=ADMIN)
    assert (again.status_code, again.json()) == (404, {
        "error": "not_found", "detail": "no circuit breaker to reset for rule rerun"})


def test_reset_through_the_api_refuses_a_bad_body(service_rig: Any) -> None:
    rig = service_rig(playbook(), live=True)
    five_failures(rig)
    for body in ({"targte": TARGET}, {"reason": "x" * 501}, {"target": ""}):
        answer = rig.client.post("/api/breakers/rerun/reset", headers=ADMIN, json=body)
        assert answer.status_code == 400, body
    assert rig.client.post("/api/breakers/rerun/reset").status_code == 401
    assert len(rig.client.get("/api/breakers", headers=ADMIN).json()["items"]) == 1


def test_reset_through_the_dashboard_form(service_rig: Any) -> None:
    rig = service_rig(playbook(), live=True)
    five_failures(rig)
    page = rig.client.get("/breakers", headers=ADMIN).text
    assert '<form method="post" action="/breakers/rerun/reset">' in page
    assert f'<input type="hidden" name="target" value="{TARGET}">' in page
    assert '<td class="state">open</td>' in page
    response = rig.client.post("/breakers/rerun/reset", headers=ADMIN, follow_redirects=False,
                               data={"target": TARGET, "reason": "quota raised"})
    assert (response.status_code, response.headers["location"]) == (303, "/breakers")
    [record] = [r for r in audit_store.list_records(rig.db, kind="breaker")
                if r.data["decision"] == "reset"]
    assert (record.actor, record.data["who"], record.data["reason"], record.data["target"]) == (
        "admin (dashboard)", "admin (dashboard)", "quota raised", TARGET)
    assert "No circuit breaker is open." in rig.client.get("/breakers", headers=ADMIN).text
    again = rig.client.post("/breakers/rerun/reset", headers=ADMIN, data={"target": TARGET})
    assert again.status_code == 409
    assert f"no circuit breaker to reset for rule rerun on target {TARGET}" in again.text
    cross = rig.client.post("/breakers/rerun/reset", data={"target": TARGET},
                            headers={**ADMIN, "origin": "https://evil.example"})
    assert cross.status_code == 403


def test_the_breaker_outlives_a_restart(service_rig: Any, tmp_path: Path) -> None:
    rig = service_rig(playbook(), live=True)
    five_failures(rig)
    again = Database(rig.db.path)  # what a restarted process opens
    (tmp_path / "new").mkdir()
    clients = Clients(cloud_settings(rig.sandbox))
    restarted = EngineRig(db=again, clock=rig.clock, sandbox=rig.sandbox, tmp=tmp_path / "new",
                          ctx=ActionContext(clients=clients))
    try:
        worker = restarted.worker(playbook(), live=True)
        assert guards.list_breakers(again, now=rig.clock.now()) == [
            {"rule_id": "rerun", "target": TARGET, "state": "open", "failures": 5,
             "opened_at": "2025-03-14T09:00:04Z", "until": "2025-03-14T09:30:04Z"}]
        restarted.deliver(adf_event(dedup_key="after-restart"))
        worker.drain()
        [newest, *_] = incidents_store.list_incidents(again)
        assert (newest.target, newest.state, newest.reason) == (
            TARGET, "escalated", opened("2025-03-14T09:30:04Z"))
        rig.clock.advance(30 * 60)
        restarted.deliver(adf_event(dedup_key="after-cool-off"))
        worker.drain()
        assert creates(rig) == 6
    finally:
        for built in restarted.workers:
            built.stop()
        clients.close()
        again.close()
