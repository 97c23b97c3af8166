"""``POST /_sandbox/failures/<kind>`` (issue 15, item 11): a run that failed with any error
code, a cluster that terminated with any reason, read back through the real SDK clients as
enrichment reads them."""

from __future__ import annotations

import ssl

import httpx
import pytest
from azure.mgmt.datafactory import DataFactoryManagementClient
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from sandbox.server import Sandbox
from tests.sandbox.test_azure import StaticToken

SUB, RG, FACTORY = "0000-sub", "rg-data", "adf-contoso"


@pytest.fixture
def adf(sandbox: Sandbox) -> DataFactoryManagementClient:
    return DataFactoryManagementClient(StaticToken(), SUB, base_url=sandbox.adf_url,
                                       connection_verify=sandbox.ca_file, retry_total=0)


@pytest.fixture
def workspace(sandbox: Sandbox) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=sandbox.databricks_url, token="dapi-test",
                                         auth_type="pat", retry_timeout_seconds=5))


def _fail_adf(sandbox: Sandbox, **body: str) -> httpx.Response:
    return httpx.post(f"{sandbox.adf_url}/_sandbox/failures/pipeline-run",
                      verify=ssl.create_default_context(cafile=sandbox.ca_file),
                      json={"subscription": SUB, "resource_group": RG, "factory": FACTORY,
                            "pipeline": "pl_load_dw", **body})


def _activities(adf: DataFactoryManagementClient, run_id: str) -> list:
    from tests.sandbox.test_azure import window
    return adf.activity_runs.query_by_pipeline_run(RG, FACTORY, run_id, window()).value


def test_a_copy_code_fails_inside_the_2200_that_wraps_it(
        sandbox: Sandbox, adf: DataFactoryManagementClient) -> None:
    answer = _fail_adf(sandbox, error_code="SqlFailedToConnect")
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["run"]["runId"]
    run = adf.pipeline_runs.get(RG, FACTORY, run_id)
    assert (run.pipeline_name, run.status) == ("pl_load_dw", "Failed")
    assert run.message.startswith("Operation on target Copy_Sales_To_Dw failed: Failure happened"
                                  " on 'Sink' side. ErrorCode=SqlFailedToConnect,")
    lookup, copy = _activities(adf, run_id)
    assert (lookup.activity_name, lookup.status) == ("Lookup_Watermark", "Succeeded")
    assert (copy.activity_name, copy.activity_type, copy.status) == (
        "Copy_Sales_To_Dw", "Copy", "Failed")
    assert copy.error["errorCode"] == "2200"
    assert "Cannot connect to SQL Database: 'sql-contoso-dw.database.windows.net'" \
        in copy.error["message"]
    # a rerun that fails again fails the same way
    sandbox.script("adf", "adf.createRun", fail_rerun=True)
    rerun = adf.pipelines.create_run(RG, FACTORY, "pl_load_dw", reference_pipeline_run_id=run_id,
                                     is_recovery=True).run_id
    adf.pipeline_runs.get(RG, FACTORY, rerun)
    assert "ErrorCode=SqlFailedToConnect" in adf.pipeline_runs.get(RG, FACTORY, rerun).message


def test_other_codes_are_the_activitys_own_and_any_code_a_fail_activitys(
        sandbox: Sandbox, adf: DataFactoryManagementClient) -> None:
    run_id = _fail_adf(sandbox, error_code="2108").json()["run"]["runId"]
    failed = _activities(adf, run_id)[-1]
    assert (failed.activity_name, failed.activity_type, failed.error["errorCode"]) == (
        "Web_Get_FxRates", "WebActivity", "2108")
    assert failed.error["message"] == ("Error calling the endpoint "
                                       "'https://api.contoso.com/v2/fx-rates'. Response status "
                                       "code: '503'")
    run_id = _fail_adf(sandbox, error_code="ERR_SALES_LATE",
                       message="Sales file not delivered by 02:00").json()["run"]["runId"]
    failed = _activities(adf, run_id)[-1]
    assert (failed.activity_type, failed.error["errorCode"], failed.error["message"]) == (
        "Fail", "ERR_SALES_LATE", "Sales file not delivered by 02:00")


def test_synapse_fails_a_run_of_its_workspace(sandbox: Sandbox) -> None:
    made = sandbox.failure("synapse", "pipeline-run", pipeline="pl_load_dw_sales",
                           error_code="UserErrorFileNotFound")
    assert made["activity"]["error_code"] == "2200"
    assert "ErrorCode=UserErrorFileNotFound" in made["run"]["message"]


def test_a_bad_drill_is_400_with_the_reason(sandbox: Sandbox) -> None:
    assert _fail_adf(sandbox).json() == {"error": "missing field: error_code"}
    answer = _fail_adf(sandbox, error_code="2108", colour="red")
    assert (answer.status_code, answer.json()) == (400, {"error": (
        "unknown fields: colour; expected pipeline, error_code, subscription, resource_group,"
        " factory, message")})
    answer = httpx.post(f"{sandbox.databricks_url}/_sandbox/failures/pipeline-run", json={})
    assert (answer.status_code, answer.json()) == (404, {"error": (
        "databricks makes no failure 'pipeline-run'; it makes: cluster, given-run, job-run")})
    answer = httpx.post(f"{sandbox.databricks_url}/_sandbox/failures/job-run",
                        json={"termination_code": "RUN_EXECUTION_ERROR", "job_id": "12a"})
    assert answer.json() == {"error": "job_id: expected a number, got '12a'"}


def test_a_run_that_died_with_its_cluster(sandbox: Sandbox, workspace: WorkspaceClient) -> None:
    made = sandbox.failure("databricks", "job-run", job_name="sales_bronze_to_silver",
                           termination_code="DRIVER_UNREACHABLE")
    run = workspace.jobs.get_run(made["run_id"])
    assert (run.job_id, run.run_name, run.status.termination_details.code.value) == (
        made["job_id"], "sales_bronze_to_silver", "CLUSTER_ERROR")
    failed = run.tasks[1]
    assert (failed.task_key, failed.run_id, failed.cluster_instance.cluster_id) == (
        "transform_orders", made["task_run_id"], made["cluster_id"])
    cluster = workspace.clusters.get(made["cluster_id"])
    assert (cluster.state.value, cluster.termination_reason.code.value) == (
        "TERMINATED", "DRIVER_UNREACHABLE")
    assert workspace.jobs.get_run_output(made["task_run_id"]).error == (
        "Cluster was terminated. Reason: DRIVER_UNREACHABLE.")


def test_a_run_that_failed_with_its_own_code(sandbox: Sandbox,
                                             workspace: WorkspaceClient) -> None:
    made = sandbox.failure("databricks", "job-run", job_id="816305927331",
                           termination_code="LIBRARY_INSTALLATION_ERROR")
    assert made["cluster_termination_code"] is None
    run = workspace.jobs.get_run(made["run_id"])
    assert (run.job_id, run.status.termination_details.code.value) == (
        816305927331, "LIBRARY_INSTALLATION_ERROR")
    assert workspace.jobs.get_run_output(made["task_run_id"]).error.startswith(
        "Library installation failed for library due to user error")


def test_a_terminated_cluster(sandbox: Sandbox, workspace: WorkspaceClient) -> None:
    made = sandbox.failure("databricks", "cluster", cluster_name="etl-nightly",
                           termination_code="CLOUD_PROVIDER_RESOURCE_STOCKOUT")["cluster"]
    cluster = workspace.clusters.get(made["cluster_id"])
    assert (cluster.cluster_name, cluster.state.value) == ("etl-nightly", "TERMINATED")
    assert cluster.termination_reason.parameters["azure_error_code"] == "SkuNotAvailable"
    events = list(workspace.clusters.events(made["cluster_id"]))
    assert events[0].type.value == "TERMINATING"
    assert events[0].details.reason.code.value == "CLOUD_PROVIDER_RESOURCE_STOCKOUT"
