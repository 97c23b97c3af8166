"""The Azure Monitor parser on the documented shapes, one defect of issue 15 at a time.

The documented samples themselves (tests/testdata/docs) are posted end to end by
test_documented_samples.py; here each point is held by the smallest change of a sample.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.errors import UnknownSchema
from engine.events import ErrorEvent
from receivers import intake
from receivers.azure_monitor import parse
from tests.fixtures.common import TESTDATA

DOCS = TESTDATA / "docs"
SAMPLES = TESTDATA / "samples" / "azure-monitor"
PAYLOAD_SAMPLES = DOCS / "alerts-payload-samples"


def _doc(path: Any) -> dict[str, Any]:
    return json.loads(path.read_text())


def _one(doc: dict[str, Any], endpoint: str = "azure-monitor") -> ErrorEvent:
    [event] = parse(doc, endpoint)
    return event


def _service_health() -> dict[str, Any]:
    return _doc(PAYLOAD_SAMPLES / "26-test-action-service-health-alert.json")


def _resource_health() -> dict[str, Any]:
    return _doc(PAYLOAD_SAMPLES / "25-test-action-resource-health-alert.json")


# --- 1. liberal where unused, strict where used ----------------------------------------------

def test_numbers_in_fields_the_engine_does_not_use_are_accepted() -> None:
    doc = _service_health()
    assert (doc["data"]["alertContext"]["level"], doc["data"]["alertContext"]["channels"]) == (3, 1)
    event = _one(doc)
    assert event.attributes["level"] == "3"  # passed on as text
    doc["data"]["alertContext"].update(level=[1], channels={"x": 1}, eventSource=None)
    assert _one(doc).attributes.get("level") is None  # not a scalar: not passed on


def test_a_field_the_engine_uses_is_still_checked() -> None:
    doc = _service_health()
    doc["data"]["alertContext"]["operationName"] = 5
    with pytest.raises(UnknownSchema) as caught:
        _one(doc)
    assert caught.value.path == "$.data.alertContext.operationName"


# --- 2. the non-common schemas: errors name the field as it was sent --------------------------

@pytest.mark.parametrize(
    ("relative", "where", "value", "path"),
    [
        ("alerts-non-common-schema-definitions/05-activity-log-administrative.json",
         ("data", "context", "activityLog", "properties", "message"), {"x": 1},
         "$.data.context.activityLog.properties.message"),
        ("alerts-non-common-schema-definitions/05-activity-log-administrative.json",
         ("data", "context", "activityLog"), [1], "$.data.context.activityLog"),
        ("alerts-non-common-schema-definitions/03-log-alerts-v1-metric.json",
         ("SearchQuery",), 5, "$.SearchQuery"),
        ("alerts-log-webhook/03-log-search-alert-application-insights.json",
         ("data", "Dimensions", 0, "value"), {"x": 1}, "$.data.Dimensions[0].value"),
        ("proactive-failure-diagnostics/01-failure-anomalies-webhook-payload.json",
         ("properties", "context", "SearchQuery"), 5, "$.properties.context.SearchQuery"),
        ("alerts-non-common-schema-definitions/08-budget.json", ("data",), "x", "$.data"),
    ],
)
def test_a_wrong_type_in_a_non_common_schema_names_the_sent_path(
    relative: str, where: tuple[Any, ...], value: Any, path: str
) -> None:
    doc = _doc(DOCS / relative)
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(UnknownSchema) as caught:
        _one(doc)
    assert caught.value.path == path


@pytest.mark.parametrize(
    "body", [{"text": "  "}, {"AlertRuleName": "r"}, {"properties": {"essentials": 1}}])
def test_json_of_none_of_the_schemas_is_still_refused(body: dict[str, Any]) -> None:
    with pytest.raises(UnknownSchema) as caught:
        _one(body)
    assert caught.value.message == (
        "missing schemaId; expected azureMonitorCommonAlertSchema or AzureMonitorMetricAlert")


# --- 3. a data platform only on evidence ------------------------------------------------------

def _workspace_log_alert(**dims: str) -> dict[str, Any]:
    doc = _doc(PAYLOAD_SAMPLES / "22-test-action-log-alert-v2.json")
    criterion = doc["data"]["alertContext"]["condition"]["allOf"][0]
    criterion["dimensions"] = [{"name": k, "value": v} for k, v in dims.items()]
    return doc


@pytest.mark.parametrize(
    ("doc", "endpoint", "source"),
    [
        (_workspace_log_alert(Computer="test-computer"), "azure-monitor", "generic"),
        (_workspace_log_alert(Computer="test-computer"), "synapse-monitor", "generic"),
        (_workspace_log_alert(PipelineName="pl_copy"), "azure-monitor", "adf"),
        (_workspace_log_alert(PipelineName="pl_copy"), "synapse-monitor", "synapse"),
        (_workspace_log_alert(cloud_RoleName="func-orders"), "azure-functions-monitor",
         "functions"),
        (_service_health(), "azure-monitor", "generic"),
        (_doc(PAYLOAD_SAMPLES / "17-test-action-budget-alert.json"), "azure-monitor", "generic"),
    ],
    ids=["workspace", "workspace-synapse", "pipeline-dimension", "pipeline-dimension-synapse",
         "function-dimension", "subscription", "budget"],
)
def test_the_source_is_a_data_platform_only_on_evidence(
    doc: dict[str, Any], endpoint: str, source: str
) -> None:
    event = _one(doc, endpoint)
    assert event.source == source
    assert "factory" not in event.attributes


def test_a_query_of_an_adf_log_table_is_evidence() -> None:
    doc = _workspace_log_alert(Computer="x")
    doc["data"]["alertContext"]["condition"]["allOf"][0]["searchQuery"] = (
        'ADFPipelineRun | where Status == "Failed"')
    assert _one(doc).source == "adf"


# --- 4. the workspace is never the factory ----------------------------------------------------

def test_a_workspace_scoped_adf_alert_keeps_the_workspace_apart() -> None:
    event = _one(_doc(SAMPLES / "azmon-common-logv2-adf-activityrun-workspace.json"))
    assert (event.source, event.kind, event.resource) == ("adf", "activity_run",
                                                          "pl_ingest_sales_daily")
    assert event.resource_id == ""
    assert not {"factory", "subscription", "resource_group"} & set(event.attributes)
    assert event.attributes["log_workspace_id"].endswith("/workspaces/law-dataplatform-prod")
    with_id = _one(_doc(SAMPLES / "azmon-common-logv2-adf-activityrun-workspace-resourceid.json"))
    assert with_id.attributes["factory"] == "adf-contoso-prod"
    assert with_id.resource_id.endswith("/factories/adf-contoso-prod")


# --- 5. log alerts V1: Dimensions and SearchResults -------------------------------------------

def test_a_log_alert_v1_reads_its_dimensions_and_included_results() -> None:
    doc = _doc(SAMPLES / "azmon-common-logv1-adf-activityrun-searchresults.json")
    event = _one(doc)
    assert (event.run_id, event.error_code, event.attributes["pipeline"]) == (
        "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11", "UserErrorSourceBlobNotExist",
        "pl_ingest_sales_daily")
    assert event.attributes["row"]["ActivityType"] == "Copy"
    not_included = copy.deepcopy(doc)
    not_included["data"]["alertContext"]["IncludedSearchResults"] = "False"
    not_included["data"]["alertContext"]["Dimensions"] = [
        {"name": "PipelineName", "value": "pl_other"}]
    event = _one(not_included)
    assert (event.run_id, event.resource, event.error_code) == ("", "pl_other", "")
    assert "row" not in event.attributes


def test_a_dynamic_column_of_a_result_row_is_kept_as_json_text() -> None:
    doc = _doc(SAMPLES / "azmon-common-logv1-adf-activityrun-searchresults.json")
    table = doc["data"]["alertContext"]["SearchResults"]["tables"][0]
    table["columns"].append({"name": "Output", "type": "dynamic"})
    table["rows"][0].append({"rowsCopied": 0})
    assert _one(doc).attributes["row"]["Output"] == '{"rowsCopied":0}'


# --- 6. Application Insights: the component names the alert -----------------------------------

def test_an_application_insights_alert_names_its_component() -> None:
    event = _one(_doc(PAYLOAD_SAMPLES / "16-test-action-availability-test-alert.json"),
                 "azure-functions-monitor")
    assert (event.source, event.resource) == ("functions", "test-applicationInsights")
    assert "function_app" not in event.attributes  # a component is not a function app


# --- 7. a metric alert without a description --------------------------------------------------

def test_a_metric_alert_without_a_description_says_what_crossed_which_line() -> None:
    event = _one(_doc(SAMPLES / "azmon-common-metric-adf-pipelinefailed-nodescription.json"))
    assert event.message == (
        "PipelineFailedRuns = 1 > 0 (Name=pl_copy_sales, FailureType=UserError), 5 min window")


# --- 8. Service Health and Resource Health carry their own status -----------------------------

@pytest.mark.parametrize(
    ("change", "status"),
    [({}, "resolved"), ({"status": "Active", "properties.stage": "Active"}, "firing"),
     ({"status": "Active", "properties.stage": "RCA"}, "resolved"),
     ({"status": "Active", "properties.stage": "Complete"}, "resolved")],
)
def test_a_service_health_notice_has_its_own_status(change: dict[str, str], status: str) -> None:
    doc = _service_health()
    context = doc["data"]["alertContext"]
    for key, value in change.items():
        *parents, last = key.split(".")
        node = context
        for parent in parents:
            node = node[parent]
        node[last] = value
    event = _one(doc)
    assert event.status == status
    condition = "Resolved" if status == "resolved" else "Fired"
    assert event.dedup_key == f"azmon:{doc['data']['essentials']['alertId']}:{condition}"


@pytest.mark.parametrize(
    ("current", "operation", "status"),
    [("Unavailable", "Activated", "firing"), ("Available", "Activated", "resolved"),
     ("Degraded", "Resolved", "resolved")],
)
def test_a_resource_health_notice_has_its_own_status(
    current: str, operation: str, status: str
) -> None:
    doc = _resource_health()
    context = doc["data"]["alertContext"]
    context["properties"]["currentHealthStatus"] = current
    context["operationName"] = f"Microsoft.Resourcehealth/healthevent/{operation}/action"
    assert _one(doc).status == status


def test_an_administrative_activity_log_alert_stays_firing() -> None:
    doc = _doc(PAYLOAD_SAMPLES / "15-test-action-activity-log-alert.json")
    doc["data"]["essentials"]["monitorCondition"] = "Resolved"
    assert _one(doc).status == "firing"


# --- 9. the time of receipt for a payload without a time --------------------------------------

def test_the_intake_stamps_the_receipt_time_only_where_the_payload_has_none() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    budget = _one(_doc(DOCS / "alerts-non-common-schema-definitions/08-budget.json"))
    metric = _one(_doc(SAMPLES / "azmon-common-metric-adf-activityfailed.json"))
    assert budget.occurred_at is None
    stamped = intake.received([budget, metric], at)
    assert [e.occurred_at for e in stamped] == [at, metric.occurred_at]
