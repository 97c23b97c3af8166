"""Names taken from an alert are checked against the cloud's own naming rules before they can
reach a URL (issue 14, item 7): a pipeline ``..`` turned ``.../pipelines/../createRun`` into
``.../factories/<f>/createRun``. Now nothing is called, enrichment notes why, and the incident
escalates with the rule; a valid name, even an unusual one, still works. Real webhooks, the
worker, the real SDK clients and the sandbox's call log."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

import pytest

from engine.store import audit as audit_store
from tests.e2e.test_remediation import BLOB, RUN
from tests.fixtures.common import load_sample

RULE = """
name: names
rules:
  - id: r
    match: {source: adf}
    actions:
      - action: adf.rerun_pipeline
"""
RULE_TEXT = ("at most 260 characters, starting with a letter, a digit or '_', without "
             ". + ? / < > * % & : \\ # or control characters")


def named(payload: dict[str, Any], pipeline: str) -> dict[str, Any]:
    """A copy of a blob-missing log alert about ``pipeline`` (in its properties and
    dimensions)."""
    payload = copy.deepcopy(payload)
    context = payload["data"]["alertContext"]
    context["properties"]["PipelineName"] = pipeline
    for dimension in context["condition"]["allOf"][0]["dimensions"]:
        if dimension["name"] == "PipelineName":
            dimension["value"] = pipeline
    return payload


def _alert(pipeline: str) -> dict[str, Any]:
    """The blob-missing log alert about ``pipeline``."""
    return named(load_sample(BLOB), pipeline)


@pytest.mark.parametrize(("pipeline", "shown", "why"), [
    ("..", "'..'", ""),
    ("a/b", "'a/b'", ""),
    ("%2e%2e", "'%2e%2e'", ""),
    ("../../../providers/Microsoft.Authorization/roleAssignments/x",
     "'../../../providers/Microsoft.Authorization/roleAssignments/x'", ""),
    ("p" * 261, "'" + "p" * 63 + "…'", " (is 261 characters long)"),
    ("pl\x00evil", "'pl\\x00evil'", " (contains a control character)"),
    ("pl\r\nevil", "'pl\\r\\nevil'", " (contains a control character)"),
])
def test_a_pipeline_name_the_cloud_cannot_have_calls_nothing_and_escalates(
        service_rig: Any, pipeline: str, shown: str, why: str) -> None:
    rig = service_rig(RULE, live=True)
    rig.post("azure-monitor", _alert(pipeline))
    assert rig.run() == 1
    rig.tick(60)
    assert rig.sandbox.calls("adf") == []  # no look-up, no token, no createRun
    [incident] = rig.incidents()
    problem = f"pipeline {shown} is not a valid Data Factory pipeline name{why}: {RULE_TEXT}"
    assert (incident.state, incident.reason) == (
        "escalated", f"rules.yaml:r/actions[0]: invalid parameters: {problem}")
    [enriched] = audit_store.list_records(rig.db, kind="enriched", limit=10)
    assert enriched.data["notes"] == [
        {"call": "adf look-ups", "ok": False, "detail": f"not called: {problem}"}]


def test_an_unusual_but_valid_pipeline_name_still_works(service_rig: Any) -> None:
    pipeline = "Sales Daily-Load_2 (EU)"
    rig = service_rig(RULE, live=True)
    rig.sandbox.failure("adf", "given-run", run_id=RUN, pipeline=pipeline)
    rig.post("azure-monitor", _alert(pipeline))
    assert rig.run() == 1
    [call] = [c for c in rig.sandbox.calls("adf") if c["path"].endswith("/createRun")]
    assert call["path"].endswith(f"/factories/adf-contoso-prod/pipelines/{quote(pipeline)}"
                                 "/createRun")
    assert call["query"]["referencePipelineRunId"] == RUN


def test_a_cluster_id_the_cloud_cannot_have_calls_nothing(service_rig: Any) -> None:
    rule = RULE.replace("{source: adf}", "{source: databricks}").replace(
        "adf.rerun_pipeline", "databricks.restart_cluster")
    rig = service_rig(rule, live=True)
    rig.post("databricks-monitor", {
        "event": "cluster.terminated", "timestamp": 1741963104552,
        "cluster": {"cluster_id": "../../jobs/runs/repair", "state": "TERMINATED",
                    "termination_reason": {"code": "DRIVER_UNREACHABLE"}}})
    assert rig.run() == 1
    assert rig.sandbox.calls("databricks") == []
    [incident] = rig.incidents()
    assert (incident.state, incident.reason) == (
        "escalated", "rules.yaml:r/actions[0]: invalid parameters: cluster_id "
                     "'../../jobs/runs/repair' is not a valid Databricks cluster id: "
                     "MMDD-HHMMSS-suffix, as Databricks issues them (e.g. 0314-020004-k3x9wq2e)")
