"""The Databricks emulator through the real databricks-sdk WorkspaceClient."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import InvalidParameterValue, InvalidState, TemporarilyUnavailable
from databricks.sdk.service.compute import EventType, GetEventsOrder, State
from databricks.sdk.service.jobs import RunLifeCycleState, RunResultState

from sandbox.server import Sandbox

RUN = 447120398
FAILED_TASK = 447120411
CLUSTER = "0601-182128-dcbte59m"


@pytest.fixture
def client(sandbox: Sandbox) -> WorkspaceClient:
    config = Config(host=sandbox.databricks_url, token="dapi-test", auth_type="pat",
                    http_timeout_seconds=5, retry_timeout_seconds=5)
    return WorkspaceClient(config=config)


def test_unknown_run_is_the_failed_sample(client: WorkspaceClient, sandbox: Sandbox) -> None:
    run = client.jobs.get_run(RUN)
    assert run.state.life_cycle_state is RunLifeCycleState.TERMINATED
    assert run.state.result_state is RunResultState.FAILED
    assert run.status.termination_details.code.value == "RUN_EXECUTION_ERROR"
    assert [(t.task_key, t.run_id, t.state.result_state.value) for t in run.tasks] == [
        ("ingest_raw", 447120405, "SUCCESS"),
        ("transform_orders", 447120411, "FAILED"),
        ("publish_gold", 447120417, "UPSTREAM_FAILED"),
    ]
    call = sandbox.calls("databricks")[-1]
    assert (call["method"], call["path"], call["query"], call["status"]) == (
        "GET", "/api/2.2/jobs/runs/get", {"run_id": str(RUN)}, 200)
    assert call["headers"]["authorization"] == "Bearer ***"
    assert "dapi-test" not in repr(sandbox.calls())


def test_get_output_of_a_task_and_of_the_parent(client: WorkspaceClient) -> None:
    output = client.jobs.get_run_output(FAILED_TASK)
    assert output.error.startswith("AnalysisException: [TABLE_OR_VIEW_NOT_FOUND]")
    assert output.metadata.job_run_id == RUN
    assert output.metadata.run_name == "transform_orders"
    with pytest.raises(InvalidParameterValue) as raised:
        client.jobs.get_run_output(RUN)
    assert str(raised.value) == (
        "Retrieving the output of runs with multiple tasks is not supported. Please retrieve "
        "the output of each individual task run instead.")


def test_repair_then_running_then_success(client: WorkspaceClient) -> None:
    client.jobs.get_run(RUN)
    waiter = client.jobs.repair_run(RUN, rerun_tasks=["transform_orders", "publish_gold"])
    assert waiter.response.repair_id > 0
    running = client.jobs.get_run(RUN)
    assert running.state.life_cycle_state is RunLifeCycleState.RUNNING
    done = client.jobs.get_run(RUN, include_history=True)
    assert done.state.life_cycle_state is RunLifeCycleState.TERMINATED
    assert done.state.result_state is RunResultState.SUCCESS
    assert [t.state.result_state.value for t in done.tasks] == ["SUCCESS"] * 3
    assert [t.attempt_number for t in done.tasks] == [0, 1, 1]
    assert [h.type.value for h in done.repair_history] == ["ORIGINAL", "REPAIR"]
    assert done.repair_history[1].id == waiter.response.repair_id
    assert done.repair_history[0].state.result_state is RunResultState.FAILED


def test_second_repair_needs_the_latest_repair_id(client: WorkspaceClient) -> None:
    first = client.jobs.repair_run(RUN, rerun_all_failed_tasks=True).response.repair_id
    client.jobs.get_run(RUN)
    client.jobs.get_run(RUN)
    with pytest.raises(InvalidParameterValue) as raised:
        client.jobs.repair_run(RUN, rerun_tasks=["ingest_raw"], latest_repair_id=first - 1)
    assert str(raised.value) == (
        f"The latest repair ID {first - 1} does not match the latest repair ID {first} of run "
        f"{RUN}. Retry with the latest repair ID.")
    second = client.jobs.repair_run(RUN, rerun_tasks=["ingest_raw"], latest_repair_id=first)
    assert second.response.repair_id != first


def test_scripted_fail_rerun_fails_again(client: WorkspaceClient, sandbox: Sandbox) -> None:
    sandbox.script("databricks", "jobs.runs.repair", fail_rerun=True)
    client.jobs.repair_run(RUN, rerun_all_failed_tasks=True)
    client.jobs.get_run(RUN)
    run = client.jobs.get_run(RUN)
    assert run.state.result_state is RunResultState.FAILED
    assert [t.state.result_state.value for t in run.tasks] == [
        "SUCCESS", "FAILED", "UPSTREAM_FAILED"]
    new_task = run.tasks[1].run_id
    assert new_task != FAILED_TASK
    assert client.jobs.get_run_output(new_task).error.startswith("AnalysisException")


def test_run_now_creates_a_run_that_succeeds(client: WorkspaceClient) -> None:
    run_id = client.jobs.run_now(816305927331, job_parameters={"run_date": "2025-03-15"}).run_id
    assert client.jobs.get_run(run_id).state.life_cycle_state is RunLifeCycleState.RUNNING
    run = client.jobs.get_run(run_id)
    assert run.state.result_state is RunResultState.SUCCESS
    assert run.job_parameters[0].value == "2025-03-15"
    assert client.jobs.get(816305927331).settings.name == "sales_bronze_to_silver"


def test_cancel_and_list(client: WorkspaceClient) -> None:
    run_id = client.jobs.run_now(5).run_id
    client.jobs.cancel_run(run_id)
    run = client.jobs.get_run(run_id)
    assert run.state.result_state is RunResultState.CANCELED
    runs = list(client.jobs.list_runs(job_id=5, completed_only=True, limit=1))
    assert [r.run_id for r in runs] == [run_id]
    seeded = list(client.jobs.list_runs(job_id=77, start_time_from=0))
    assert len(seeded) == 1
    assert seeded[0].state.result_state is RunResultState.FAILED


def test_runs_list_pages(client: WorkspaceClient, sandbox: Sandbox) -> None:
    ids = {client.jobs.run_now(9).run_id for _ in range(3)}
    listed = {r.run_id for r in client.jobs.list_runs(job_id=9, limit=1)}
    assert listed == ids
    pages = [c for c in sandbox.calls("databricks") if c["path"].endswith("runs/list")]
    assert [c["query"].get("page_token") for c in pages] == [None, "offset-1", "offset-2"]


def test_jobs_update_reset_list(client: WorkspaceClient) -> None:
    from databricks.sdk.service.jobs import JobSettings

    client.jobs.update(42, new_settings=JobSettings(max_concurrent_runs=3))
    assert client.jobs.get(42).settings.max_concurrent_runs == 3
    client.jobs.reset(42, new_settings=JobSettings(name="renamed"))
    assert client.jobs.get(42).settings.name == "renamed"
    assert [j.job_id for j in client.jobs.list()] == [42]


def test_cluster_start_progression(client: WorkspaceClient) -> None:
    cluster = client.clusters.get(CLUSTER)
    assert cluster.state is State.TERMINATED
    assert cluster.termination_reason.code.value == "DRIVER_UNREACHABLE"
    client.clusters.start(CLUSTER)
    assert client.clusters.get(CLUSTER).state is State.PENDING
    assert client.clusters.get(CLUSTER).state is State.RUNNING
    with pytest.raises(InvalidState) as raised:
        client.clusters.start(CLUSTER)
    assert str(raised.value) == f"Cluster {CLUSTER} is in unexpected state Running."
    client.clusters.restart(CLUSTER)
    assert client.clusters.get(CLUSTER).state is State.RESTARTING
    assert client.clusters.get(CLUSTER).state is State.RUNNING


def test_cluster_start_scripted_to_fail(client: WorkspaceClient, sandbox: Sandbox) -> None:
    sandbox.script("databricks", "clusters.start", fail_rerun=True)
    client.clusters.start(CLUSTER)
    client.clusters.get(CLUSTER)
    cluster = client.clusters.get(CLUSTER)
    assert cluster.state is State.TERMINATED
    assert cluster.termination_reason.code.value == "CLOUD_PROVIDER_LAUNCH_FAILURE"


def test_cluster_edit(client: WorkspaceClient) -> None:
    client.clusters.edit(CLUSTER, "15.4.x-scala2.12", node_type_id="Standard_E8ds_v5",
                         num_workers=2)
    cluster = client.clusters.get(CLUSTER)
    assert (cluster.node_type_id, cluster.num_workers) == ("Standard_E8ds_v5", 2)
    with pytest.raises(InvalidParameterValue) as raised:
        client.clusters.edit(CLUSTER, "15.4.x-scala2.12", node_type_id="Standard_Nope")
    assert str(raised.value).startswith("Node type Standard_Nope is not supported.")


def test_cluster_events_paging_and_filters(client: WorkspaceClient, sandbox: Sandbox) -> None:
    events = list(client.clusters.events(CLUSTER, limit=2, order=GetEventsOrder.DESC))
    assert [e.type.value for e in events[:3]] == [
        "TERMINATING", "DRIVER_NOT_RESPONDING", "NODES_LOST"]
    assert len(events) == 9
    assert events[0].details.reason.code.value == "DRIVER_UNREACHABLE"
    assert len([c for c in sandbox.calls("databricks") if c["path"].endswith("events")]) == 5
    only = list(client.clusters.events(CLUSTER, event_types=[EventType.NODES_LOST]))
    assert [e.details.reason.code.value for e in only] == ["INSTANCE_UNREACHABLE"]


def test_cluster_list_and_libraries(client: WorkspaceClient) -> None:
    statuses = client.libraries.cluster_status(CLUSTER)
    assert [s.status.value for s in statuses] == ["INSTALLED", "FAILED"]
    assert [c.cluster_id for c in client.clusters.list()] == [CLUSTER]


def test_scripted_503_then_success(client: WorkspaceClient, sandbox: Sandbox) -> None:
    sandbox.script("databricks", "jobs.runs.get", status=503, times=1, retry_after=0)
    run = client.jobs.get_run(RUN)
    assert run.state.result_state is RunResultState.FAILED
    statuses = [c["status"] for c in sandbox.calls("databricks") if c["path"].endswith("runs/get")]
    assert statuses == [503, 200]


def test_scripted_503_without_retry_budget(sandbox: Sandbox) -> None:
    config = Config(host=sandbox.databricks_url, token="dapi-test", auth_type="pat",
                    http_timeout_seconds=5, retry_timeout_seconds=1)
    sandbox.script("databricks", "clusters.get", status=503, times=50)
    with pytest.raises(TimeoutError) as raised:
        WorkspaceClient(config=config).clusters.get(CLUSTER)
    assert isinstance(raised.value.__cause__, TemporarilyUnavailable)
    assert str(raised.value.__cause__) == "Scripted failure 503"


def test_scripted_hang_makes_the_client_time_out(sandbox: Sandbox) -> None:
    config = Config(host=sandbox.databricks_url, token="dapi-test", auth_type="pat",
                    http_timeout_seconds=1, retry_timeout_seconds=1)
    client = WorkspaceClient(config=config)
    sandbox.script("databricks", "clusters.get", hang=30, times=5)
    with pytest.raises(TimeoutError):
        client.clusters.get(CLUSTER)
    assert client.jobs.get_run(RUN).run_id == RUN


def test_notification_destinations(client: WorkspaceClient, sandbox: Sandbox) -> None:
    from databricks.sdk.service.settings import Config as DestConfig
    from databricks.sdk.service.settings import SlackConfig

    created = client.notification_destinations.create(
        display_name="ops", config=DestConfig(slack=SlackConfig(url="https://hooks.example/x")))
    assert created.config.slack.url_set is True
    assert [d.display_name for d in client.notification_destinations.list()] == ["ops"]
    client.notification_destinations.update(created.id, display_name="oncall")
    assert client.notification_destinations.get(created.id).display_name == "oncall"
