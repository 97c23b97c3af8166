"""Before a mutating call the engine reads the target again and acts only if it still needs it
(issue 14, item 4): a forged or stale alert about a running cluster, a run that succeeded or
was already rerun changes nothing. Real webhooks over HTTP, the worker, the real SDK clients,
the sandbox; each test names the mutating calls the product made (none, or exactly the one
expected), the incident's outcome and the ``precheck`` audit record. The clock moves by hand."""

from __future__ import annotations

import json
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from engine.store import actions as actions_store
from engine.store import audit as audit_store
from tests.e2e.test_actions_e2e import PARENT_RUN, TASK, rule
from tests.e2e.test_remediation import BLOB, CREATE_RUN, RUN
from tests.engine.actions.conftest import DBX_TOKEN, FACTORY, PIPELINE, RG, cloud_settings
from tests.fixtures.common import ROOT, load_sample
from tests.fixtures.service import ADMIN

CLUSTER = "0601-182128-dcbte59m"
RESTART = ("databricks", "/api/2.1/clusters/restart")
REPAIR = ("databricks", "/api/2.2/jobs/runs/repair")


def _workspace(sandbox: Any) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=sandbox.databricks_url, token=DBX_TOKEN,
                                         auth_type="pat"))


def _adf(sandbox: Any) -> Any:
    from engine.cloud.clients import Clients

    clients = Clients(cloud_settings(sandbox))
    return clients.adf(clients.adf_route(FACTORY))


def _terminated(code: str = "DRIVER_UNREACHABLE") -> dict[str, Any]:
    """The in-house ``cluster.terminated`` body as a forger would send it."""
    return {"event": "cluster.terminated", "event_type": "cluster.terminated",
            "timestamp": 1741963104552,
            "cluster": {"cluster_id": CLUSTER, "cluster_name": f"etl-{CLUSTER}",
                        "state": "TERMINATED", "state_message": "Could not reach driver",
                        "termination_reason": {"code": code, "type": "CLOUD_FAILURE"}}}


def _running_cluster(sandbox: Any) -> None:
    """The emulator's cluster started and read until RUNNING (what the cloud really shows)."""
    w = _workspace(sandbox)
    w.clusters.start(CLUSTER)
    while w.clusters.get(CLUSTER).state.value != "RUNNING":
        pass


def _made(rig: Any, since: int) -> list[tuple[str, str]]:
    """The mutating calls that reached the sandbox after the first ``since`` calls."""
    wanted = set(rig.mutating_calls())
    return [(c["service"], c["path"]) for c in rig.sandbox.calls()[since:]
            if (c["service"], c["path"]) in wanted]


def _prechecks(rig: Any) -> list[dict[str, Any]]:
    return [r.data for r in audit_store.list_records(rig.db, kind="precheck", limit=100)]


def _one_rule(action: str, match: str, extra: str = "") -> str:
    return rule(match, f"      - action: {action}", extra, name="precheck")


def test_a_forged_termination_of_a_running_cluster_restarts_nothing(service_rig: Any) -> None:
    rig = service_rig(live=True, playbooks_dir=ROOT / "playbooks")
    _running_cluster(rig.sandbox)
    since = len(rig.sandbox.calls())
    rig.post("databricks-monitor", _terminated())
    assert rig.run() == 1
    rig.tick(1)
    rig.tick(2 * 60)  # the shipped rule's delay: where the restart went out before
    for _ in range(3):
        rig.tick(60)
    assert _made(rig, since) == []
    [incident] = rig.incidents()
    reason = f"nothing to do: cluster {CLUSTER} is RUNNING"
    assert (incident.rule_id, incident.state, incident.reason) == (
        "dbx-cluster-node-lost", "resolved", reason)
    [check] = _prechecks(rig)
    assert (check["action"], check["decision"], check["reason"], check["seen"]) == (
        "databricks.restart_cluster", "skip", reason,
        {"cluster_id": CLUSTER, "state": "RUNNING"})
    [row] = actions_store.for_incident(rig.db, incident.id)
    assert (row.state, row.result["detail"]) == ("skipped", reason)


def test_a_genuine_termination_restarts_the_cluster(service_rig: Any) -> None:
    rig = service_rig(live=True, playbooks_dir=ROOT / "playbooks")
    rig.post("databricks-monitor", _terminated())  # the emulator's cluster is TERMINATED
    assert rig.run() == 1
    rig.tick(2 * 60)
    assert _made(rig, 0) == [RESTART]
    [check] = _prechecks(rig)
    assert (check["decision"], check["reason"]) == (
        "act", f"cluster {CLUSTER} is TERMINATED (DRIVER_UNREACHABLE)")
    for _ in range(3):
        rig.tick(60)
    [incident] = rig.incidents()
    assert (incident.state, incident.reason) == ("resolved", "verified")


def test_an_adf_run_that_succeeded_is_not_rerun(service_rig: Any) -> None:
    rig = service_rig(_one_rule("adf.rerun_pipeline", "{source: adf}"), live=True)
    client = _adf(rig.sandbox)
    succeeded = client.pipelines.create_run(RG, FACTORY, PIPELINE).run_id
    while client.pipeline_runs.get(RG, FACTORY, succeeded).status != "Succeeded":
        pass
    since = len(rig.sandbox.calls())
    rig.post("azure-monitor", json.loads(json.dumps(load_sample(BLOB)).replace(RUN, succeeded)))
    assert rig.run() == 1
    assert _made(rig, since) == []
    [incident] = rig.incidents()
    reason = f"nothing to do: run {succeeded} of pipeline {PIPELINE} is Succeeded, not Failed"
    assert (incident.state, incident.reason) == ("resolved", reason)


def test_an_adf_run_already_rerun_is_not_rerun_again(service_rig: Any) -> None:
    rig = service_rig(_one_rule("adf.rerun_pipeline", "{source: adf}"), live=True)
    rerun = _adf(rig.sandbox).pipelines.create_run(
        RG, FACTORY, PIPELINE, reference_pipeline_run_id=RUN, is_recovery=True).run_id
    since = len(rig.sandbox.calls())
    rig.post("azure-monitor", load_sample(BLOB))
    assert rig.run() == 1
    assert _made(rig, since) == []
    [incident] = rig.incidents()
    reason = (f"nothing to do: run {RUN} of pipeline {PIPELINE} was already rerun: run {rerun} "
              "is InProgress")
    assert (incident.state, incident.reason) == ("resolved", reason)
    [check] = _prechecks(rig)
    assert check["seen"] == {"run_id": RUN, "pipeline": PIPELINE, "status": "Failed",
                             "latest_rerun": {"run_id": rerun, "status": "InProgress"}}


def test_an_adf_rerun_that_failed_is_rerun_again_within_the_budget(service_rig: Any) -> None:
    extra = "    verify: {timeout: 1h, interval: 1m}\n    budget: {max_attempts: 2, window: 24h}"
    rig = service_rig(_one_rule("adf.rerun_pipeline", "{source: adf}", extra), live=True)
    rig.sandbox.script("adf", "adf.createRun", fail_rerun=True)
    rig.post("azure-monitor", load_sample(BLOB))
    assert rig.run() == 1
    for _ in range(4):
        rig.tick(60)
    # The first rerun failed: the run group's latest run is Failed, so the run still needs one.
    assert _made(rig, 0) == [CREATE_RUN, CREATE_RUN]
    [incident] = rig.incidents()
    first = actions_store.for_incident(rig.db, incident.id)[0].result["ref"]["run_id"]
    assert [(c["decision"], c["reason"]) for c in _prechecks(rig)] == [
        ("act", f"run {RUN} of pipeline {PIPELINE} failed and was not rerun"),
        ("act", f"run {RUN} of pipeline {PIPELINE} failed and its latest rerun {first} "
                "failed too")]
    assert (incident.state, incident.reason) == ("resolved", "verified")


def test_a_databricks_run_that_is_no_longer_failed_is_not_repaired(service_rig: Any) -> None:
    rig = service_rig(_one_rule("databricks.repair_run", "{source: databricks}"), live=True)
    w = _workspace(rig.sandbox)
    w.jobs.repair_run(PARENT_RUN, rerun_all_failed_tasks=True)  # someone repaired it already
    while w.jobs.get_run(PARENT_RUN).state.result_state is None:
        pass
    since = len(rig.sandbox.calls())
    rig.post("databricks-monitor", load_sample(TASK))
    assert rig.run() == 1
    assert _made(rig, since) == []
    [incident] = rig.incidents()
    assert (incident.state, incident.reason) == (
        "resolved", f"nothing to do: run {PARENT_RUN} ended SUCCESS, not failed")


def test_a_check_that_cannot_read_is_retried_then_escalates_without_acting(
        service_rig: Any) -> None:
    rule = _one_rule("databricks.restart_cluster\n        delay: 1m", "{source: databricks}")
    rig = service_rig(rule, live=True)
    rig.post("databricks-monitor", _terminated())
    assert rig.run() == 1
    rig.sandbox.script("databricks", "clusters.get", status=503, times=1000)
    for seconds in (60, 60, 120, 240):  # the first try, then the backoff of 3 retries
        rig.tick(seconds)
    assert _made(rig, 0) == []
    [incident] = rig.incidents()
    assert incident.state == "escalated"
    assert incident.reason == (
        f"rules.yaml:r/actions[0]: databricks.restart_cluster[cluster={CLUSTER}] precheck: "
        "gave up retrying: 503 TEMPORARILY_UNAVAILABLE: Scripted failure 503 (retry after 1 s)"
        " (gave up after 3 retries)")
    assert [c["decision"] for c in _prechecks(rig)] == ["error"] * 4


def test_dry_run_runs_the_check_and_reports_it(service_rig: Any) -> None:
    rig = service_rig(live=False, playbooks_dir=ROOT / "playbooks")
    _running_cluster(rig.sandbox)
    rig.post("databricks-monitor", _terminated())
    assert rig.run() == 1
    rig.tick(2 * 60)
    assert rig.mutating_calls() == [("databricks", "/api/2.1/clusters/start")]  # the setup's
    [check] = _prechecks(rig)
    reason = f"nothing to do: cluster {CLUSTER} is RUNNING"
    assert (check["dry_run"], check["decision"], check["reason"]) == (True, "skip", reason)
    [incident] = rig.incidents()
    [row] = actions_store.for_incident(rig.db, incident.id)
    assert (row.state, row.result) == ("dry_run", {"precheck": reason})
    page = rig.client.get(f"/incidents/{incident.id}", headers=ADMIN)
    assert reason in page.text
