"""Clients pointed at the sandbox emulators, through the real SDKs, and sample events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from cli.drive import Sink
from engine.actions.context import ActionContext
from engine.cloud.clients import Clients
from engine.config import CloudSettings, load_settings
from engine.events import ErrorEvent

SUB = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
RG = "rg-dataplatform-prod"
FACTORY = "adf-contoso-prod"
PIPELINE = "pl_ingest_sales_daily"
ADF_RUN = "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"
WORKSPACE_ID = "1234567890123456"
DBX_TOKEN = "dapi0123456789abcdef0123456789abcdef"
AZ_SECRET = "s3cr3t-client-value-Zq8"


def cloud_settings(sandbox: Any, timeout: float = 2.0, **over: Any) -> CloudSettings:
    """[clouds] for the sandbox: one ADF entry with a client secret against the sandbox's
    token endpoint, one Synapse workspace, one Databricks workspace; no SDK retries to wait
    for (the tests script faults and must see them at once)."""
    credential = {"type": "client_secret", "tenant_id": "72f988bf-0000-4a1b-9c3d-2e4f6a8b0c1d",
                  "client_id": "remediator", "client_secret": AZ_SECRET,
                  "authority": sandbox.adf_url, "disable_instance_discovery": True}
    raw: dict[str, Any] = {
        "adf": {"prod": {"subscription_id": SUB, "resource_group": RG,
                         "factories": [FACTORY], "base_url": sandbox.adf_url,
                         "ca_file": sandbox.ca_file, "credential": credential,
                         "timeout": timeout, "retries": 0}},
        "synapse": {"syn": {"workspace": "syn-contoso-prod", "endpoint": sandbox.synapse_url,
                            "ca_file": sandbox.ca_file, "timeout": timeout, "retries": 0,
                            "credential": {"type": "static", "token": "sandbox-token"}}},
        "databricks": {"ws": {"host": sandbox.databricks_url, "workspace_id": WORKSPACE_ID,
                              "token": DBX_TOKEN, "timeout": timeout, "retry_timeout": 1.0}},
        "http_timeout": timeout,
    }
    raw.update(over)
    return load_settings(None, env={}, clouds=raw).clouds


@pytest.fixture
def clients(sandbox: Any) -> Iterator[Clients]:
    """Real SDK clients against the sandbox, closed after the test."""
    built = Clients(cloud_settings(sandbox))
    yield built
    built.close()


@pytest.fixture
def ctx(clients: Clients) -> ActionContext:
    return ActionContext(clients=clients)


def adf_event(**over: Any) -> ErrorEvent:
    """An ADF activity failure as the receivers normalise the log alert sample."""
    fields: dict[str, Any] = {
        "source": "adf", "kind": "activity_run", "status": "firing",
        "dedup_key": "azmon:/subscriptions/x/alerts/9d3a:Fired", "resource": PIPELINE,
        "resource_id": f"/subscriptions/{SUB}/resourcegroups/{RG}/providers/"
                       f"microsoft.datafactory/factories/{FACTORY}",
        "run_id": ADF_RUN, "error_code": "2200", "error_codes": ("2200",),
        "message": "Copy failed",
        "attributes": {"factory": FACTORY, "subscription": SUB, "resource_group": RG,
                       "pipeline": PIPELINE, "activity": "Copy_RawSales_To_Bronze"},
    }
    fields.update(over)
    return ErrorEvent(**fields)


def dbx_task_event(**over: Any) -> ErrorEvent:
    """The Databricks task failure sample, as the receivers normalise it."""
    fields: dict[str, Any] = {
        "source": "databricks", "kind": "task_run", "status": "firing",
        "dedup_key": "dbx:jobs.on_failure:447120411:transform_orders",
        "resource": "sales_bronze_to_silver", "resource_id": "816305927331",
        "run_id": "447120411", "message": "Task transform_orders of job sales_bronze_to_silver "
                                          "run 447120411 failed",
        "attributes": {"event_type": "jobs.on_failure", "job_id": "816305927331",
                       "workspace_id": WORKSPACE_ID, "task_key": "transform_orders",
                       "parent_run_id": "447120398"},
    }
    fields.update(over)
    return ErrorEvent(**fields)


def cluster_event(cluster_id: str = "0601-182128-dcbte59m", **over: Any) -> ErrorEvent:
    fields: dict[str, Any] = {
        "source": "databricks", "kind": "cluster", "status": "firing",
        "dedup_key": f"dbx:cluster.terminated:{cluster_id}:1741963104552",
        "resource": f"etl-{cluster_id}", "resource_id": cluster_id,
        "error_code": "DRIVER_UNREACHABLE", "message": "Could not reach driver",
        "attributes": {"cluster_id": cluster_id, "workspace_id": WORKSPACE_ID},
    }
    fields.update(over)
    return ErrorEvent(**fields)


def calls_to(sandbox: Any, service: str, suffix: str) -> list[dict[str, Any]]:
    """The calls the sandbox's ``service`` (adf, databricks) took at a path ending ``suffix``."""
    return [c for c in sandbox.calls(service) if c["path"].endswith(suffix)]


def params_for(spec: Any, event: ErrorEvent, **with_: Any) -> Any:
    """What engine.rules.templates does: the target, overridden by ``with:``, not strict."""
    return msgspec.convert({**spec.target(event), **with_}, spec.params, strict=False)


@pytest.fixture
def hook_ctx(sandbox: Any, sink: Sink) -> Iterator[ActionContext]:
    """A context whose channel ``data-oncall`` and ticket webhook both post to ``sink``."""
    secret_path = "/hooks/T000/B000/XXXXsecretXXXX"
    built = Clients(cloud_settings(
        sandbox,
        channels={"data-oncall": {"url": sink.url + secret_path,
                                  "headers": {"x-api-key": "hook-key-123"}}},
        ticket={"url": sink.url + "/tickets?token=tkt-secret-456"},
    ))
    yield ActionContext(clients=built)
    built.close()
