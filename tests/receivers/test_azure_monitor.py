"""Every Azure Monitor payload shape to its ErrorEvent, field by field, and every refusal.

The samples in tests/testdata/samples are real-shaped; variants (Resolved, Deactivated,
other metrics, other targets) are derived here from them, so that each case says exactly
what it changes.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import MalformedPayload, PayloadError, UnknownSchema
from engine.events import ErrorEvent
from receivers.azure_monitor import ENDPOINT_SOURCES, parse
from scripts.fuzz_parsers import json_parent, json_paths
from tests.fixtures.common import TESTDATA, assert_wrapped, load_sample

SUB = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
ALERTS = f"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts"
RG = "rg-dataplatform-prod"
FACTORY_ID = (
    f"/subscriptions/{SUB}/resourcegroups/{RG}/providers/microsoft.datafactory/factories/"
    "adf-contoso-prod"
)
ADF_TARGET = {
    "subscription": SUB,
    "resource_group": RG,
    "resource_type": "microsoft.datafactory/factories",
    "factory": "adf-contoso-prod",
}
PIPELINE_DESCRIPTION = (
    "A triggered ADF pipeline run ended in Failed state (PipelineFailedRuns > 0, split by "
    "pipeline Name and FailureType)."
)
# One ADF pipeline failure as the common and the legacy metric alert both tell it: the event's
# fields, and the PipelineFailedRuns criterion among its attributes.
ADF_PIPELINE_FAILED: dict[str, Any] = {
    "source": "adf",
    "kind": "pipeline_run",
    "status": "firing",
    "resource": "pl_ingest_sales_daily",
    "message": PIPELINE_DESCRIPTION,
    "failure_type": "UserError",
    "severity": 2,
    "occurred_at": datetime(2025, 3, 14, 2, 21, 37, 412782, tzinfo=UTC),
}
ADF_FAILED_RUNS_CRITERION = {
    "condition_type": "SingleResourceMultipleMetricCriteria",
    "window_size": "PT5M",
    "metric_name": "PipelineFailedRuns",
    "metric_namespace": "Microsoft.DataFactory/factories",
    "metric_value": 1.0,
    "operator": "GreaterThan",
    "threshold": "0",
    "time_aggregation": "Total",
    "dimensions": {"Name": "pl_ingest_sales_daily", "FailureType": "UserError"},
    "pipeline": "pl_ingest_sales_daily",
}
METRIC = "azure-monitor/azmon-common-metric-adf-pipelinefailed.json"
SYNAPSE_METRIC = "azure-monitor/azmon-common-metric-synapse-failed.json"
SEED = "seed/adf-action-group-alert.json"
LEGACY = "azure-monitor/azmon-legacy-metric-adf.json"
ABSENT = "<absent>"  # an attribute the event must not carry
SAMPLES = [
    "azure-monitor/azmon-common-activitylog.json",
    "azure-monitor/azmon-common-logv1-adf-activityrun-searchresults.json",
    "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json",
    "azure-monitor/azmon-common-logv2-adf-activityrun-workspace.json",
    "azure-monitor/azmon-common-logv2-adf-activityrun-workspace-resourceid.json",
    "azure-monitor/azmon-common-logv2-appinsights-exception.json",
    "azure-monitor/azmon-common-logv2-synapse-pipelinerun-workspace.json",
    "azure-monitor/azmon-common-metric-adf-activityfailed.json",
    "azure-monitor/azmon-common-metric-adf-pipelinefailed.json",
    "azure-monitor/azmon-common-metric-adf-pipelinefailed-nodescription.json",
    "azure-monitor/azmon-common-metric-adf-pipelinefailed-resolved.json",
    "azure-monitor/azmon-common-metric-adf-triggerfailed.json",
    "azure-monitor/azmon-common-metric-synapse-failed.json",
    "azure-monitor/azmon-legacy-metric-adf.json",
    "seed/adf-action-group-alert.json",
    "seed/adf-test-alert.json",
]


def _raw(relative: str) -> bytes:
    return (TESTDATA / "samples" / relative).read_bytes()


def _one(body: bytes | dict[str, Any], endpoint: str = "azure-monitor") -> ErrorEvent:
    events = parse(body, endpoint)
    assert len(events) == 1
    return events[0]


def _fields(event: ErrorEvent) -> dict[str, Any]:
    return msgspec.structs.asdict(event)


def _expected(**fields: Any) -> dict[str, Any]:
    """The whole expected event; its fingerprint is computed from its own fields."""
    return _fields(ErrorEvent(**fields).with_fingerprint())


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _criterion(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["data"]["alertContext"]["condition"]["allOf"][0]


def test_every_sample_is_covered() -> None:
    on_disk = {
        f"azure-monitor/{p.name}" for p in (TESTDATA / "samples" / "azure-monitor").glob("*.json")
    }
    assert on_disk <= set(SAMPLES)


# --- the samples, field by field ---------------------------------------------------------


def test_metric_alert_adf_pipeline_failed() -> None:
    event = _one(_raw("azure-monitor/azmon-common-metric-adf-pipelinefailed.json"))
    assert _fields(event) == _expected(
        **ADF_PIPELINE_FAILED,
        dedup_key=f"azmon:{ALERTS}/0f6c2b7e-3a41-4d8e-9b5a-71c2d4e8f903:Fired",
        resource_id=FACTORY_ID,
        run_id="",
        error_code="",
        error_codes=(),
        attributes={
            **ADF_TARGET,
            "alert_rule": "adf-prod-pipeline-failed",
            "alert_id": f"{ALERTS}/0f6c2b7e-3a41-4d8e-9b5a-71c2d4e8f903",
            "origin_alert_id": f"{SUB}_{RG}_microsoft.insights_metricAlerts_"
            "adf-prod-pipeline-failed_-1548873912",
            "signal_type": "Metric",
            "monitoring_service": "Platform",
            "monitor_condition": "Fired",
            "description": PIPELINE_DESCRIPTION,
            "target_ids": [FACTORY_ID],
            "configuration_items": ["adf-contoso-prod"],
            "fired_at": "2025-03-14T02:21:37.4127823Z",
            **ADF_FAILED_RUNS_CRITERION,
            "window_start": "2025-03-14T02:14:00.000Z",
            "window_end": "2025-03-14T02:19:00.000Z",
        },
    )
    assert event.id == ""
    assert len(event.fingerprint) == 16


def test_metric_alert_synapse_pipeline_failed() -> None:
    event = _one(_raw("azure-monitor/azmon-common-metric-synapse-failed.json"), "azure-monitor")
    workspace_id = (
        f"/subscriptions/{SUB}/resourcegroups/{RG}/providers/microsoft.synapse/workspaces/"
        "syn-contoso-prod"
    )
    assert _fields(event) == _expected(
        source="synapse",
        kind="pipeline_run",
        status="firing",
        dedup_key=f"azmon:{ALERTS}/3e8b1d5f-92a7-4c06-b4e1-d7f2a9c3e518:Fired",
        resource="pl_load_dw_sales",
        resource_id=workspace_id,
        message="Synapse integration pipeline run ended with Result=Failed.",
        failure_type="UserError",
        severity=2,
        occurred_at=datetime(2025, 3, 14, 3, 47, 11, 880251, tzinfo=UTC),
        attributes={
            "subscription": SUB,
            "resource_group": RG,
            "resource_type": "microsoft.synapse/workspaces",
            "workspace": "syn-contoso-prod",
            "alert_rule": "syn-prod-pipeline-runs-failed",
            "alert_id": f"{ALERTS}/3e8b1d5f-92a7-4c06-b4e1-d7f2a9c3e518",
            "origin_alert_id": f"{SUB}_{RG}_microsoft.insights_metricAlerts_"
            "syn-prod-pipeline-runs-failed_1290385517",
            "signal_type": "Metric",
            "monitoring_service": "Platform",
            "monitor_condition": "Fired",
            "description": "Synapse integration pipeline run ended with Result=Failed.",
            "target_ids": [workspace_id],
            "configuration_items": ["syn-contoso-prod"],
            "fired_at": "2025-03-14T03:47:11.8802516Z",
            "condition_type": "SingleResourceMultipleMetricCriteria",
            "window_size": "PT5M",
            "window_start": "2025-03-14T03:40:00.000Z",
            "window_end": "2025-03-14T03:45:00.000Z",
            "metric_name": "IntegrationPipelineRunsEnded",
            "metric_namespace": "Microsoft.Synapse/workspaces",
            "metric_value": 1.0,
            "operator": "GreaterThanOrEqual",
            "threshold": "1",
            "time_aggregation": "Total",
            "dimensions": {
                "Result": "Failed", "Pipeline": "pl_load_dw_sales", "FailureType": "UserError"
            },
            "pipeline": "pl_load_dw_sales",
        },
    )


def test_log_alert_v2_adf_activity_run() -> None:
    raw = _raw("azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json")
    criterion = _criterion(json.loads(raw))
    description = (
        "Failed ADF activity run found in ADFActivityRun (resource-specific diagnostic table)."
    )
    event = _one(raw, "synapse-monitor")  # the target, not the endpoint, decides
    assert _fields(event) == _expected(
        source="adf",
        kind="activity_run",
        status="firing",
        dedup_key=f"azmon:{ALERTS}/9d3a6f10-2b7c-4e58-a1d4-6c8e0f2b5a77:Fired",
        resource="pl_ingest_sales_daily",
        resource_id=FACTORY_ID,
        run_id="7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11",
        error_code="2200",
        error_codes=("2200",),
        message=description,
        failure_type="UserError",
        severity=2,
        occurred_at=datetime(2025, 3, 14, 2, 21, 4, 663091, tzinfo=UTC),
        attributes={
            **ADF_TARGET,
            "alert_rule": "adf-prod-activity-failed-log",
            "alert_id": f"{ALERTS}/9d3a6f10-2b7c-4e58-a1d4-6c8e0f2b5a77",
            "origin_alert_id": "4e2c7a19-85d3-4b0f-9e61-a7c3d5f8b210",
            "signal_type": "Log",
            "monitoring_service": "Log Alerts V2",
            "monitor_condition": "Fired",
            "description": description,
            "target_ids": [FACTORY_ID],
            "configuration_items": ["adf-contoso-prod"],
            "fired_at": "2025-03-14T02:21:04.6630911Z",
            "condition_type": "LogQueryCriteria",
            "window_size": "PT5M",
            "window_start": "2025-03-14T02:15:00Z",
            "window_end": "2025-03-14T02:20:00Z",
            "metric_value": 1.0,
            "operator": "GreaterThan",
            "threshold": "0",
            "time_aggregation": "Count",
            "search_query": criterion["searchQuery"],
            "search_results_api": criterion["linkToFilteredSearchResultsAPI"],
            "dimensions": {
                "_ResourceId": FACTORY_ID,
                "PipelineName": "pl_ingest_sales_daily",
                "PipelineRunId": "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11",
                "ActivityName": "Copy_RawSales_To_Bronze",
                "ErrorCode": "2200",
                "FailureType": "UserError",
            },
            "custom_properties": {
                "PipelineName": "pl_ingest_sales_daily",
                "PipelineRunId": "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11",
                "ErrorCode": "2200",
            },
            "pipeline": "pl_ingest_sales_daily",
            "activity": "Copy_RawSales_To_Bronze",
        },
    )


def test_log_alert_v2_app_insights_exception() -> None:
    raw = _raw("azure-monitor/azmon-common-logv2-appinsights-exception.json")
    criterion = _criterion(json.loads(raw))
    component = (
        f"/subscriptions/{SUB}/resourcegroups/rg-orders-prod/providers/microsoft.insights/"
        "components/appi-orders-prod"
    )
    timeout = (
        "Execution Timeout Expired.  The timeout period elapsed prior to completion of the "
        "operation or the server is not responding."
    )
    problem = (
        "Microsoft.Data.SqlClient.SqlException at "
        "Orders.Functions.ProcessOrderQueue+<Run>d__3.MoveNext"
    )
    event = _one(raw, "azure-monitor")
    assert _fields(event) == _expected(
        source="functions",
        kind="function",
        status="firing",
        dedup_key=f"azmon:{ALERTS}/c41e7b2d-9f06-4a3c-8d15-e2b7a9f0c368:Fired",
        resource="func-orders-prod",
        resource_id=component,
        error_code="Microsoft.Data.SqlClient.SqlException",
        error_codes=("Microsoft.Data.SqlClient.SqlException",),
        message=timeout,
        severity=3,
        occurred_at=datetime(2025, 3, 14, 9, 46, 18, 205144, tzinfo=UTC),
        attributes={
            "subscription": SUB,
            "resource_group": "rg-orders-prod",
            "resource_type": "microsoft.insights/components",
            "app_insights": "appi-orders-prod",
            "alert_rule": "func-orders-prod-exceptions",
            "alert_id": f"{ALERTS}/c41e7b2d-9f06-4a3c-8d15-e2b7a9f0c368",
            "origin_alert_id": "a8f3d2c1-47b6-4e09-b5a2-1c9e8d7f6a05",
            "signal_type": "Log",
            "monitoring_service": "Log Alerts V2",
            "monitor_condition": "Fired",
            "description": (
                "Unhandled exceptions in func-orders-prod (Application Insights exceptions "
                "table)."
            ),
            "target_ids": [component],
            "configuration_items": ["appi-orders-prod"],
            "fired_at": "2025-03-14T09:46:18.2051447Z",
            "condition_type": "LogQueryCriteria",
            "window_size": "PT5M",
            "window_start": "2025-03-14T09:40:00Z",
            "window_end": "2025-03-14T09:45:00Z",
            "metric_value": 7.0,
            "operator": "GreaterThan",
            "threshold": "0",
            "time_aggregation": "Total",
            "search_query": criterion["searchQuery"],
            "search_results_api": criterion["linkToFilteredSearchResultsAPI"],
            "dimensions": {
                "cloud_RoleName": "func-orders-prod",
                "operation_Name": "ProcessOrderQueue",
                "problemId": problem,
                "type": "Microsoft.Data.SqlClient.SqlException",
                "outerMessage": timeout,
            },
            "function_app": "func-orders-prod",
            "function": "ProcessOrderQueue",
            "problem_id": problem,
            "exception_type": "Microsoft.Data.SqlClient.SqlException",
            "outer_message": timeout,
        },
    )


def test_activity_log_alert_on_an_adf_trigger() -> None:
    raw = _raw("azure-monitor/azmon-common-activitylog.json")
    props = json.loads(raw)["data"]["alertContext"]["properties"]
    trigger_id = f"{FACTORY_ID}/triggers/tr_daily_0200"
    event = _one(raw, "azure-functions-monitor")
    assert _fields(event) == _expected(
        source="adf",
        kind="alert",
        status="firing",
        dedup_key=f"azmon:{ALERTS}/6a2f9c41-d83e-4b17-a0c5-9e3b7d1f2a86:Fired",
        resource="tr_daily_0200",
        resource_id=trigger_id,
        # docs/SENDERS.md's priority: the context's `message` ranks above the description.
        message="Microsoft.DataFactory/factories/triggers/stop/action",
        severity=4,
        occurred_at=datetime(2025, 3, 14, 11, 5, 42, 187511, tzinfo=UTC),
        attributes={
            **ADF_TARGET,
            "alert_rule": "adf-prod-trigger-stopped",
            "alert_id": f"{ALERTS}/6a2f9c41-d83e-4b17-a0c5-9e3b7d1f2a86",
            "origin_alert_id": "2d8e5b1f-47c9-4a36-b0e2-c5f1a9d3e704_"
            "3c9f1e7a2b5d8406e1f3a7c9b2d4e608",
            "signal_type": "Activity Log",
            "monitoring_service": "Activity Log - Administrative",
            "monitor_condition": "Fired",
            "description": "Someone stopped a production ADF trigger.",
            "target_ids": [trigger_id],
            "configuration_items": ["tr_daily_0200"],
            "fired_at": "2025-03-14T11:05:42.1875113Z",
            "custom_properties": props,
            "operation_name": "Microsoft.DataFactory/factories/triggers/stop/action",
            "caller": "dana.operator@contoso.com",
            "status": "Succeeded",
            "correlation_id": "8f1c3e5a-2b7d-4960-a4c8-e1d3f5b7a902",
            "level": "Informational",
            "event_timestamp": "2025-03-14T11:04:58.6120331+00:00",
            "trigger": "tr_daily_0200",
        },
    )


def test_legacy_metric_alert_adf() -> None:
    event = _one(_raw("azure-monitor/azmon-legacy-metric-adf.json"), "synapse-monitor")
    rule_id = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/microsoft.insights/metricAlerts/"
        "adf-prod-pipeline-failed"
    )
    factory = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.DataFactory/factories/"
        "adf-contoso-prod"
    )
    assert _fields(event) == _expected(
        **ADF_PIPELINE_FAILED,
        dedup_key=f"azmon-legacy:{rule_id}:Activated:2025-03-14T02:21:37.4127823Z",
        resource_id=factory,
        attributes={
            **ADF_TARGET,
            "alert_rule": "adf-prod-pipeline-failed",
            "description": PIPELINE_DESCRIPTION,
            **ADF_FAILED_RUNS_CRITERION,
            "alert_id": rule_id,
            "legacy_status": "Activated",
            "timestamp": "2025-03-14T02:21:37.4127823Z",
            "portal_link": f"https://portal.azure.com/#resource{factory}",
        },
    )
    # The same failure as the common-schema metric alert groups with it.
    common = _one(_raw("azure-monitor/azmon-common-metric-adf-pipelinefailed.json"))
    assert event.fingerprint == common.fingerprint


SEED_ERROR = {
    "errorCode": "UserErrorSourceBlobNotExists",
    "message": "The specified blob does not exist.",
    "failureType": "UserError",
    "target": "CopyActivity1",
}


def test_seed_action_group_alert() -> None:
    raw = _raw("seed/adf-action-group-alert.json")
    factory = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg_techdemo_2025_Q4/"
        "providers/Microsoft.DataFactory/factories/your-adf"
    )
    alert_id = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/providers/"
        "Microsoft.AlertsManagement/alerts/1b2c3d4e-0000-0000-0000-000000000001"
    )
    event = _one(raw, "azure-monitor")
    assert _fields(event) == _expected(
        source="adf",
        kind="activity_run",
        status="firing",
        dedup_key=f"azmon:{alert_id}:Fired",
        resource="Copy_Data_Pipeline",
        resource_id=factory,
        run_id="abc123-def456-789",
        error_code="UserErrorSourceBlobNotExists",
        error_codes=("UserErrorSourceBlobNotExists",),
        message="The specified blob does not exist.",  # Error.message beats ErrorMessage
        failure_type="UserError",
        severity=3,
        occurred_at=_at(2025, 11, 26, 10, 30),
        attributes={
            "subscription": "00000000-0000-0000-0000-000000000000",
            "resource_group": "rg_techdemo_2025_Q4",
            "resource_type": "microsoft.datafactory/factories",
            "factory": "your-adf",
            "alert_rule": "ADF-PipelineFailure-Alert",
            "alert_id": alert_id,
            "origin_alert_id": "00000000-0000-0000-0000-000000000000_rg_techdemo_2025_q4_"
            "microsoft.insights_metricalerts_adf-pipelinefailure-alert_-1",
            "signal_type": "Metric",
            "monitor_condition": "Fired",
            "description": "Pipeline failed: Copy_Data_Pipeline",
            "target_ids": [factory],
            "fired_at": "2025-11-26T10:30:00Z",
            "custom_properties": {
                "PipelineName": "Copy_Data_Pipeline",
                "PipelineRunId": "abc123-def456-789",
                "ActivityName": "CopyActivity1",
                "ActivityType": "Copy",
                "ErrorCode": "UserErrorSourceBlobNotExists",
                "ErrorMessage": "The specified blob does not exist. RequestId:xxx-xxx-xxx",
                "Error": SEED_ERROR,
            },
            "pipeline": "Copy_Data_Pipeline",
            "activity": "CopyActivity1",
            "activity_type": "Copy",
        },
    )


def test_seed_test_alert_without_alert_id_or_target() -> None:
    raw = _raw("seed/adf-test-alert.json")
    event = _one(raw, "azure-monitor")
    assert _fields(event) == _expected(
        source="adf",
        kind="activity_run",
        status="firing",
        dedup_key="azmon:sha256:7dd35fe98c84211c60a11f632981ee7e",
        resource="Test_ETL_Pipeline",
        run_id="test-run-12345",
        error_code="UserErrorSourceBlobNotExists",
        error_codes=("UserErrorSourceBlobNotExists",),
        message="The specified blob container 'input-data' does not exist.",
        failure_type="UserError",
        severity=2,
        occurred_at=_at(2025, 11, 26, 10, 30),
        attributes={
            "alert_rule": "TEST_Pipeline_Failure",
            "description": "Test alert for RCA system",
            "fired_at": "2025-11-26T10:30:00Z",
            "custom_properties": json.loads(raw)["data"]["alertContext"]["properties"],
            "pipeline": "Test_ETL_Pipeline",
            "activity": "CopyData",
        },
    )


def test_seed_test_alert_dedup_key_is_stable_and_identifying() -> None:
    doc = load_sample("seed/adf-test-alert.json")
    key = _one(doc).dedup_key
    reordered = {"data": dict(reversed(list(doc["data"].items()))), "schemaId": doc["schemaId"]}
    assert _one(reordered).dedup_key == key
    assert _one(json.dumps(doc, indent=4).encode()).dedup_key == key
    other_run = copy.deepcopy(doc)
    other_run["data"]["alertContext"]["properties"]["PipelineRunId"] = "test-run-12346"
    assert _one(other_run).dedup_key != key
    later = copy.deepcopy(doc)
    later["data"]["essentials"]["firedDateTime"] = "2025-11-26T10:35:00Z"
    assert _one(later).dedup_key != key


@pytest.mark.parametrize(
    ("endpoint", "source", "kind", "resource"),
    [
        ("azure-monitor", "adf", "activity_run", "Test_ETL_Pipeline"),
        ("synapse-monitor", "synapse", "activity_run", "Test_ETL_Pipeline"),
        # A Functions endpoint reads it as an Application Insights alert: no role name.
        ("azure-functions-monitor", "functions", "function", ""),
    ],
)
def test_without_a_target_the_endpoint_decides(
    endpoint: str, source: str, kind: str, resource: str
) -> None:
    event = _one(_raw("seed/adf-test-alert.json"), endpoint)
    assert (event.source, event.kind, event.resource) == (source, kind, resource)
    assert event.run_id == "test-run-12345"
    assert event.error_code == "UserErrorSourceBlobNotExists"


def test_endpoint_sources() -> None:
    assert dict(ENDPOINT_SOURCES) == {
        "azure-monitor": "adf",
        "synapse-monitor": "synapse",
        "azure-functions-monitor": "functions",
    }


def test_unknown_endpoint_is_the_callers_bug() -> None:
    with pytest.raises(ValueError) as caught:
        parse(_raw("seed/adf-test-alert.json"), "databricks-monitor")
    assert str(caught.value) == (
        "unknown Azure Monitor endpoint 'databricks-monitor'; known: azure-monitor, "
        "synapse-monitor, azure-functions-monitor"
    )


# --- derived variants --------------------------------------------------------------------


def test_metric_alert_resolved() -> None:
    doc = load_sample(METRIC)
    fired = _one(doc)
    doc["data"]["essentials"]["monitorCondition"] = "Resolved"
    doc["data"]["essentials"]["resolvedDateTime"] = "2025-03-14T02:36:40.8817292Z"
    event = _one(doc)
    assert event.status == "resolved"
    assert event.dedup_key == f"azmon:{ALERTS}/0f6c2b7e-3a41-4d8e-9b5a-71c2d4e8f903:Resolved"
    assert event.dedup_key != fired.dedup_key
    assert event.occurred_at == datetime(2025, 3, 14, 2, 36, 40, 881729, tzinfo=UTC)
    assert event.attributes["resolved_at"] == "2025-03-14T02:36:40.8817292Z"
    assert event.attributes["monitor_condition"] == "Resolved"
    assert event.fingerprint == fired.fingerprint
    assert (event.kind, event.resource) == ("pipeline_run", "pl_ingest_sales_daily")


def test_resolved_without_resolved_time_uses_fired_time() -> None:
    doc = load_sample(SYNAPSE_METRIC)
    doc["data"]["essentials"]["monitorCondition"] = "Resolved"
    event = _one(doc)
    assert event.status == "resolved"
    assert event.occurred_at == datetime(2025, 3, 14, 3, 47, 11, 880251, tzinfo=UTC)


def test_legacy_metric_alert_deactivated() -> None:
    doc = load_sample(LEGACY)
    activated = _one(doc)
    doc["data"]["status"] = "Deactivated"
    doc["data"]["context"]["timestamp"] = "2025-03-14T02:41:02.1234567Z"
    event = _one(doc)
    assert event.status == "resolved"
    assert event.dedup_key == (
        f"azmon-legacy:/subscriptions/{SUB}/resourceGroups/{RG}/providers/microsoft.insights/"
        "metricAlerts/adf-prod-pipeline-failed:Deactivated:2025-03-14T02:41:02.1234567Z"
    )
    assert event.occurred_at == datetime(2025, 3, 14, 2, 41, 2, 123456, tzinfo=UTC)
    assert event.attributes["legacy_status"] == "Deactivated"
    assert event.fingerprint == activated.fingerprint


def test_activity_log_alert_is_always_firing() -> None:
    doc = load_sample("azure-monitor/azmon-common-activitylog.json")
    doc["data"]["essentials"]["monitorCondition"] = "Resolved"
    assert _one(doc).status == "firing"


@pytest.mark.parametrize(
    ("metric", "status"),
    [("PipelineSucceededRuns", "info"), ("PipelineCancelledRuns", "info"),
     ("pipelinefailedruns", "firing")],
)
def test_adf_metric_of_successes_is_info(metric: str, status: str) -> None:
    doc = load_sample(METRIC)
    _criterion(doc)["metricName"] = metric
    event = _one(doc)
    assert (event.kind, event.status) == ("pipeline_run", status)


def test_synapse_metric_with_another_result_is_info() -> None:
    doc = load_sample(SYNAPSE_METRIC)
    _criterion(doc)["dimensions"][0]["value"] = "Succeeded"
    assert _one(doc).status == "info"


@pytest.mark.parametrize(
    ("relative", "metric", "dimensions", "event_fields", "attributes"),
    [
        (METRIC, "ActivityFailedRuns",
         {"Name": "Copy_RawSales_To_Bronze", "PipelineName": "pl_ingest_sales_daily",
          "ActivityType": "Copy", "FailureType": "SystemError"},
         {"source": "adf", "kind": "activity_run", "status": "firing",
          "resource": "pl_ingest_sales_daily", "failure_type": "SystemError"},
         {"pipeline": "pl_ingest_sales_daily", "activity": "Copy_RawSales_To_Bronze",
          "activity_type": "Copy", "metric_name": "ActivityFailedRuns"}),
        (METRIC, "TriggerFailedRuns", {"Name": "tr_daily_0200", "FailureType": "UserError"},
         {"source": "adf", "kind": "alert", "resource": "tr_daily_0200"},
         {"trigger": "tr_daily_0200", "pipeline": ABSENT}),
        (SYNAPSE_METRIC, "IntegrationActivityRunsEnded",
         {"Result": "Failed", "Activity": "Load_FactSales",
          "ActivityType": "SqlPoolStoredProcedure", "Pipeline": "pl_load_dw_sales",
          "FailureType": "SystemError"},
         {"source": "synapse", "kind": "activity_run", "resource": "pl_load_dw_sales",
          "failure_type": "SystemError"},
         {"activity": "Load_FactSales", "activity_type": "SqlPoolStoredProcedure"}),
    ],
    ids=["adf-activity", "adf-trigger", "synapse-activity"],
)
def test_metric_dimensions_name_the_run(
    relative: str, metric: str, dimensions: dict[str, str], event_fields: dict[str, Any],
    attributes: dict[str, Any],
) -> None:
    doc = load_sample(relative)
    criterion = _criterion(doc)
    criterion["metricName"] = metric
    criterion["dimensions"] = [{"name": name, "value": value} for name, value in dimensions.items()]
    event = _one(doc)
    assert {name: getattr(event, name) for name in event_fields} == event_fields
    assert {name: event.attributes.get(name, ABSENT) for name in attributes} == attributes


def test_alert_about_a_vm_is_generic() -> None:
    doc = load_sample(METRIC)
    vm = (
        f"/subscriptions/{SUB}/resourcegroups/rg-compute/providers/microsoft.compute/"
        "virtualmachines/vm-shir-01"
    )
    doc["data"]["essentials"]["alertTargetIDs"] = [vm]
    doc["data"]["essentials"]["description"] = "CPU above 95% on the SHIR node"
    criterion = _criterion(doc)
    criterion["metricName"] = "Percentage CPU"
    criterion["metricNamespace"] = "Microsoft.Compute/virtualMachines"
    criterion["dimensions"] = []
    event = _one(doc, "azure-monitor")
    assert (event.source, event.kind, event.status) == ("generic", "alert", "firing")
    assert event.resource == "vm-shir-01"
    assert event.resource_id == vm
    assert event.message == "CPU above 95% on the SHIR node"
    assert {k: event.attributes[k] for k in
            ("subscription", "resource_group", "resource_type", "resource_name")} == {
        "subscription": SUB,
        "resource_group": "rg-compute",
        "resource_type": "microsoft.compute/virtualmachines",
        "resource_name": "vm-shir-01",
    }
    assert "factory" not in event.attributes


def test_target_type_compares_case_insensitively() -> None:
    doc = load_sample(SYNAPSE_METRIC)
    target = doc["data"]["essentials"]["alertTargetIDs"][0]
    doc["data"]["essentials"]["alertTargetIDs"] = [
        target.replace("microsoft.synapse/workspaces", "Microsoft.Synapse/WORKSPACES")
    ]
    event = _one(doc, "azure-monitor")
    assert event.source == "synapse"
    assert event.attributes["workspace"] == "syn-contoso-prod"


def test_function_app_target_names_the_app() -> None:
    doc = load_sample(METRIC)
    site = (
        f"/subscriptions/{SUB}/resourceGroups/rg-orders-prod/providers/Microsoft.Web/sites/"
        "func-orders-prod"
    )
    doc["data"]["essentials"]["alertTargetIDs"] = [site]
    _criterion(doc)["metricName"] = "Http5xx"
    _criterion(doc)["dimensions"] = None
    event = _one(doc, "azure-monitor")
    assert (event.source, event.kind) == ("functions", "function")
    assert event.resource == "func-orders-prod"
    assert event.attributes["function_app"] == "func-orders-prod"


def _workspace_scoped(doc: dict[str, Any]) -> dict[str, Any]:
    workspace = (
        f"/subscriptions/{SUB}/resourceGroups/rg-monitor/providers/"
        "Microsoft.OperationalInsights/workspaces/law-dataplatform-prod"
    )
    doc["data"]["essentials"]["alertTargetIDs"] = [workspace]
    return doc


def test_workspace_scoped_log_alert_takes_the_resource_id_dimension() -> None:
    doc = _workspace_scoped(
        load_sample("azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json")
    )
    event = _one(doc, "synapse-monitor")
    assert (event.source, event.resource_id) == ("adf", FACTORY_ID)
    assert event.attributes["factory"] == "adf-contoso-prod"


def test_workspace_scoped_app_insights_alert_with_workspace_column_names() -> None:
    doc = _workspace_scoped(
        load_sample("azure-monitor/azmon-common-logv2-appinsights-exception.json")
    )
    _criterion(doc)["dimensions"] = [
        {"name": "AppRoleName", "value": "func-orders-prod"},
        {"name": "OperationName", "value": "ProcessOrderQueue"},
        {"name": "ProblemId", "value": "System.TimeoutException at Orders.Run"},
        {"name": "ExceptionType", "value": "System.TimeoutException"},
        {"name": "OuterMessage", "value": "Exception while executing function: ProcessOrderQueue"},
        {"name": "InnermostMessage", "value": "The operation has timed out."},
    ]
    event = _one(doc, "azure-functions-monitor")
    assert (event.source, event.kind) == ("functions", "function")
    assert event.resource == "func-orders-prod"
    assert event.error_code == "System.TimeoutException"
    assert event.error_codes == ("System.TimeoutException",)
    assert event.message == "The operation has timed out."  # innermost beats outer
    assert event.attributes["function"] == "ProcessOrderQueue"
    assert event.attributes["problem_id"] == "System.TimeoutException at Orders.Run"
    assert event.attributes["outer_message"] == (
        "Exception while executing function: ProcessOrderQueue"
    )
    assert event.attributes["resource_type"] == "microsoft.operationalinsights/workspaces"
    # The same log alert on the ADF endpoint is read as ADF: the endpoint decides.
    assert _one(doc, "azure-monitor").source == "adf"


def test_simple_log_alert_reads_the_row() -> None:
    doc = load_sample("azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json")
    doc["data"]["essentials"]["monitoringService"] = "Simple Log Alert"
    doc["data"]["alertContext"]["properties"] = {}
    criterion = _criterion(doc)
    criterion["dimensions"] = []
    inner = (
        "Failure happened on 'Source' side. ErrorCode=UserErrorSourceBlobNotExist,"
        "'Type=Microsoft.DataTransfer.Common.Shared.HybridDeliveryException,Message=The "
        "required Blob is missing. ContainerName: https://stsales.blob.core.windows.net/raw, "
        "path: sales/2025/03/14/sales.csv.,Source=Microsoft.DataTransfer.ClientLibrary,'"
    )
    criterion["event"] = [[
        {"name": "TimeGenerated", "value": "2025-03-14T02:17:12.55Z"},
        {"name": "PipelineName", "value": "pl_ingest_sales_daily"},
        {"name": "PipelineRunId", "value": "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"},
        {"name": "ActivityName", "value": "Copy_RawSales_To_Bronze"},
        {"name": "ActivityType", "value": "Copy"},
        {"name": "ErrorCode", "value": "2200"},
        {"name": "FailureType", "value": "UserError"},
        {"name": "ErrorMessage", "value": inner},
    ]]
    event = _one(doc)
    assert (event.source, event.kind, event.resource) == (
        "adf", "activity_run", "pl_ingest_sales_daily"
    )
    assert event.run_id == "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"
    assert event.error_code == "UserErrorSourceBlobNotExist"
    assert event.error_codes == ("2200", "UserErrorSourceBlobNotExist")
    assert event.message == inner
    assert event.failure_type == "UserError"
    assert event.attributes["row"]["TimeGenerated"] == "2025-03-14T02:17:12.55Z"
    assert event.attributes["activity_type"] == "Copy"
    assert "dimensions" not in event.attributes


def test_pipeline_level_message_names_the_failed_activity() -> None:
    doc = load_sample("seed/adf-test-alert.json")
    props = doc["data"]["alertContext"]["properties"]
    del props["Error"], props["ActivityName"]
    props["ErrorCode"] = "2200"
    props["ErrorMessage"] = (
        "Operation on target CopyData failed: Failure happened on 'Sink' side. "
        "ErrorCode=AdlsGen2OperationFailed,'Message=ADLS Gen2 operation failed'"
    )
    event = _one(doc)
    assert event.kind == "pipeline_run"
    assert event.attributes["activity"] == "CopyData"
    assert event.error_code == "AdlsGen2OperationFailed"
    assert event.error_codes == ("2200", "AdlsGen2OperationFailed")
    assert event.message == props["ErrorMessage"]


def test_in_house_error_object_2200_is_unwrapped() -> None:
    doc = load_sample(SEED)
    props = doc["data"]["alertContext"]["properties"]
    props["ErrorCode"] = "2200"
    props["Error"] = {
        "errorCode": "2200",
        "message": "Failure happened on 'Source' side. ErrorCode=UserErrorSourceBlobNotExist,x",
        "failureType": "UserError",
        "target": "CopyActivity1",
    }
    event = _one(doc)
    assert event.error_code == "UserErrorSourceBlobNotExist"
    assert event.error_codes == ("2200", "UserErrorSourceBlobNotExist")


def _bare_essentials(**context: Any) -> dict[str, Any]:
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {"essentials": {"alertRule": "r", "description": "the description"},
                 "alertContext": context},
    }


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"Error": {"message": "m1"}, "ErrorMessage": "m2", "detailedMessage": "m3",
          "message": "m4"}, "m1"),
        ({"ErrorMessage": "m2", "detailedMessage": "m3", "message": "m4"}, "m2"),
        ({"detailedMessage": "m3", "message": "m4"}, "m3"),
        ({"message": "m4", "ErrorMessage": ""}, "m4"),
        ({"Error": None, "ErrorMessage": None}, "the description"),
        # A flat string custom property named `Error` is its message.
        ({"Error": "m0", "ErrorMessage": "m2"}, "m0"),
    ],
)
def test_message_priority(properties: dict[str, Any], message: str) -> None:
    assert _one(_bare_essentials(properties=properties)).message == message


def test_message_falls_back_to_the_redacted_body() -> None:
    doc = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {"essentials": {"alertRule": "r"},
                 "customProperties": {"password": "hunter2", "note": "sig=abc123"}},
    }
    event = _one(doc)
    assert event.message == (
        '{"data":{"customProperties":{"note":"sig=***","password":"***"},'
        '"essentials":{"alertRule":"r"}},"schemaId":"azureMonitorCommonAlertSchema"}'
    )
    # No target and nothing of a pipeline (issue 15, 3): generic, not the endpoint's `adf`.
    assert (event.source, event.kind, event.status) == ("generic", "alert", "firing")
    assert event.resource == ""
    assert event.occurred_at is None
    assert event.severity is None


def test_body_message_is_truncated() -> None:
    doc = _bare_essentials(properties={"note": "x" * 5000})
    doc["data"]["essentials"] = {}
    message = _one(doc).message
    assert message.startswith('{"data":{"alertContext":{"properties":{"note":"xxxxx')
    assert message.endswith('xxx"}}}}…')  # cut, and marked as cut
    assert 1900 < len(message) <= 2000


def test_every_essentials_field_may_be_null() -> None:
    doc = load_sample(METRIC)
    doc["data"]["essentials"] = dict.fromkeys(doc["data"]["essentials"])
    doc["data"]["alertContext"] = None
    doc["data"]["customProperties"] = None
    event = _one(doc, "synapse-monitor")
    # Nothing names a pipeline any more (issue 15, 3): generic, not the endpoint's `synapse`.
    assert (event.source, event.kind, event.status) == ("generic", "alert", "firing")
    assert event.dedup_key.startswith("azmon:sha256:")
    assert event.message.startswith('{"data":{"alertContext":null,')


def test_schema_id_may_be_missing_when_the_envelope_is_common() -> None:
    doc = load_sample(SEED)
    del doc["schemaId"]
    assert _one(doc).run_id == "abc123-def456-789"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-14T02:21:37.4127823Z", datetime(2025, 3, 14, 2, 21, 37, 412782, tzinfo=UTC)),
        ("2025-03-14T03:21:37+01:00", _at(2025, 3, 14, 2, 21, 37)),
        ("2025-03-14T02:21:37", _at(2025, 3, 14, 2, 21, 37)),
        ("14/03/2025 02:21", None),
        ("", None),
    ],
)
def test_fired_time(value: str, expected: datetime | None) -> None:
    doc = load_sample("seed/adf-test-alert.json")
    doc["data"]["essentials"]["firedDateTime"] = value
    assert _one(doc).occurred_at == expected


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body is empty; expected an Azure Monitor alert (JSON object)"),
        (b" \n", "the body is empty; expected an Azure Monitor alert (JSON object)"),
        (b"[" * 100_000, "the body is not valid JSON: nested too deeply"),
    ],
    ids=["empty", "blank", "deep"],
)
def test_malformed(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse(body, "azure-monitor")
    assert (caught.value.message, caught.value.path) == (message, "$")


@pytest.mark.parametrize(
    ("body", "ours"),
    [
        (b'{"schemaId": ', "the body is not valid JSON: "),
        (b"{'a': 1}", "the body is not valid JSON: "),
        (b'{"a": "\xff"}', "the body is not valid UTF-8: "),
    ],
    ids=["truncated", "single-quotes", "utf8"],
)
def test_malformed_says_which_and_then_the_decoders_reason(body: bytes, ours: str) -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse(body, "azure-monitor")
    assert caught.value.path == "$"
    assert_wrapped(caught.value.message, ours)  # then msgspec's (or the codec's) reason


def test_a_dict_with_a_lone_surrogate_is_malformed() -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse({"schemaId": "\ud800"}, "azure-monitor")
    assert_wrapped(caught.value.message, "the body cannot be read as JSON: ")


SCHEMAS = "expected azureMonitorCommonAlertSchema or AzureMonitorMetricAlert"


@pytest.mark.parametrize(
    ("body", "message", "path"),
    [
        (b"[1, 2]", "expected a JSON object, got `array`", "$"),
        (b'"alert"', "expected a JSON object, got `str`", "$"),
        (b"null", "expected a JSON object, got `null`", "$"),
        (b'{"schemaId": "foo"}', f"unknown schemaId 'foo'; {SCHEMAS}", "$.schemaId"),
        (b'{"schemaId": 7}', f"unknown schemaId 7; {SCHEMAS}", "$.schemaId"),
        (b'{"data": {}}', f"missing schemaId; {SCHEMAS}", "$"),
    ],
)
def test_unknown_schema(body: bytes, message: str, path: str) -> None:
    with pytest.raises(UnknownSchema) as caught:
        parse(body, "azure-monitor")
    assert (caught.value.message, caught.value.path) == (message, path)


@pytest.mark.parametrize(
    ("body", "mentions", "path"),
    [
        (b'{"schemaId": "azureMonitorCommonAlertSchema"}', ("data",), "$"),
        (b'{"schemaId": "azureMonitorCommonAlertSchema", "data": {"alertContext": {}}}',
         ("essentials",), "$.data"),
        (b'{"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": []}}',
         ("object", "array"), "$.data.essentials"),
        (b'{"schemaId": "AzureMonitorMetricAlert", "data": {"status": "Activated"}}',
         ("context",), "$.data"),
    ],
)
def test_a_known_schema_of_the_wrong_shape_names_its_path(
    body: bytes, mentions: tuple[str, ...], path: str
) -> None:
    with pytest.raises(UnknownSchema) as caught:
        parse(body, "azure-monitor")
    # the path is ours (split off msgspec's text); the message is msgspec's, naming the field
    assert caught.value.path == path
    assert_wrapped(caught.value.message, "", *mentions)


def _mutated(relative: str, path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = load_sample(relative)
    json_parent(doc, path)[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("relative", "where", "value", "message", "path"),
    [
        # the parser's own checks of named values (worded as msgspec words its own)
        (SEED, ("data", "alertContext", "properties", "PipelineName"), ["a"],
         "Expected `str`, got `array`", "$.data.alertContext.properties.PipelineName"),
        (SEED, ("data", "alertContext", "properties", "Error"), 5,
         "Expected `object`, got `int`", "$.data.alertContext.properties.Error"),
        (SEED, ("data", "alertContext", "properties", "Error", "message"), {"text": "x"},
         "Expected `str`, got `object`", "$.data.alertContext.properties.Error.message"),
        (LEGACY, ("data", "properties"), {"ErrorCode": {"code": 1}},
         "Expected `str`, got `object`", "$.data.properties.ErrorCode"),
    ],
)
def test_wrong_types_name_their_path(
    relative: str, where: tuple[Any, ...], value: Any, message: str, path: str
) -> None:
    with pytest.raises(UnknownSchema) as caught:
        parse(_mutated(relative, where, value), "azure-monitor")
    assert (caught.value.message, caught.value.path) == (message, path)
    assert str(caught.value) == f"{message} - at `{path}`"


@pytest.mark.parametrize(
    ("relative", "where", "value", "mentions", "path"),
    [
        (METRIC, ("data", "essentials", "alertRule"), 5,
         ("str", "int"), "$.data.essentials.alertRule"),
        (METRIC, ("data", "essentials", "alertTargetIDs"), "one",
         ("array", "str"), "$.data.essentials.alertTargetIDs"),
        (METRIC, ("data", "alertContext", "condition", "allOf", 0, "dimensions", 0, "value"),
         {"x": 1}, ("str", "object"),
         "$.data.alertContext.condition.allOf[0].dimensions[0].value"),
        (METRIC, ("data", "alertContext", "condition", "allOf"), {},
         ("array", "object"), "$.data.alertContext.condition.allOf"),
        (LEGACY, ("data", "context", "severity"), [2],
         ("int", "str", "array"), "$.data.context.severity"),
    ],
)
def test_wrong_types_msgspec_finds_name_their_path(
    relative: str, where: tuple[Any, ...], value: Any, mentions: tuple[str, ...], path: str
) -> None:
    with pytest.raises(UnknownSchema) as caught:
        parse(_mutated(relative, where, value), "azure-monitor")
    # the path is ours (split off msgspec's text); the message is msgspec's, held to naming
    # the expected and the given types
    assert caught.value.path == path
    assert_wrapped(caught.value.message, "", *mentions)
    assert str(caught.value) == f"{caught.value.message} - at `{path}`"


def test_numbers_where_text_belongs_are_read_as_text() -> None:
    doc = _mutated(SEED, ("data", "alertContext", "properties", "PipelineRunId"), 123456)
    assert _one(doc).run_id == "123456"


# --- robustness: junk never escapes as anything but PayloadError ---------------------------

_json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from([
    "schemaId", "data", "essentials", "alertContext", "customProperties", "properties",
    "condition", "allOf", "dimensions", "event", "name", "value", "alertTargetIDs", "Error",
    "errorCode", "message", "monitorCondition", "monitoringService", "context", "status",
    "PipelineName", "ErrorCode", "ErrorMessage", "_ResourceId", "metricName", "severity",
    "firedDateTime", "resolvedDateTime", "alertId", "cloud_RoleName", "type",
])


def _parse_or_payload_error(body: Any, endpoint: str) -> None:
    try:
        events = parse(body, endpoint)
    except PayloadError:
        return
    for event in events:
        assert event.fingerprint
        assert event.id == ""
        msgspec.json.encode(event)  # storable


_endpoints = st.sampled_from(sorted(ENDPOINT_SOURCES))
_fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(body=_json, endpoint=_endpoints)
def test_arbitrary_json_values(body: Any, endpoint: str) -> None:
    _parse_or_payload_error(body, endpoint)
    _parse_or_payload_error(msgspec.json.encode(body), endpoint)


@_fast
@given(body=st.binary(max_size=200), endpoint=_endpoints)
def test_arbitrary_bytes(body: bytes, endpoint: str) -> None:
    _parse_or_payload_error(body, endpoint)


@_fast
@given(data=st.data(), relative=st.sampled_from(SAMPLES), endpoint=_endpoints)
def test_mutated_samples(data: st.DataObject, relative: str, endpoint: str) -> None:
    doc = load_sample(relative)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in json_paths(doc) if p]
        if not paths:  # every key deleted already: nothing left to mutate
            break
        target = data.draw(st.sampled_from(paths))
        parent = doc
        for key in target[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[target[-1]] = data.draw(_json)
        elif action == "delete":
            del parent[target[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(_keys)] = data.draw(_json)
        else:
            parent.append(data.draw(_json))
    _parse_or_payload_error(doc, endpoint)
    _parse_or_payload_error(msgspec.json.encode(doc), endpoint)
