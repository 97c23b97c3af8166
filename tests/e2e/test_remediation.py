"""End to end: webhook over HTTP -> worker -> real SDK -> sandbox emulator, with the shipped
playbooks (or a small one where a guard needs it), the clock moved by hand."""

from __future__ import annotations

import copy
from typing import Any

from tests.fixtures.common import ROOT, load_sample
from tests.fixtures.service import ADMIN

BLOB = "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json"
RUN = "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"
CREATE_RUN = ("adf", "/subscriptions/5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17/resourceGroups/"
                     "rg-dataplatform-prod/providers/Microsoft.DataFactory/factories/"
                     "adf-contoso-prod/pipelines/pl_ingest_sales_daily/createRun")


def _shipped(service_rig: Any, *, live: bool) -> Any:
    return service_rig(live=live, playbooks_dir=ROOT / "playbooks")


def _create_runs(rig: Any) -> list[dict[str, Any]]:
    return [c for c in rig.sandbox.calls("adf") if c["path"].endswith("/createRun")]


def test_dry_run_by_default_makes_no_mutating_call(service_rig: Any) -> None:
    rig = _shipped(service_rig, live=False)
    rig.post("azure-monitor", load_sample(BLOB))
    assert rig.run() == 1
    rig.tick(16 * 60)
    rig.tick(3 * 60)
    assert rig.mutating_calls() == []
    [incident] = rig.incidents()
    assert (incident.state, incident.rule_id) == ("ignored", "adf-source-blob-missing")
    assert incident.reason.startswith("dry-run: would do: ")


def test_live_blob_missing_waits_reruns_from_failure_and_verifies(service_rig: Any) -> None:
    rig = _shipped(service_rig, live=True)
    rig.post("azure-monitor", load_sample(BLOB))
    assert rig.run() == 1
    rig.tick(60)
    assert _create_runs(rig) == []  # the 15-minute delay holds
    rig.tick(15 * 60)
    [call] = _create_runs(rig)
    assert (call["service"], call["path"]) == CREATE_RUN
    assert (call["query"]["referencePipelineRunId"], call["query"]["isRecovery"],
            call["query"]["startFromFailure"]) == (RUN, "true", "true")
    rig.tick(2 * 60)
    rig.tick(2 * 60)
    [incident] = rig.incidents()
    assert (incident.state, incident.reason) == ("resolved", "verified")
    assert rig.mutating_calls() == [CREATE_RUN]


def test_the_same_webhook_twice_is_one_remediation(service_rig: Any) -> None:
    rig = _shipped(service_rig, live=True)
    first = rig.post("azure-monitor", load_sample(BLOB))
    second = rig.post("azure-monitor", load_sample(BLOB))
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert second["event_id"] == first["event_id"]
    rig.run()
    rig.tick(16 * 60)
    assert len(rig.incidents()) == 1
    assert rig.mutating_calls() == [CREATE_RUN]


def test_a_resolved_alert_cancels_the_pending_rerun(service_rig: Any) -> None:
    rig = _shipped(service_rig, live=True)
    firing = load_sample(BLOB)
    rig.post("azure-monitor", firing)
    rig.run()
    resolved = copy.deepcopy(firing)
    resolved["data"]["essentials"]["monitorCondition"] = "Resolved"
    resolved["data"]["essentials"]["resolvedDateTime"] = "2025-03-14T02:31:04.1234567Z"
    rig.post("azure-monitor", resolved)
    rig.run()
    rig.tick(16 * 60)
    [incident] = rig.incidents()
    assert incident.state == "resolved"
    assert "action_cancelled" in rig.audit_kinds(incident.id)
    assert rig.mutating_calls() == []


def test_global_pause_holds_actions_until_resume(service_rig: Any) -> None:
    rig = _shipped(service_rig, live=True)
    assert rig.client.post("/api/pause", headers=ADMIN).status_code == 200
    rig.post("azure-monitor", load_sample(BLOB))
    rig.run()
    rig.tick(16 * 60)
    assert rig.mutating_calls() == []
    assert rig.client.post("/api/resume", headers=ADMIN).status_code == 200
    rig.tick(1)
    assert rig.mutating_calls() == [CREATE_RUN]


APPROVAL = """
name: t
rules:
  - id: blob-with-approval
    match: {source: adf}
    approval: required
    actions:
      - action: adf.rerun_pipeline
        with: {start_from_failure: true}
"""


def test_approval_through_the_api_releases_the_rerun(service_rig: Any) -> None:
    rig = service_rig(APPROVAL, live=True)
    rig.post("azure-monitor", load_sample(BLOB))
    rig.run()
    rig.tick(60)
    assert rig.mutating_calls() == []
    [incident] = rig.incidents()
    assert incident.state == "waiting_approval"
    answer = rig.client.post(f"/api/incidents/{incident.id}/approve", headers=ADMIN)
    assert answer.status_code == 200
    rig.tick(1)
    assert rig.mutating_calls() == [CREATE_RUN]
