"""The Azure templates that ``remediator setup azure`` renders: ARM parses as JSON and holds the
metrics, dimensions, queries and the secure parameter; Bicep holds the same (checked by
structure: no bicep CLI here); no credential is ever written."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cli.setup_azure import AzureTargets, build, render
from engine.errors import ConfigError

SUB = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
RG = "rg-dataplatform-prod"
URL = "https://remediator.contoso.com"
LAW = (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
       "Microsoft.OperationalInsights/workspaces/law-prod")


def _targets(**extra: Any) -> AzureTargets:
    base: dict[str, Any] = {"subscription": SUB, "resource_group": RG, "url": URL,
                            "factories": ("adf-contoso-prod", "adf-contoso-dev"),
                            "synapse": ("syn-contoso-prod",),
                            "function_apps": ("func-orders-prod",)}
    return AzureTargets(**{**base, **extra})


def _arm(**extra: Any) -> dict[str, Any]:
    return json.loads(render(build(_targets(**extra)))["remediator-alerts.json"])


def _by_type(arm: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in arm["resources"] if r["type"] == kind]


KEY_PARAMS = {"azure-monitor": "webhookApiKeyAzureMonitor",
              "synapse-monitor": "webhookApiKeySynapseMonitor",
              "azure-functions-monitor": "webhookApiKeyAzureFunctionsMonitor"}


def test_arm_action_groups_post_to_each_endpoint_with_its_own_key_from_a_secure_parameter(
) -> None:
    arm = _arm()
    # One key per receiver: the key in one action group's URL opens only that receiver.
    assert {name: p["type"] for name, p in arm["parameters"].items()
            if name != "location"} == dict.fromkeys(KEY_PARAMS.values(), "securestring")
    assert arm["parameters"]["webhookApiKeySynapseMonitor"]["metadata"]["description"] == (
        "The API key of receiver /synapse-monitor (one of [receivers.synapse-monitor] "
        "api_keys).")
    receivers = {g["name"]: g["properties"]["webhookReceivers"]
                 for g in _by_type(arm, "Microsoft.Insights/actionGroups")}
    assert receivers == {
        f"ag-remediator-{key}": [{
            "name": f"remediator-{path}",
            "serviceUri": f"[concat('{URL}/{path}?api_key=', "
                          f"parameters('{KEY_PARAMS[path]}'))]",
            "useCommonAlertSchema": True,
        }]
        for key, path in (("adf", "azure-monitor"), ("synapse", "synapse-monitor"),
                          ("functions", "azure-functions-monitor"))
    }


def test_arm_metric_alerts_split_by_name_and_failure_type() -> None:
    alerts = _by_type(_arm(), "Microsoft.Insights/metricAlerts")
    adf = [a for a in alerts if "/factories/adf-contoso-prod" in a["properties"]["scopes"][0]]
    criteria = [a["properties"]["criteria"]["allOf"][0] for a in adf]
    assert [c["metricName"] for c in criteria] == [
        "PipelineFailedRuns", "ActivityFailedRuns", "TriggerFailedRuns"]
    for c in criteria:
        assert c["metricNamespace"] == "Microsoft.DataFactory/factories"
        assert c["dimensions"] == [
            {"name": "Name", "operator": "Include", "values": ["*"]},
            {"name": "FailureType", "operator": "Include", "values": ["*"]},
        ]
        assert (c["operator"], c["threshold"], c["timeAggregation"]) == ("GreaterThan", 0, "Total")
    assert adf[0]["properties"]["actions"] == [
        {"actionGroupId": "[resourceId('Microsoft.Insights/actionGroups', 'ag-remediator-adf')]"}]
    assert adf[0]["dependsOn"] == [
        "[resourceId('Microsoft.Insights/actionGroups', 'ag-remediator-adf')]"]
    synapse = [a for a in alerts if "Microsoft.Synapse" in a["properties"]["scopes"][0]]
    [c] = synapse[0]["properties"]["criteria"]["allOf"]
    assert c["metricName"] == "IntegrationPipelineRunsEnded"
    assert c["dimensions"][0] == {"name": "Result", "operator": "Include", "values": ["Failed"]}
    assert len(alerts) == 7  # 3 per factory, 1 for the Synapse workspace


def test_arm_log_alerts_carry_the_run_id_dimensions() -> None:
    rules = {r["name"]: r for r in _by_type(_arm(), "Microsoft.Insights/scheduledQueryRules")}
    adf = rules["remediator-adf-adf-contoso-prod-activity-failed-log"]
    assert (adf["kind"], adf["apiVersion"]) == ("LogAlert", "2023-03-15-preview")
    assert adf["properties"]["scopes"] == [
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.DataFactory/factories/"
        "adf-contoso-prod"]
    [criterion] = adf["properties"]["criteria"]["allOf"]
    assert criterion["query"] == (
        'ADFActivityRun\n| where Status == "Failed"\n| summarize FailedActivities = count() by '
        "_ResourceId, PipelineName, PipelineRunId, ActivityName, ErrorCode, FailureType")
    assert [d["name"] for d in criterion["dimensions"]] == [
        "_ResourceId", "PipelineName", "PipelineRunId", "ActivityName", "ErrorCode", "FailureType"]
    assert all(d["operator"] == "Include" and d["values"] == ["*"]
               for d in criterion["dimensions"])
    functions = rules["remediator-functions-func-orders-prod-exceptions"]
    [criterion] = functions["properties"]["criteria"]["allOf"]
    assert criterion["query"] == (
        'exceptions\n| where cloud_RoleName == "func-orders-prod"\n| summarize Exceptions = '
        "count() by cloud_RoleName, operation_Name, problemId, type, outerMessage")
    assert functions["properties"]["scopes"] == [
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Insights/components/"
        "func-orders-prod"]
    synapse = rules["remediator-synapse-syn-contoso-prod-pipeline-failed-log"]
    assert synapse["properties"]["criteria"]["allOf"][0]["query"].startswith(
        'SynapseIntegrationPipelineRuns\n| where Status == "Failed"')


def test_a_log_workspace_scopes_the_log_alerts_and_filters_by_resource() -> None:
    rules = _by_type(_arm(log_workspace=LAW, function_apps=()),
                     "Microsoft.Insights/scheduledQueryRules")
    assert {r["properties"]["scopes"][0] for r in rules} == {LAW}
    query = rules[0]["properties"]["criteria"]["allOf"][0]["query"]
    assert ('| where _ResourceId =~ "/subscriptions/' + SUB + "/resourceGroups/" + RG
            + '/providers/Microsoft.DataFactory/factories/adf-contoso-prod"') in query


def test_basic_auth_puts_the_password_parameter_in_the_uri() -> None:
    arm = _arm(auth="basic", basic_user="azmon")
    assert arm["parameters"]["webhookPassword"]["type"] == "securestring"
    assert list(arm["parameters"]) == ["webhookPassword", "location"]
    group = _by_type(arm, "Microsoft.Insights/actionGroups")[0]
    assert group["properties"]["webhookReceivers"][0]["serviceUri"] == (
        "[concat('https://azmon:', parameters('webhookPassword'), "
        "'@remediator.contoso.com/azure-monitor')]")


def test_entra_auth_makes_a_secure_webhook_without_any_secret_parameter() -> None:
    arm = _arm(auth="entra", entra_object_id="0f8c2a1e-oid", tenant_id="72f988bf-tid",
               entra_identifier_uri="api://remediator")
    assert list(arm["parameters"]) == ["location"]
    receiver = _by_type(arm, "Microsoft.Insights/actionGroups")[0]["properties"][
        "webhookReceivers"][0]
    assert receiver == {"name": "remediator-azure-monitor",
                        "serviceUri": f"{URL}/azure-monitor", "objectId": "0f8c2a1e-oid",
                        "identifierUri": "api://remediator", "tenantId": "72f988bf-tid",
                        "useAadAuth": True, "useCommonAlertSchema": True}
    bicep = render(build(_targets(auth="entra", entra_object_id="0f8c2a1e-oid",
                                  entra_identifier_uri="api://remediator")))[
        "remediator-alerts.bicep"]
    assert "@secure()" not in bicep
    assert re.search(r"useAadAuth: true\n\s+objectId: '0f8c2a1e-oid'\n\s+identifierUri: "
                     r"'api://remediator'\n", bicep)


def test_bicep_structure_holds_the_same_rules() -> None:
    bicep = render(build(_targets()))["remediator-alerts.bicep"]
    for param in KEY_PARAMS.values():
        assert re.search(rf"@secure\(\)\n@description\('[^']+'\)\nparam {param} string\n", bicep)
    resources = re.findall(r"^resource (\w+) '([\w./]+)@([\w-]+)' = \{$", bicep, re.M)
    assert [(t, v) for _, t, v in resources].count(
        ("Microsoft.Insights/metricAlerts", "2018-03-01")) == 7
    assert [(t, v) for _, t, v in resources].count(
        ("Microsoft.Insights/scheduledQueryRules", "2023-03-15-preview")) == 4
    assert [s for s, t, _ in resources if t == "Microsoft.Insights/actionGroups"] == [
        "ag_adf", "ag_synapse", "ag_functions"]
    assert (f"serviceUri: '{URL}/synapse-monitor?api_key=${{webhookApiKeySynapseMonitor}}'\n"
            "        useCommonAlertSchema: true\n") in bicep
    for metric in ("PipelineFailedRuns", "ActivityFailedRuns", "TriggerFailedRuns",
                   "IntegrationPipelineRunsEnded"):
        assert f"metricName: '{metric}'" in bicep
    assert re.search(r"name: 'FailureType'\n\s+operator: 'Include'\n\s+values: \[\n\s+'\*'\n",
                     bicep)
    assert ("query: 'ADFActivityRun\\n| where Status == \"Failed\"\\n| summarize "
            "FailedActivities = count() by _ResourceId, PipelineName, PipelineRunId, "
            "ActivityName, ErrorCode, FailureType'") in bicep
    assert "kind: 'LogAlert'" in bicep
    # Every block closes: as many opening as closing braces and brackets.
    assert bicep.count("{") == bicep.count("}")
    assert bicep.count("[") == bicep.count("]")
    # Every reference to an action group names a declared one.
    assert set(re.findall(r"(ag_\w+)\.id", bicep)) == {"ag_adf", "ag_synapse", "ag_functions"}


def test_incomplete_requests_are_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError) as exc:
        build(_targets(factories=(), synapse=(), function_apps=()))
    assert str(exc.value) == ("setup azure: name at least one --factory, --synapse or "
                              "--function-app")
    with pytest.raises(ConfigError) as exc:
        build(_targets(url="https://u:p@remediator.contoso.com"))
    assert str(exc.value) == ("setup azure: --url must carry no credentials or query string; "
                              "the credential is a deployment parameter")
    with pytest.raises(ConfigError) as exc:
        build(_targets(auth="entra"))
    assert str(exc.value) == ("setup azure: --auth entra needs --entra-object-id and "
                              "--entra-identifier-uri (the app registration of the receiver)")
    with pytest.raises(ConfigError) as exc:
        build(_targets(factories=("adf'; drop",)))
    assert str(exc.value) == "setup azure: \"adf'; drop\" is not a valid resource name"
