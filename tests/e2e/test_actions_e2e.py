"""End to end, one action at a time: a real webhook over HTTP -> worker (with enrichment) ->
the action through the real SDK client -> the sandbox emulator; each test names exactly the
mutating calls that reached the sandbox and the incident's final state. The clock is moved by
hand (no sleeps)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from engine.events import utcnow
from tests.e2e.test_remediation import BLOB, CREATE_RUN, RUN
from tests.fixtures.common import load_sample

TASK = "databricks/databricks-task-on-failure.json"
JOB = "databricks/databricks-job-on-failure.json"
SYNAPSE = "azure-monitor/azmon-common-metric-synapse-failed.json"
ADF_FACTORY = CREATE_RUN[1].rsplit("/pipelines/", 1)[0]


def rule(match: str, actions: str, extra: str = "", name: str = "e2e") -> str:
    """A one-rule playbook (YAML flow mappings keep the tests short)."""
    return f"""
name: {name}
rules:
  - id: r
    match: {match}
    actions:
{actions}
{extra}
"""


def _final(rig: Any) -> tuple[str, str]:
    [incident] = rig.incidents()
    return incident.state, incident.reason


def _calls(rig: Any) -> list[tuple[str, str, Any]]:
    """(service, path, body or query) of every mutating call that reached the sandbox."""
    wanted = set(rig.mutating_calls())
    return [(c["service"], c["path"], c["body"] or c["query"]) for c in rig.sandbox.calls()
            if (c["service"], c["path"]) in wanted]


PARENT_RUN = 447120398
JOB_ID = 816305927331
CLUSTER = "0314-020004-k3x9wq2e"
VERIFY = "    verify: {timeout: 1h, interval: 1m}"


def _delivered(service_rig: Any, playbook: str, endpoint: str, payload: Any) -> Any:
    rig = service_rig(playbook, live=True)
    rig.post(endpoint, payload)
    assert rig.run() == 1
    rig.tick(1)
    return rig


def _settle(rig: Any, ticks: int = 3) -> None:
    """Let the probes read the new run or cluster until it is terminal (one step per read)."""
    for _ in range(ticks):
        rig.tick(60)


def test_adf_cancel_run(service_rig: Any) -> None:
    rig = _delivered(service_rig, rule("{source: adf}", "      - action: adf.cancel_run"),
                     "azure-monitor", load_sample(BLOB))
    assert _calls(rig) == [("adf", f"{ADF_FACTORY}/pipelineruns/{RUN}/cancel",
                            {"api-version": "2018-06-01", "isRecursive": "true"})]
    assert _final(rig) == ("resolved", "actions succeeded; nothing to verify")


def test_synapse_rerun_pipeline_of_the_failed_run_the_metric_alert_counted(
        service_rig: Any) -> None:
    payload = load_sample(SYNAPSE)
    window = payload["data"]["alertContext"]["condition"]
    now = utcnow()  # the emulator seeds the failed run a minute before its own now
    window["windowStartTime"] = (now - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    window["windowEndTime"] = (now + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    rig = _delivered(service_rig, rule("{source: synapse}",
                                       "      - action: synapse.rerun_pipeline", VERIFY),
                     "synapse-monitor", payload)
    [incident] = rig.incidents()
    failed_run = json.loads(incident.event)["run_id"]
    [(service, path, query)] = _calls(rig)
    assert (service, path) == ("synapse", "/pipelines/pl_load_dw_sales/createRun")
    assert (query["referencePipelineRunId"], query["isRecovery"]) == (failed_run, "true")
    _settle(rig)
    assert _final(rig) == ("resolved", "verified")


def test_databricks_repair_run_repairs_the_parent_of_a_failed_task(service_rig: Any) -> None:
    rig = _delivered(service_rig, rule("{source: databricks, kind: task_run}",
                                       "      - action: databricks.repair_run", VERIFY),
                     "databricks-monitor", load_sample(TASK))
    [(service, path, body)] = _calls(rig)
    assert (service, path) == ("databricks", "/api/2.2/jobs/runs/repair")
    assert (body["run_id"], body["rerun_all_failed_tasks"]) == (PARENT_RUN, True)
    _settle(rig)
    assert _final(rig) == ("resolved", "verified")


def test_databricks_run_job(service_rig: Any) -> None:
    rig = _delivered(service_rig, rule("{source: databricks, kind: job_run}",
                                       "      - action: databricks.run_job", VERIFY),
                     "databricks-monitor", load_sample(JOB))
    [(service, path, body)] = _calls(rig)
    assert (service, path, body["job_id"]) == ("databricks", "/api/2.2/jobs/run-now", JOB_ID)
    _settle(rig)
    assert _final(rig) == ("resolved", "verified")


def test_databricks_start_cluster(service_rig: Any) -> None:
    rig = _delivered(service_rig, rule("{source: databricks}",
                                       "      - action: databricks.start_cluster", VERIFY),
                     "databricks-monitor", load_sample(TASK))
    assert _calls(rig) == [("databricks", "/api/2.1/clusters/start", {"cluster_id": CLUSTER})]
    _settle(rig)
    assert _final(rig) == ("resolved", "verified")


def test_databricks_restart_cluster(service_rig: Any) -> None:
    rig = _delivered(service_rig, rule("{source: databricks}",
                                       "      - action: databricks.restart_cluster", VERIFY),
                     "databricks-monitor", load_sample(TASK))
    assert _calls(rig) == [("databricks", "/api/2.1/clusters/restart", {"cluster_id": CLUSTER})]
    _settle(rig)
    assert _final(rig) == ("resolved", "verified")


def test_databricks_set_node_type_takes_the_first_untried_fallback(service_rig: Any) -> None:
    actions = ("      - action: databricks.set_node_type\n"
               "        with: {fallbacks: [Standard_DS4_v2, Standard_D4ds_v5, Standard_E4ds_v5]}")
    rig = _delivered(service_rig, rule("{source: databricks}", actions),
                     "databricks-monitor", load_sample(TASK))
    [(service, path, body)] = _calls(rig)
    assert (service, path) == ("databricks", "/api/2.2/jobs/update")
    [cluster] = body["new_settings"]["job_clusters"]
    assert (cluster["job_cluster_key"], cluster["new_cluster"]["node_type_id"]) == (
        "etl_cluster", "Standard_D4ds_v5")  # the current Standard_DS4_v2 is skipped
    assert _final(rig) == ("resolved", "actions succeeded; nothing to verify")


def test_notify_and_ticket_reach_the_sink_and_nothing_the_cloud(service_rig: Any) -> None:
    actions = ("      - action: notify.webhook\n"
               "        with: {channel: data-oncall, text: \"{{ event.resource }} failed\"}\n"
               "      - action: ticket.create\n"
               "        with: {title: \"{{ event.resource }}: {{ event.error_code }}\"}")
    rig = _delivered(service_rig, rule("{source: adf}", actions), "azure-monitor",
                     load_sample(BLOB))
    assert rig.mutating_calls() == []
    assert [r["path"] for r in rig.sink.received] == ["/chat", "/tickets"]
    chat, ticket = (r["body"] for r in rig.sink.received)
    assert "pl_ingest_sales_daily failed" in json.dumps(chat)
    assert ticket["title"] == "pl_ingest_sales_daily: UserErrorSourceBlobNotExist"
    assert _final(rig) == ("resolved", "actions succeeded; nothing to verify")


def test_noop_records_the_match_and_calls_nothing(service_rig: Any) -> None:
    rig = _delivered(service_rig, rule("{source: adf}", "      - action: noop"),
                     "azure-monitor", load_sample(BLOB))
    assert (rig.mutating_calls(), rig.sink.received) == ([], [])
    assert _final(rig) == ("resolved", "actions succeeded; nothing to verify")


def test_ignore_closes_the_incident_as_ignored(service_rig: Any) -> None:
    rig = _delivered(service_rig, rule("{source: adf}", "      - action: ignore"),
                     "azure-monitor", load_sample(BLOB))
    assert (rig.mutating_calls(), rig.sink.received) == ([], [])
    assert _final(rig) == ("ignored", "rules.yaml:r/actions[0]: closed as expected")
