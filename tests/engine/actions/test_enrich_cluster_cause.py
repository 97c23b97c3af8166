"""A run that died with its cluster: enrichment reads the cause from ``clusters/get``.

Databricks runs report only CLUSTER_ERROR, CLOUD_FAILURE or DRIVER_ERROR when their cluster
fails; the cluster's ``termination_reason`` says why (INSTANCE_UNREACHABLE, a stock-out).
"""

from __future__ import annotations

from typing import Any

import httpx

from engine.cloud.clients import Clients
from engine.cloud.enrich import enrich
from tests.engine.actions.conftest import dbx_task_event

PARENT = 447120398
CLUSTER = "0314-020004-k3x9wq2e"


def _run_died_with_cluster(sandbox: Any, code: str) -> None:
    """Script the next runs/get: the sandbox's own run, its failed task ended ``code``."""
    run = httpx.get(f"{sandbox.databricks_url}/api/2.2/jobs/runs/get",
                    params={"run_id": PARENT, "include_history": "true"},
                    headers={"Authorization": "Bearer t"}).json()
    details = {"code": code, "type": "CLOUD_FAILURE",
               "message": f"Cluster {CLUSTER} was terminated during the run."}
    for task in run["tasks"]:
        if task["task_key"] == "transform_orders":
            task["status"]["termination_details"] = details
    run["status"]["termination_details"] = details
    sandbox.script("databricks", "jobs.runs.get", body=run)


def test_a_cluster_error_takes_the_clusters_termination_code(sandbox: Any,
                                                            clients: Clients) -> None:
    _run_died_with_cluster(sandbox, "CLUSTER_ERROR")
    result = enrich(dbx_task_event(), clients)
    [event] = result.events
    # The sandbox's first-sight cluster was TERMINATED with DRIVER_UNREACHABLE.
    assert (event.error_code, event.failure_type) == ("DRIVER_UNREACHABLE", "CLOUD_FAILURE")
    assert event.error_codes == ("DRIVER_UNREACHABLE", "CLUSTER_ERROR")
    assert event.attributes["cluster_termination_code"] == "DRIVER_UNREACHABLE"
    assert event.attributes["job_cluster_key"] == "etl_cluster"
    assert [n.call for n in result.notes][-1] == f"databricks clusters.get {CLUSTER}"


def test_a_code_error_does_not_look_at_the_cluster(sandbox: Any, clients: Clients) -> None:
    result = enrich(dbx_task_event(), clients)
    [event] = result.events
    assert event.error_code == "RUN_EXECUTION_ERROR"
    assert "cluster_termination_code" not in event.attributes
    assert not any(n.call.startswith("databricks clusters.get") for n in result.notes)


def test_a_normal_termination_keeps_the_runs_code(sandbox: Any, clients: Clients) -> None:
    _run_died_with_cluster(sandbox, "CLOUD_FAILURE")
    cluster = httpx.get(f"{sandbox.databricks_url}/api/2.1/clusters/get",
                        params={"cluster_id": CLUSTER},
                        headers={"Authorization": "Bearer t"}).json()
    cluster["termination_reason"] = {"code": "JOB_FINISHED", "type": "SUCCESS"}
    sandbox.script("databricks", "clusters.get", body=cluster)
    [event] = enrich(dbx_task_event(), clients).events
    assert (event.error_code, event.error_codes) == ("CLOUD_FAILURE", ("CLOUD_FAILURE",))
    assert "cluster_termination_code" not in event.attributes


def test_a_library_failure_gets_the_clusters_failed_libraries(sandbox: Any,
                                                              clients: Clients) -> None:
    made = sandbox.failure("databricks", "job-run", termination_code="LIBRARY_INSTALLATION_ERROR")
    event = dbx_task_event(run_id=str(made["task_run_id"]),
                           attributes={**dbx_task_event().attributes,
                                       "parent_run_id": str(made["run_id"])})
    result = enrich(event, clients)
    [enriched] = result.events
    assert enriched.error_code == "LIBRARY_INSTALLATION_ERROR"
    [library] = enriched.attributes["failed_libraries"]
    assert library["library"] == {"pypi": {"package": "great-expectations==0.18.99"}}
    assert "No matching distribution found for great-expectations==0.18.99" \
        in library["messages"][0]
    assert [n.call for n in result.notes][-1] == (
        f"databricks libraries.cluster_status {made['cluster_id']}")
    # a run that failed otherwise does not ask
    made = sandbox.failure("databricks", "job-run", termination_code="RUN_EXECUTION_ERROR")
    event = dbx_task_event(attributes={**dbx_task_event().attributes,
                                       "parent_run_id": str(made["run_id"])})
    [enriched] = enrich(event, clients).events
    assert "failed_libraries" not in enriched.attributes
