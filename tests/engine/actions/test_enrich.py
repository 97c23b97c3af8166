"""Enrichment look-ups through the real SDK clients against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.cloud.clients import Clients
from engine.cloud.enrich import LookupNote, enrich
from engine.events import fingerprint
from tests.engine.actions.conftest import (
    ADF_RUN,
    FACTORY,
    PIPELINE,
    adf_event,
    dbx_task_event,
)


def test_databricks_task_failure_gets_its_error_and_trace(sandbox, clients: Clients):
    result = enrich(dbx_task_event(), clients)
    [event] = result.events
    assert event.error_code == "RUN_EXECUTION_ERROR"
    assert event.failure_type == "CLIENT_ERROR"
    assert event.message.startswith(
        "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view "
        "`sales_bronze`.`orders_raw` cannot be found."
    )
    assert event.attributes["error_trace"].startswith("-----")
    assert len(event.attributes["error_trace"]) <= 2048
    assert event.attributes["failed_tasks"] == ["transform_orders"]
    assert event.attributes["cluster_id"] == "0314-020004-k3x9wq2e"
    assert event.attributes["job_cluster_key"] == "etl_cluster"
    assert event.attributes["node_type_id"] == "Standard_DS4_v2"
    assert event.attributes["repair_count"] == 0
    assert event.fingerprint == fingerprint("databricks", "sales_bronze_to_silver",
                                            "RUN_EXECUTION_ERROR", event.message)
    assert [n.call for n in result.notes] == [
        "databricks workspace",
        "databricks jobs.get_run 447120398",
        f"databricks jobs.get_run_output {sandbox_task_run(sandbox)}",
    ]
    paths = [(c["path"], c["query"].get("run_id")) for c in sandbox.calls("databricks")
             if c["path"].startswith("/api/")]
    assert ("/api/2.2/jobs/runs/get", "447120398") in paths
    assert all(run != "447120398" for path, run in paths if path.endswith("get-output"))


def sandbox_task_run(sandbox) -> str:
    [call] = [c for c in sandbox.calls("databricks") if c["path"].endswith("runs/get-output")]
    return call["query"]["run_id"]


def test_adf_log_alert_with_run_id_gets_the_unwrapped_activity_error(sandbox, clients):
    result = enrich(adf_event(), clients)
    [event] = result.events
    assert event.error_code == "UserErrorSourceBlobNotExist"
    assert event.error_codes == ("2200", "UserErrorSourceBlobNotExist")
    assert event.message.startswith("Failure happened on 'Source' side. "
                                    "ErrorCode=UserErrorSourceBlobNotExist")
    assert event.failure_type == "UserError"
    assert event.attributes["activity"] == "Copy_RawSales_To_Bronze"
    assert event.attributes["failed_activities"] == ["Copy_RawSales_To_Bronze"]
    assert all(n.ok for n in result.notes)
    assert event.fingerprint == fingerprint("adf", PIPELINE, "UserErrorSourceBlobNotExist",
                                            event.message)


def test_adf_metric_alert_is_expanded_into_one_event_per_failed_run(sandbox, clients):
    now = datetime.now(UTC)
    alert = adf_event(kind="pipeline_run", run_id="", error_code="", error_codes=(),
                      dedup_key="azmon:/alerts/0f6c:Fired", attributes={
                          "factory": FACTORY, "pipeline": PIPELINE,
                          "resource_group": "rg-dataplatform-prod",
                          "window_start": (now - timedelta(minutes=5)).isoformat(),
                          "window_end": (now + timedelta(minutes=1)).isoformat()})
    result = enrich(alert, clients)
    [event] = result.events  # the sandbox has one failed run of the pipeline in the window
    assert event.run_id
    assert event.dedup_key == f"azmon:/alerts/0f6c:Fired:{event.run_id}"
    assert event.attributes["expanded_from"] == "azmon:/alerts/0f6c:Fired"
    assert event.error_code == "UserErrorSourceBlobNotExist"
    [query] = [c for c in sandbox.calls("adf") if c["path"].endswith("/queryPipelineRuns")]
    assert query["body"]["filters"] == [
        {"operand": "PipelineName", "operator": "Equals", "values": [PIPELINE]},
        {"operand": "Status", "operator": "Equals", "values": ["Failed"]},
    ]


def test_a_failing_lookup_is_noted_and_the_event_kept(sandbox, clients):
    sandbox.script("adf", "adf.queryActivityruns", status=403)
    sandbox.script("adf", "adf.getPipelineRun", status=404)
    original = adf_event()
    result = enrich(original, clients)
    [event] = result.events
    assert event.error_code == "2200"
    assert event.message == original.message
    assert result.notes[0] == LookupNote(call="adf client", ok=True)
    assert result.notes[1].ok is False
    assert result.notes[1].detail.startswith(
        f"adf pipeline_runs.get {ADF_RUN}: 404 Not Found"
    )
    assert result.notes[2].ok is False
    assert result.notes[2].detail.startswith(
        f"adf activity_runs.query_by_pipeline_run {ADF_RUN}: 403 Forbidden"
    )
    assert event.fingerprint == original.with_fingerprint().fingerprint


def test_a_databricks_workspace_not_configured_is_noted(clients):
    result = enrich(dbx_task_event(attributes={"workspace_id": "999", "parent_run_id": "1"}),
                    clients)
    assert result.notes == [LookupNote(
        call="databricks workspace", ok=False,
        detail="no [clouds.databricks] entry serves workspace_id 999; add one to the settings")]


def _metric_alert(start: datetime, end: datetime) -> Any:
    return adf_event(kind="pipeline_run", run_id="", error_code="", error_codes=(),
                     dedup_key="azmon:/alerts/0f6c:Fired", attributes={
                         "factory": FACTORY, "pipeline": PIPELINE,
                         "resource_group": "rg-dataplatform-prod",
                         "window_start": start.isoformat(), "window_end": end.isoformat()})


def test_a_metric_alert_window_is_searched_at_most_a_day_back_and_not_past_the_age_bound(
        sandbox, clients):
    now = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    result = enrich(_metric_alert(datetime(2000, 1, 1, tzinfo=UTC), now), clients, now=now)
    [query] = [c for c in sandbox.calls("adf") if c["path"].endswith("/queryPipelineRuns")]
    assert datetime.fromisoformat(query["body"]["lastUpdatedAfter"]) == now - timedelta(hours=24)
    assert result.notes[0] == LookupNote(call="adf alert window", ok=True, detail=(
        "the alert's window 2000-01-01T00:00:00+00:00 to 2025-03-14T09:00:00+00:00 was cut "
        "to 2025-03-13T09:00:00+00:00 to 2025-03-14T09:00:00+00:00 (at most 24 h)"))
    sandbox.reset()
    enrich(_metric_alert(now - timedelta(hours=5), now), clients, now=now, max_age_s=3600)
    [query] = [c for c in sandbox.calls("adf") if c["path"].endswith("/queryPipelineRuns")]
    assert datetime.fromisoformat(query["body"]["lastUpdatedAfter"]) == now - timedelta(hours=1)


def test_a_metric_alert_window_older_than_the_age_bound_looks_nothing_up(sandbox, clients):
    now = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    alert = _metric_alert(now - timedelta(days=30, hours=1), now - timedelta(days=30))
    result = enrich(alert, clients, now=now, max_age_s=86400)
    assert result.events == [alert.with_fingerprint()]
    assert not [c for c in sandbox.calls("adf") if c["path"].endswith("/queryPipelineRuns")]
    assert result.notes == [LookupNote(call="adf alert window", ok=True, detail=(
        "the alert's window 2025-02-12T08:00:00+00:00 to 2025-02-12T09:00:00+00:00 lies "
        "outside the bound (at most 24 h, not older than max_alert_age_s (86400 s)): no failed "
        "runs looked up"))]


def test_at_most_50_failed_runs_of_a_metric_alert_become_events(sandbox, clients):
    for n in range(60):
        sandbox.failure("adf", "given-run", run_id=f"run-{n:03d}", pipeline=PIPELINE)
    now = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    result = enrich(_metric_alert(now - timedelta(hours=12), now), clients, now=now)
    assert len(result.events) == 50
    assert LookupNote(call=f"adf failed runs of {PIPELINE}", ok=True,
                      detail="60 failed runs; the first 50 become events") in result.notes
