"""The ADF (ARM) and Synapse emulators through the real Azure SDK clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.datafactory import DataFactoryManagementClient
from azure.mgmt.datafactory.models import RunFilterParameters, RunQueryFilter
from azure.synapse.artifacts import ArtifactsClient

from sandbox.server import Sandbox

RUN = "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"
RG, FACTORY, PIPELINE = "rg-data", "adf-contoso", "pl_ingest_sales_daily"


class StaticToken:
    """A token credential for tests: the sandbox accepts any bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("eyJ.test-token", int(datetime.now(UTC).timestamp()) + 3600)


@pytest.fixture
def adf(sandbox: Sandbox) -> DataFactoryManagementClient:
    return DataFactoryManagementClient(StaticToken(), "0000-sub", base_url=sandbox.adf_url,
                                       connection_verify=sandbox.ca_file, retry_total=0)


@pytest.fixture
def synapse(sandbox: Sandbox) -> ArtifactsClient:
    return ArtifactsClient(StaticToken(), sandbox.synapse_url,
                           connection_verify=sandbox.ca_file, retry_total=0)


def window() -> RunFilterParameters:
    now = datetime.now(UTC)
    return RunFilterParameters(last_updated_after=now - timedelta(days=1),
                               last_updated_before=now + timedelta(minutes=5))


def test_unknown_run_is_the_failed_sample(adf: DataFactoryManagementClient,
                                          sandbox: Sandbox) -> None:
    run = adf.pipeline_runs.get(RG, FACTORY, RUN)
    assert (run.run_id, run.run_group_id, run.pipeline_name, run.status, run.is_latest) == (
        RUN, RUN, PIPELINE, "Failed", True)
    assert "UserErrorSourceBlobNotExist" in run.message
    call = sandbox.calls("adf")[-1]
    assert call["path"] == (f"/subscriptions/0000-sub/resourceGroups/{RG}/providers/"
                            f"Microsoft.DataFactory/factories/{FACTORY}/pipelineruns/{RUN}")
    assert call["headers"]["authorization"] == "Bearer ***"
    assert call["query"]["api-version"] == "2018-06-01"


def test_recovery_rerun_progresses_and_takes_the_group(adf: DataFactoryManagementClient,
                                                       sandbox: Sandbox) -> None:
    created = adf.pipelines.create_run(RG, FACTORY, PIPELINE, reference_pipeline_run_id=RUN,
                                       is_recovery=True, start_from_failure=True)
    call = sandbox.calls("adf")[-1]
    assert call["query"]["referencePipelineRunId"] == RUN
    assert call["query"]["isRecovery"] == "true"
    assert call["query"]["startFromFailure"] == "true"
    first = adf.pipeline_runs.get(RG, FACTORY, created.run_id)
    assert (first.status, first.run_group_id, first.is_latest) == ("InProgress", RUN, True)
    second = adf.pipeline_runs.get(RG, FACTORY, created.run_id)
    assert second.status == "Succeeded"
    assert adf.pipeline_runs.get(RG, FACTORY, RUN).is_latest is False
    activities = adf.activity_runs.query_by_pipeline_run(RG, FACTORY, created.run_id, window())
    assert [(a.activity_name, a.status) for a in activities.value] == [
        ("Copy_RawSales_To_Bronze", "Succeeded")]


def test_scripted_fail_rerun(adf: DataFactoryManagementClient, sandbox: Sandbox) -> None:
    sandbox.script("adf", "adf.createRun", fail_rerun=True)
    run_id = adf.pipelines.create_run(RG, FACTORY, PIPELINE, parameters={"run_date": "x"}).run_id
    adf.pipeline_runs.get(RG, FACTORY, run_id)
    run = adf.pipeline_runs.get(RG, FACTORY, run_id)
    assert (run.status, run.parameters, run.run_group_id) == ("Failed", {"run_date": "x"}, run_id)
    activities = adf.activity_runs.query_by_pipeline_run(RG, FACTORY, run_id, window())
    assert [a.status for a in activities.value] == ["Succeeded", "Failed"]
    assert activities.value[1].error["errorCode"] == "2200"


def test_query_by_factory_filters_and_pages(adf: DataFactoryManagementClient) -> None:
    ids = {adf.pipelines.create_run(RG, FACTORY, "pl_other").run_id for _ in range(6)}
    params = window()
    params.filters = [RunQueryFilter(operand="PipelineName", operator="Equals",
                                     values_property=["pl_other"])]
    page = adf.pipeline_runs.query_by_factory(RG, FACTORY, params)
    assert len(page.value) == 5
    params.continuation_token = page.continuation_token
    rest = adf.pipeline_runs.query_by_factory(RG, FACTORY, params)
    assert rest.continuation_token is None
    assert {r.run_id for r in page.value + rest.value} == ids
    params = window()
    params.filters = [RunQueryFilter(operand="PipelineName", operator="Equals",
                                     values_property=["pl_never_seen"]),
                      RunQueryFilter(operand="Status", operator="Equals",
                                     values_property=["Failed"])]
    seeded = adf.pipeline_runs.query_by_factory(RG, FACTORY, params).value
    assert [(r.pipeline_name, r.status) for r in seeded] == [("pl_never_seen", "Failed")]


def test_cancel(adf: DataFactoryManagementClient) -> None:
    run_id = adf.pipelines.create_run(RG, FACTORY, PIPELINE).run_id
    adf.pipeline_runs.cancel(RG, FACTORY, run_id, is_recursive=True)
    assert adf.pipeline_runs.get(RG, FACTORY, run_id).status == "Cancelled"


def test_failed_activity_runs_of_the_sample(adf: DataFactoryManagementClient) -> None:
    activities = adf.activity_runs.query_by_pipeline_run(RG, FACTORY, RUN, window()).value
    assert [(a.activity_name, a.status) for a in activities] == [
        ("Lookup_Watermark", "Succeeded"), ("Copy_RawSales_To_Bronze", "Failed")]
    assert activities[1].error["failureType"] == "UserError"


def test_scripted_arm_errors(adf: DataFactoryManagementClient, sandbox: Sandbox) -> None:
    sandbox.script("adf", "adf.createRun", status=429, retry_after=7)
    with pytest.raises(HttpResponseError) as raised:
        adf.pipelines.create_run(RG, FACTORY, PIPELINE)
    assert raised.value.status_code == 429
    assert raised.value.error.code == "TooManyRequests"
    assert raised.value.response.headers["Retry-After"] == "7"
    with pytest.raises(HttpResponseError) as recovery:
        adf.pipelines.create_run(RG, FACTORY, PIPELINE, is_recovery=True)
    assert recovery.value.error.message == (
        "referencePipelineRunId is required when isRecovery is true.")


def test_client_secret_credential_against_the_token_endpoint(sandbox: Sandbox) -> None:
    credential = ClientSecretCredential(
        "contoso-tenant", "client-id", "planted-secret-123", authority=sandbox.adf_url,
        disable_instance_discovery=True, connection_verify=sandbox.ca_file)
    client = DataFactoryManagementClient(credential, "0000-sub", base_url=sandbox.adf_url,
                                         connection_verify=sandbox.ca_file, retry_total=0)
    assert client.pipeline_runs.get(RG, FACTORY, RUN).status == "Failed"
    paths = [c["path"] for c in sandbox.calls("adf")]
    assert paths[:2] == ["/contoso-tenant/v2.0/.well-known/openid-configuration",
                         "/contoso-tenant/oauth2/v2.0/token"]
    token_call = sandbox.calls("adf")[1]
    assert token_call["body"]["client_secret"] == "***"
    assert "planted-secret-123" not in repr(sandbox.calls())


def test_synapse_rerun_and_activity_runs(synapse: ArtifactsClient, sandbox: Sandbox) -> None:
    failed = synapse.pipeline_run.get_pipeline_run(RUN)
    assert failed.status == "Failed"
    created = synapse.pipeline.create_pipeline_run(
        PIPELINE, reference_pipeline_run_id=RUN, is_recovery=True,
        start_activity_name="Copy_RawSales_To_Bronze")
    call = sandbox.calls("synapse")[-1]
    assert call["query"]["api-version"] == "2020-12-01"
    assert call["query"]["startActivityName"] == "Copy_RawSales_To_Bronze"
    assert synapse.pipeline_run.get_pipeline_run(created.run_id).status == "InProgress"
    done = synapse.pipeline_run.get_pipeline_run(created.run_id)
    assert (done.status, done.run_group_id) == ("Succeeded", RUN)
    activities = synapse.pipeline_run.query_activity_runs(PIPELINE, created.run_id, window())
    assert [(a.activity_name, a.status) for a in activities.value] == [
        ("Copy_RawSales_To_Bronze", "Succeeded")]
    runs = synapse.pipeline_run.query_pipeline_runs_by_workspace(window()).value
    assert {r.run_id for r in runs} == {created.run_id}
    other = synapse.pipeline.create_pipeline_run(PIPELINE).run_id
    synapse.pipeline_run.cancel_pipeline_run(other)
    assert synapse.pipeline_run.get_pipeline_run(other).status == "Cancelled"


def test_synapse_scripted_503(synapse: ArtifactsClient, sandbox: Sandbox) -> None:
    sandbox.script("synapse", "synapse.createRun", status=503)
    with pytest.raises(HttpResponseError) as raised:
        synapse.pipeline.create_pipeline_run(PIPELINE)
    assert raised.value.status_code == 503
    assert synapse.pipeline.create_pipeline_run(PIPELINE).run_id
