"""Each action's pre-check (``ActionSpec.precheck``) against the sandbox through the real SDK
clients: what it reads, and when it says act, skip, or cannot tell yet."""

from __future__ import annotations

from typing import Any

import pytest

from engine.actions.context import ActionContext, Precheck
from engine.actions.databricks import TRIED_TAG
from engine.actions.registry import action_table
from engine.cloud.enrich import enrich
from engine.errors import RetryableActionError
from tests.engine.actions.conftest import (
    ADF_RUN,
    adf_event,
    cluster_event,
    dbx_task_event,
    params_for,
)

SPECS = action_table()
CLUSTER = "0601-182128-dcbte59m"


def check(name: str, event: Any, ctx: ActionContext, **with_: Any) -> Precheck:
    spec = SPECS[name]
    assert spec.precheck is not None
    return spec.precheck(params_for(spec, event, **with_), event, ctx)


def _workspace(clients: Any) -> Any:
    return clients.databricks(clients.databricks_route())


def test_start_and_restart_act_on_a_terminated_cluster_only(ctx, clients) -> None:
    for name in ("databricks.start_cluster", "databricks.restart_cluster"):
        assert check(name, cluster_event(CLUSTER), ctx) == Precheck(
            act=True, reason=f"cluster {CLUSTER} is TERMINATED (DRIVER_UNREACHABLE)",
            seen={"cluster_id": CLUSTER, "state": "TERMINATED",
                  "termination_code": "DRIVER_UNREACHABLE"})
    _workspace(clients).clusters.start(CLUSTER)  # PENDING at the next read, then RUNNING
    pending = check("databricks.restart_cluster", cluster_event(CLUSTER), ctx)
    assert (pending.act, pending.reason) == (False, f"nothing to do: cluster {CLUSTER} is "
                                                    "PENDING")
    assert check("databricks.restart_cluster", cluster_event(CLUSTER), ctx) == Precheck(
        act=False, reason=f"nothing to do: cluster {CLUSTER} is RUNNING",
        seen={"cluster_id": CLUSTER, "state": "RUNNING"})


def test_a_terminating_cluster_is_checked_again_later(sandbox, ctx) -> None:
    sandbox.script("databricks", "clusters.get",
                   body={"cluster_id": CLUSTER, "state": "TERMINATING"})
    with pytest.raises(RetryableActionError) as raised:
        check("databricks.restart_cluster", cluster_event(CLUSTER), ctx)
    assert str(raised.value) == (
        f"databricks.restart_cluster[cluster={CLUSTER}] precheck: cluster {CLUSTER} is "
        "TERMINATING; checked again later")


def test_repair_skips_a_run_whose_repair_is_under_way(ctx, clients) -> None:
    assert check("databricks.repair_run", dbx_task_event(), ctx).act
    _workspace(clients).jobs.repair_run(447120398, rerun_all_failed_tasks=True)
    assert check("databricks.repair_run", dbx_task_event(), ctx) == Precheck(
        act=False, reason="nothing to do: run 447120398 is RUNNING: a retry or repair of it is "
                          "under way",
        seen={"run_id": 447120398, "life_cycle_state": "RUNNING", "result_state": "",
              "repairs": 1})


def test_run_job_needs_the_named_run_to_have_failed(ctx, clients) -> None:
    event = dbx_task_event()
    assert check("databricks.run_job", event, ctx).reason == "run 447120398 ended FAILED"
    no_run = dbx_task_event(run_id="", attributes={"job_id": "816305927331",
                                                   "workspace_id": "1234567890123456"})
    assert check("databricks.run_job", no_run, ctx) == Precheck(
        act=True, reason="job 816305927331 exists; the event names no run to check",
        seen={"job_id": 816305927331, "job": "sales_bronze_to_silver"})
    w = _workspace(clients)
    w.jobs.repair_run(447120398, rerun_all_failed_tasks=True)
    while w.jobs.get_run(447120398).state.result_state is None:
        pass
    assert check("databricks.run_job", event, ctx).reason == (
        "nothing to do: run 447120398 ended SUCCESS, not failed")


def test_node_type_moves_only_a_job_cluster_still_on_the_failed_type(ctx, clients) -> None:
    [event] = enrich(dbx_task_event(), clients).events  # node_type_id from the run's cluster
    with_ = {"fallbacks": ["Standard_D4ds_v5"]}
    assert check("databricks.set_node_type", event, ctx, **with_).reason == (
        "job cluster etl_cluster of job 816305927331 uses node type Standard_DS4_v2, which "
        "failed")
    from databricks.sdk.service.jobs import JobSettings

    w = _workspace(clients)
    job = w.jobs.get(816305927331)
    [spec] = job.settings.job_clusters
    spec.new_cluster.node_type_id = "Standard_E8ds_v5"  # someone chose another one since
    w.jobs.update(816305927331, new_settings=JobSettings(job_clusters=[spec]))
    assert check("databricks.set_node_type", event, ctx, **with_).reason == (
        "nothing to do: job cluster etl_cluster of job 816305927331 already uses node type "
        "Standard_E8ds_v5, not Standard_DS4_v2")
    spec.new_cluster.custom_tags = {TRIED_TAG: "Standard_DS4_v2;Standard_E8ds_v5"}
    w.jobs.update(816305927331, new_settings=JobSettings(job_clusters=[spec]))
    # Moved there by Remediator (an earlier attempt) and failed again: move on.
    assert check("databricks.set_node_type", event, ctx, **with_).act


def test_node_type_leaves_a_running_all_purpose_cluster_alone(ctx, clients) -> None:
    event = cluster_event(CLUSTER, error_code="CLOUD_PROVIDER_RESOURCE_STOCKOUT",
                          attributes={"cluster_id": CLUSTER, "node_type_id": "Standard_DS4_v2"})
    with_ = {"fallbacks": ["Standard_D4ds_v5"]}
    assert check("databricks.set_node_type", event, ctx, **with_).act
    w = _workspace(clients)
    w.clusters.start(CLUSTER)
    w.clusters.get(CLUSTER)
    assert check("databricks.set_node_type", event, ctx, **with_).reason == (
        f"nothing to do: cluster {CLUSTER} is RUNNING")


def test_synapse_rerun_only_of_a_failed_run_not_rerun_since(sandbox, ctx, clients) -> None:
    sandbox.failure("synapse", "given-run", run_id=ADF_RUN, pipeline="pl_syn")
    event = adf_event(source="synapse", attributes={"workspace": "syn-contoso-prod",
                                                    "pipeline": "pl_syn"})
    assert check("synapse.rerun_pipeline", event, ctx).reason == (
        f"run {ADF_RUN} of pipeline pl_syn failed and was not rerun")
    client = clients.synapse(clients.synapse_route("syn-contoso-prod"))
    rerun = client.pipeline.create_pipeline_run("pl_syn", reference_pipeline_run_id=ADF_RUN,
                                                is_recovery=True).run_id
    assert check("synapse.rerun_pipeline", event, ctx).reason == (
        f"nothing to do: run {ADF_RUN} of pipeline pl_syn was already rerun: run {rerun} is "
        "InProgress")


def test_synapse_refuses_a_run_of_another_pipeline(sandbox, ctx) -> None:
    sandbox.failure("synapse", "given-run", run_id=ADF_RUN, pipeline="pl_payroll_export")
    event = adf_event(source="synapse", attributes={"workspace": "syn-contoso-prod",
                                                    "pipeline": "pl_syn"})
    assert check("synapse.rerun_pipeline", event, ctx) == Precheck(
        act=False, refuse=True,
        reason=f"run {ADF_RUN} belongs to pipeline pl_payroll_export, not pl_syn: the alert "
               "does not describe this run; nothing was called",
        seen={"run_id": ADF_RUN, "pipeline": "pl_payroll_export", "status": "Failed"})


def test_adf_pipeline_names_compare_without_case(sandbox, ctx) -> None:
    sandbox.failure("adf", "given-run", run_id=ADF_RUN, pipeline="PL_Ingest_Sales_Daily")
    assert check("adf.rerun_pipeline", adf_event(), ctx).act  # names are case-insensitive


def test_run_job_and_node_type_refuse_a_run_of_another_job(sandbox, ctx) -> None:
    sandbox.failure("databricks", "given-run", run_id=447120398, job_id=123)
    event = dbx_task_event()  # names job 816305927331
    refused = Precheck(
        act=False, refuse=True, seen={"run_id": 447120398, "job_id": 123},
        reason="run 447120398 belongs to job 123, not 816305927331: the alert does not "
               "describe this run; nothing was called")
    assert check("databricks.run_job", event, ctx) == refused
    assert check("databricks.repair_run", event, ctx) == refused
    assert check("databricks.set_node_type", event, ctx, fallbacks=["Standard_D4ds_v5"],
                 job_id=816305927331, job_cluster_key="etl_cluster") == refused
