"""Enrichment look-ups through the real SDK clients against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
