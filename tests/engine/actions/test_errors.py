"""Every SDK exception is mapped; scripted faults come back as our errors, saying where."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import azure.core.exceptions as az
import azure.identity as azid
import httpx
import pytest
import requests.exceptions as rq
from databricks.sdk import errors as dbx

from engine.actions.context import ActionContext
from engine.actions.registry import action_table
from engine.cloud.clients import Clients
from engine.cloud.errors import RetryAfterError, map_error, verdict_of, verdicts
from engine.errors import PermanentActionError, RetryableActionError
from tests.engine.actions.conftest import (
    DBX_TOKEN,
    adf_event,
    cloud_settings,
    dbx_task_event,
    params_for,
)

SPECS = action_table()
ADF_WHERE = "adf.rerun_pipeline[factory=adf-contoso-prod pipeline=pl_ingest_sales_daily]"
DBX_WHERE = "databricks.repair_run[run=447120398]"


def foreign_classes() -> list[type[BaseException]]:
    found = []
    for module in (dbx, rq, az, azid, httpx):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and not issubclass(cls, Warning) \
                    and cls.__module__.split(".")[0] in ("databricks", "requests", "azure",
                                                         "httpx"):
                found.append(cls)
    return found


@pytest.mark.parametrize("cls", foreign_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_foreign_exception_class_is_listed(cls: type[BaseException]):
    assert cls in verdicts(), f"decide whether {cls.__module__}.{cls.__name__} is retryable"


def test_a_new_subclass_falls_back_to_its_ancestor():
    class Future(dbx.TooManyRequests):
        pass

    assert verdict_of(Future) == "retryable"


@pytest.mark.parametrize(("status", "expected"), [
    (408, RetryableActionError), (429, RetryableActionError), (500, RetryableActionError),
    (502, RetryableActionError), (503, RetryableActionError), (504, RetryableActionError),
    (400, PermanentActionError), (401, PermanentActionError), (403, PermanentActionError),
    (404, PermanentActionError), (409, PermanentActionError),
])
def test_httpx_status_errors_by_status(status: int, expected: type):
    request = httpx.Request("POST", "https://hooks.example.com/services/T/B/secret?sig=abc")
    response = httpx.Response(status, request=request)
    exc = httpx.HTTPStatusError("boom https://hooks.example.com/services/T/B/secret",
                                request=request, response=response)
    mapped = map_error(exc, "notify.webhook[channel=x]")
    assert type(mapped) is expected
    assert str(mapped) == f"notify.webhook[channel=x]: {status} {response.reason_phrase}"


def test_secrets_and_url_paths_never_reach_a_message():
    exc = httpx.ConnectError("cannot reach https://user:pw@hooks.example.com/T/B/XYZ?sig=abc")
    assert str(map_error(exc, "notify.webhook[url]")) == (
        "notify.webhook[url]: ConnectError: cannot reach https://***@hooks.example.com/…"
    )


def run_adf(ctx: ActionContext) -> None:
    spec = SPECS["adf.rerun_pipeline"]
    event = adf_event()
    spec.run(params_for(spec, event), event, ctx)


def run_repair(ctx: ActionContext) -> None:
    spec = SPECS["databricks.repair_run"]
    event = dbx_task_event()
    spec.run(params_for(spec, event), event, ctx)


@pytest.mark.parametrize(("status", "retry_after", "expected", "text"), [
    (429, 5, RetryAfterError, "429 Too Many Requests (TooManyRequests: Scripted failure 429 "
                              "(TooManyRequests).) (retry after 5 s)"),
    (503, None, RetryableActionError, "503 Service Unavailable (ServiceUnavailable: Scripted "
                                      "failure 503 (ServiceUnavailable).)"),
    (500, None, RetryableActionError, "500 Internal Server Error (InternalServerError: "
                                      "Scripted failure 500 (InternalServerError).)"),
    (404, None, PermanentActionError, "404 Not Found (NotFound: Scripted failure 404 "
                                      "(NotFound).)"),
    (403, None, PermanentActionError, "403 Forbidden (AuthorizationFailed: Scripted failure "
                                      "403 (AuthorizationFailed).)"),
])
def test_adf_faults(sandbox, ctx, status, retry_after, expected, text):
    sandbox.script("adf", "adf.createRun", status=status, retry_after=retry_after)
    with pytest.raises(expected) as info:
        run_adf(ctx)
    assert type(info.value) is expected
    assert str(info.value) == f"{ADF_WHERE}: {text}"
    assert info.value.__cause__ is not None
    if retry_after:
        assert info.value.retry_after == 5.0
    assert len([c for c in sandbox.calls("adf") if c["path"].endswith("/createRun")]) == 1


@pytest.mark.parametrize(("status", "retry_after", "expected", "text"), [
    (429, 5, RetryAfterError, "gave up retrying: 429 REQUEST_LIMIT_EXCEEDED: Scripted failure 429 "
                              "(retry after 5 s)"),
    (503, None, RetryAfterError, "gave up retrying: 503 TEMPORARILY_UNAVAILABLE: Scripted "
                                 "failure 503 (retry after 1 s)"),
    (500, None, RetryableActionError, "500 INTERNAL_ERROR: Scripted failure 500"),
    (404, None, PermanentActionError, "404 RESOURCE_DOES_NOT_EXIST: Scripted failure 404"),
    (403, None, PermanentActionError, "403 INTERNAL_ERROR: Scripted failure 403"),
])
def test_databricks_faults(sandbox, ctx, status, retry_after, expected, text):
    sandbox.script("databricks", "jobs.runs.repair", status=status, retry_after=retry_after,
                   times=5)
    with pytest.raises(expected) as info:
        run_repair(ctx)
    assert type(info.value) is expected
    assert str(info.value) == f"{DBX_WHERE}: {text}"
    assert DBX_TOKEN not in str(info.value)


def _hung(sandbox: Any, service: str, operation: str,
          run: Callable[[ActionContext], object]) -> RetryableActionError:
    """What ``run`` raises when the sandbox's ``operation`` hangs past a 0.5 s timeout."""
    clients = Clients(cloud_settings(sandbox, timeout=0.5))
    sandbox.script(service, operation, hang=5)
    try:
        with pytest.raises(RetryableActionError) as info:
            run(ActionContext(clients))
    finally:
        clients.close()
    return info.value


def test_a_hanging_adf_call_times_out_as_retryable(sandbox: Any):
    error = _hung(sandbox, "adf", "adf.createRun", run_adf)
    assert type(error) is RetryableActionError
    assert str(error).startswith(f"{ADF_WHERE}: ServiceResponseTimeoutError: ")
    assert str(error).endswith("Read timed out. (read timeout=0.5)")


def test_a_hanging_databricks_call_times_out_as_retryable(sandbox: Any):
    error = _hung(sandbox, "databricks", "jobs.runs.repair", run_repair)
    assert str(error).startswith(f"{DBX_WHERE}: gave up retrying: ReadTimeout: ")


def test_clients_refuse_a_zero_retry_timeout(sandbox: Any):
    from engine.errors import ConfigError

    clients = Clients(cloud_settings(sandbox, databricks={
        "ws": {"host": sandbox.databricks_url, "token": DBX_TOKEN, "retry_timeout": 0}}))
    with pytest.raises(ConfigError) as info:
        clients.databricks(clients.databricks_route())
    assert str(info.value) == ("clouds.databricks.ws.retry_timeout: must be > 0 "
                               "(the SDK reads 0 as 300 s)")
