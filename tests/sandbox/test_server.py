"""The sandbox's own interface: call log, scripts and reset over Python and HTTP; python -m."""

from __future__ import annotations

import json
import ssl
import threading
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sandbox.__main__ import main
from sandbox.server import Sandbox


def http(url: str, payload: dict[str, Any] | None = None, *, ca_file: str | None = None,
         method: str | None = None) -> tuple[int, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer secret-token-1"})
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_calls_record_every_request_with_masked_credentials(sandbox: Sandbox) -> None:
    status, _ = http(f"{sandbox.databricks_url}/api/2.1/clusters/start",
                     {"cluster_id": "c-1"})
    assert status == 200
    (call,) = sandbox.calls("databricks")
    assert {k: call[k] for k in ("service", "method", "path", "query", "body", "status")} == {
        "service": "databricks", "method": "POST", "path": "/api/2.1/clusters/start",
        "query": {}, "body": {"cluster_id": "c-1"}, "status": 200}
    assert call["headers"]["authorization"] == "Bearer ***"
    assert isinstance(call["ts"], float)
    assert sandbox.calls("adf") == []
    assert sandbox.calls() == [call]


def test_http_control_endpoints(sandbox: Sandbox) -> None:
    base = sandbox.databricks_url
    assert http(f"{base}/_sandbox/script", {"operation": "clusters.get", "status": 429,
                                            "retry_after": 2}) == (200, {"scripted": True})
    assert http(f"{base}/api/2.1/clusters/get?cluster_id=c-9") == (
        429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Scripted failure 429"})
    assert http(f"{base}/api/2.1/clusters/get?cluster_id=c-9")[0] == 200
    status, body = http(f"{base}/_sandbox/calls?service=databricks")
    assert status == 200
    assert [c["status"] for c in body["calls"]] == [429, 200]
    assert http(f"{base}/_sandbox/script", {"operation": "x", "tims": 2}) == (
        400, {"error": "unknown script fields: tims"})
    assert http(f"{base}/_sandbox/reset", {}) == (200, {"reset": True})
    assert http(f"{base}/_sandbox/calls")[1] == {"calls": []}


def test_https_emulators_serve_control_endpoints_too(sandbox: Sandbox) -> None:
    status, body = http(f"{sandbox.adf_url}/_sandbox/calls", ca_file=sandbox.ca_file)
    assert (status, body) == (200, {"calls": []})
    status, _ = http(f"{sandbox.synapse_url}/_sandbox/script",
                     {"operation": "synapse.createRun", "status": 503},
                     ca_file=sandbox.ca_file)
    assert status == 200
    status, body = http(f"{sandbox.synapse_url}/pipelines/p/createRun?api-version=2020-12-01",
                        {}, ca_file=sandbox.ca_file)
    assert (status, body["error"]["code"]) == (503, "ServiceUnavailable")


def test_a_failed_run_given_over_http_is_a_run_of_that_pipeline_or_job(
        sandbox: Sandbox) -> None:
    """``given-run``: one more failure kind, through the same route and checks as a drill's."""
    adf = sandbox.adf_url
    status, made = http(f"{adf}/_sandbox/failures/given-run",
                        {"run_id": "r-1", "pipeline": "pl_x"}, ca_file=sandbox.ca_file)
    assert (status, made["run"]["runId"], made["run"]["pipelineName"]) == (200, "r-1", "pl_x")
    status, run = http(f"{adf}/subscriptions/s/resourceGroups/rg/providers/"
                       "Microsoft.DataFactory/factories/f/pipelineruns/r-1?api-version=1",
                       ca_file=sandbox.ca_file)
    assert (status, run["pipelineName"], run["status"]) == (200, "pl_x", "Failed")
    assert http(f"{adf}/_sandbox/failures/given-run", {"run_id": "r-1", "job_id": 1},
                ca_file=sandbox.ca_file) == (
        400, {"error": "unknown fields: job_id; expected run_id, pipeline"})
    dbx = sandbox.databricks_url
    status, made = http(f"{dbx}/_sandbox/failures/given-run", {"run_id": 5, "job_id": 77})
    assert (status, made["run"]["run_id"], made["run"]["job_id"]) == (200, 5, 77)
    status, run = http(f"{dbx}/api/2.1/jobs/runs/get?run_id=5")
    assert (status, run["job_id"], run["state"]["result_state"]) == (200, 77, "FAILED")
    assert http(f"{dbx}/_sandbox/failures/given-run", {"run_id": "five", "job_id": 77}) == (
        400, {"error": "run_id: expected a number, got 'five'"})
    assert http(f"{sandbox.openai_url.removesuffix('/v1')}/_sandbox/failures/given-run",
                {"run_id": 1}) == (404, {"error": "openai makes no failure 'given-run'; it "
                                                  "makes: none"})
    assert http(f"{adf}/_sandbox/runs", {"run_id": "r-2", "pipeline": "pl_x"},
                ca_file=sandbox.ca_file)[0] == 404  # the one route: no second way


def test_unknown_endpoint_is_a_real_shaped_404(sandbox: Sandbox) -> None:
    assert http(f"{sandbox.databricks_url}/api/2.1/nothing/here") == (
        404, {"error_code": "ENDPOINT_NOT_FOUND",
              "message": "No API found for 'GET /api/2.1/nothing/here'"})


def test_reset_gives_fresh_state_and_no_scripts(sandbox: Sandbox) -> None:
    base = sandbox.databricks_url
    http(f"{base}/api/2.1/clusters/start", {"cluster_id": "c-1"})
    sandbox.script("databricks", "clusters.get", status=500, times=3)
    sandbox.reset()
    assert sandbox.calls() == []
    status, cluster = http(f"{base}/api/2.1/clusters/get?cluster_id=c-1")
    assert (status, cluster["state"]) == (200, "TERMINATED")


def test_script_refuses_unknown_service_and_bad_times(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown sandbox service 'aws'"):
        sandbox.script("aws", "x")
    with pytest.raises(ValueError, match="times must be at least 1"):
        sandbox.script("openai", "openai.chat", status=500, times=0)


def test_python_m_sandbox_writes_the_config(tmp_path: Path) -> None:
    out = tmp_path / "sandbox.toml"
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(
        main(["--config-out", str(out)], stop=stop)))
    thread.start()
    try:
        for _ in range(200):
            if out.exists() and out.read_text().endswith("\n"):
                break
            stop.wait(0.05)
        config = tomllib.loads(out.read_text())["sandbox"]
        assert sorted(config) == ["adf_url", "ca_file", "databricks_url", "openai_url",
                                  "synapse_url"]
        assert config["openai_url"].endswith("/v1")
        assert config["ca_file"] == str(tmp_path / "sandbox-ca.pem")
        status, _ = http(f"{config['adf_url']}/_sandbox/calls", ca_file=config["ca_file"])
        assert status == 200
    finally:
        stop.set()
        thread.join(timeout=10)
    assert result == [0]


def test_logged_bodies_do_not_change_with_the_state(sandbox: Sandbox) -> None:
    base = sandbox.databricks_url
    http(f"{base}/api/2.2/jobs/reset", {"job_id": 3, "new_settings": {"name": "a"}})
    http(f"{base}/api/2.2/jobs/update", {"job_id": 3, "new_settings": {"name": "b"}})
    assert sandbox.calls()[0]["body"] == {"job_id": 3, "new_settings": {"name": "a"}}
    assert http(f"{base}/api/2.2/jobs/get?job_id=3")[1]["settings"] == {"name": "b"}
