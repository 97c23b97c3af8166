"""Databricks actions through databricks-sdk against the sandbox's workspace emulator."""

from __future__ import annotations

import msgspec
import pytest

from engine.actions.context import ActionContext
from engine.actions.databricks import TRIED_TAG
from engine.actions.registry import action_table
from engine.cloud.enrich import enrich
from engine.errors import PermanentActionError
from tests.engine.actions.conftest import calls_to, cluster_event, dbx_task_event, params_for

SPECS = action_table()
REPAIR = SPECS["databricks.repair_run"]


def test_repair_targets_the_parent_run_of_a_task_event(sandbox, ctx: ActionContext):
    event = dbx_task_event()
    params = params_for(REPAIR, event)
    assert params.run_id == 447120398
    assert REPAIR.describe_call(params, event) == (
        "would repair run 447120398 of job sales_bronze_to_silver (rerun all failed tasks)"
    )
    result = REPAIR.run(params, event, ctx)
    [call] = calls_to(sandbox, "databricks", "/jobs/runs/repair")
    assert call["body"] == {"run_id": 447120398, "rerun_all_failed_tasks": True}
    assert result.outcome == "started"
    assert result.ref["run_id"] == "447120398"
    assert [REPAIR.probe(result, ctx).state for _ in range(3)] == [
        "running", "succeeded", "succeeded"]


def test_a_second_repair_sends_the_latest_repair_id(sandbox, ctx: ActionContext):
    event = dbx_task_event()
    params = params_for(REPAIR, event)
    sandbox.script("databricks", "jobs.runs.repair", fail_rerun=True)
    first = REPAIR.run(params, event, ctx)
    while REPAIR.probe(first, ctx).state == "running":
        pass
    assert REPAIR.probe(first, ctx).state == "failed"
    REPAIR.run(params, event, ctx)
    second = calls_to(sandbox, "databricks", "/jobs/runs/repair")[-1]
    assert second["body"]["latest_repair_id"] == int(first.ref["repair_id"])


def test_reconcile_finds_a_repair_already_made(sandbox, ctx: ActionContext, clients):
    [event] = enrich(dbx_task_event(), clients).events  # repair_count 0 at the failure
    params = params_for(REPAIR, event)
    assert REPAIR.reconcile(params, event, ctx) is None
    made = REPAIR.run(params, event, ctx)
    found = REPAIR.reconcile(params, event, ctx)
    assert found is not None and found.outcome == "already_done"
    assert found.ref == made.ref
    assert len(calls_to(sandbox, "databricks", "/jobs/runs/repair")) == 1


def test_repair_key_is_stable_and_counts_repairs():
    event = dbx_task_event(attributes={**dbx_task_event().attributes, "repair_count": 0})
    params = params_for(REPAIR, event)
    assert REPAIR.key(params, event) == REPAIR.key(params_for(REPAIR, event), event)
    later = dbx_task_event(attributes={**event.attributes, "repair_count": 1})
    assert REPAIR.key(params, event) != REPAIR.key(params_for(REPAIR, later), later)


def test_run_job_sends_an_idempotency_token(sandbox, ctx: ActionContext):
    spec = SPECS["databricks.run_job"]
    event = dbx_task_event()
    params = params_for(spec, event)
    assert spec.describe_call(params, event) == "would run job 816305927331 now"
    result = spec.run(params, event, ctx)
    [call] = calls_to(sandbox, "databricks", "/jobs/run-now")
    assert call["body"]["job_id"] == 816305927331
    assert len(call["body"]["idempotency_token"]) == 32
    assert result.outcome == "started"
    assert spec.probe(result, ctx).state in ("running", "succeeded")


def test_start_cluster_then_probe_to_running(sandbox, ctx: ActionContext):
    spec = SPECS["databricks.start_cluster"]
    event = cluster_event()
    params = params_for(spec, event)
    assert spec.reconcile(params, event, ctx) is None  # terminated: not started yet
    result = spec.run(params, event, ctx)
    [call] = calls_to(sandbox, "databricks", "/clusters/start")
    assert call["body"] == {"cluster_id": "0601-182128-dcbte59m"}
    states = [spec.probe(result, ctx).state for _ in range(3)]
    assert states == ["running", "succeeded", "succeeded"]
    found = spec.reconcile(params, event, ctx)
    assert found is not None and found.detail == "cluster 0601-182128-dcbte59m is already RUNNING"


def test_restart_cluster_that_fails_to_come_up(sandbox, ctx: ActionContext):
    spec = SPECS["databricks.restart_cluster"]
    sandbox.script("databricks", "clusters.restart", fail_rerun=True)
    event = cluster_event()
    result = spec.run(params_for(spec, event), event, ctx)
    assert calls_to(sandbox, "databricks", "/clusters/restart")[0]["body"] == {
        "cluster_id": "0601-182128-dcbte59m"}
    assert spec.probe(result, ctx).state == "running"
    probe = spec.probe(result, ctx)
    assert probe.state == "failed"
    assert probe.detail == (
        "cluster 0601-182128-dcbte59m is TERMINATED (CLOUD_PROVIDER_LAUNCH_FAILURE): "
        "Azure error: the requested VM size is currently not available."
    )


def test_set_node_type_of_an_all_purpose_cluster_walks_the_fallbacks(sandbox, ctx, clients):
    spec = SPECS["databricks.set_node_type"]
    cid = "0601-182128-dcbte59m"
    current = clients.databricks(clients.databricks_route()).clusters.get(cid).node_type_id
    fallbacks = [n for n in ("Standard_DS3_v2", "Standard_DS4_v2", "Standard_E4ds_v5")]
    event = cluster_event(attributes={"cluster_id": cid, "workspace_id": "1234567890123456",
                                      "node_type_id": current})
    params = params_for(spec, event, fallbacks=fallbacks)
    first = spec.run(params, event, ctx)
    expected = [n for n in fallbacks if n != current]
    assert first.ref["node_type_id"] == expected[0]
    [edit] = calls_to(sandbox, "databricks", "/clusters/edit")
    assert edit["body"]["node_type_id"] == expected[0]
    assert edit["body"]["spark_version"] == "15.4.x-scala2.12"
    assert edit["body"]["cluster_name"] == f"etl-{cid}"
    assert edit["body"]["custom_tags"][TRIED_TAG] == f"{current};{expected[0]}"
    second = spec.run(params, event, ctx)
    assert second.ref["node_type_id"] == expected[1]
    with pytest.raises(PermanentActionError) as info:
        spec.run(params, event, ctx)
    assert str(info.value) == (
        f"databricks.set_node_type[cluster={cid}]: every fallback node type has been tried "
        f"({', '.join(fallbacks)}); current is {expected[1]}"
    )
    found = spec.reconcile(params, event, ctx)
    assert found is not None and found.detail == f"node type is already {expected[1]}"


def test_set_node_type_of_a_job_cluster_updates_the_job(sandbox, ctx, clients):
    spec = SPECS["databricks.set_node_type"]
    [event] = enrich(dbx_task_event(), clients).events
    params = params_for(spec, event, fallbacks=["Standard_DS4_v2", "Standard_E4ds_v5"])
    assert params.job_cluster_key == "etl_cluster" and params.cluster_id == ""
    assert spec.describe_call(params, event) == (
        "would move job cluster etl_cluster of job 816305927331 from node type Standard_DS4_v2 "
        "to the first untried of [Standard_DS4_v2, Standard_E4ds_v5]"
    )
    result = spec.run(params, event, ctx)
    assert result.detail == ("job cluster etl_cluster of job 816305927331: node type "
                             "Standard_DS4_v2 -> Standard_E4ds_v5")
    [update] = calls_to(sandbox, "databricks", "/jobs/update")
    [cluster] = update["body"]["new_settings"]["job_clusters"]
    assert cluster["job_cluster_key"] == "etl_cluster"
    assert cluster["new_cluster"]["node_type_id"] == "Standard_E4ds_v5"
    assert cluster["new_cluster"]["spark_version"] == "15.4.x-scala2.12"


def test_set_node_type_needs_a_target():
    spec = SPECS["databricks.set_node_type"]
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert({"fallbacks": ["Standard_DS3_v2"]}, spec.params)
    assert str(info.value) == "name cluster_id, or job_id and job_cluster_key"
