"""remediator send-test against a real running service (uvicorn on a free port, in a thread):
every shipped sample is accepted with 202 as a new event of its source, never a duplicate."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner, Result

from cli import main
from cli.send_test import ENDPOINTS, SAMPLES, fresh_payload, load_sample
from engine.config import ReceiverSettings, Secret, Settings
from engine.store.db import Database
from receivers.app import create_app
from receivers.intake import normalize
from tests.cli.conftest import Served
from tests.e2e.test_remediation import APPROVAL
from tests.fixtures.app import ADMIN_KEY, BASIC_PASSWORD, BASIC_USER, RECEIVER_KEY
from tests.fixtures.common import TESTDATA
from tests.fixtures.service import ADMIN_KEY as SERVICE_ADMIN_KEY
from tests.fixtures.service import RECEIVER_KEY as SERVICE_RECEIVER_KEY

ORIGINALS = {
    "adf-log": "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json",
    "adf-metric": "azure-monitor/azmon-common-metric-adf-pipelinefailed.json",
    "adf-seed": "seed/adf-action-group-alert.json",
    "synapse-metric": "azure-monitor/azmon-common-metric-synapse-failed.json",
    "functions-log": "azure-monitor/azmon-common-logv2-appinsights-exception.json",
    "databricks-job": "databricks/databricks-job-on-failure.json",
    "databricks-task": "databricks/databricks-task-on-failure.json",
    "databricks-seed": "seed/databricks-job-failure.json",
}
CASES = [(source, name) for source, names in SAMPLES.items() for name in names]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole app served by uvicorn on 127.0.0.1 and a free port, once for this module
    (every send makes fresh ids, so the tests do not see each other); yields its base URL."""
    db = Database(tmp_path_factory.mktemp("send-test") / "remediator.db")
    settings = Settings(
        api_keys=(Secret(RECEIVER_KEY),), admin_keys=(Secret(ADMIN_KEY),),
        basic_users={BASIC_USER: Secret(BASIC_PASSWORD)},
        receivers={"databricks-monitor": ReceiverSettings(auth=("basic",))},
    )
    config = uvicorn.Config(create_app(settings, db), host="127.0.0.1", port=0,
                            log_config=None, access_log=False, lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    db.close()


class Sent:
    """What send-test printed, without the in-process server's own log lines (the server runs
    in a thread of this process, so its structlog lines land in the same captured stdout)."""

    def __init__(self, result: Result) -> None:
        self.exit_code = result.exit_code
        self.stderr = result.stderr
        self.output = result.output
        self.stdout = "".join(line for line in result.stdout.splitlines(keepends=True)
                              if not _SERVER_LOG.match(line))


_SERVER_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


def _run(*args: str) -> Sent:
    return Sent(CliRunner().invoke(main, ["send-test", *args], catch_exceptions=False))


def _credentials(source: str) -> list[str]:
    # /databricks-monitor takes basic auth only in app_settings; the others take the key.
    if source == "databricks":
        return ["--basic", f"{BASIC_USER}:{BASIC_PASSWORD}"]
    return ["--key", RECEIVER_KEY]


def _parts(stdout: str) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """The POST line, its answer, the GET line and the event, as send-test prints them."""
    post, rest = stdout.split("\n", 1)
    answer_text, get_part = rest.split("\nGET ", 1)
    get_line, event_text = get_part.split("\n", 1)
    return post, json.loads(answer_text), "GET " + get_line, json.loads(event_text)


@pytest.mark.parametrize(("source", "name"), CASES)
def test_each_sample_becomes_a_new_event_of_its_source(server: str, source: str,
                                                       name: str) -> None:
    expected = normalize(ENDPOINTS[source], load_sample(source, name))[0]
    result = _run(source, "--url", server, "--sample", name, *_credentials(source),
                  "--admin-key", ADMIN_KEY)
    assert result.exit_code == 0, result.output
    post, answer, get_line, event = _parts(result.stdout)
    assert post == f"POST {server}/{ENDPOINTS[source]} ({source}/{name}) -> 202"
    assert answer["duplicate"] is False
    assert get_line == f"GET /api/events/{answer['event_id']} -> 200"
    assert event["id"] == answer["event_id"]
    assert event["endpoint"] == ENDPOINTS[source]
    same = ("source", "kind", "status", "resource", "error_code", "failure_type")
    assert {k: event[k] for k in same} == {k: getattr(expected, k) for k in same}
    assert event["dedup_key"] != expected.dedup_key
    if expected.run_id:
        assert event["run_id"] not in ("", expected.run_id)
    assert RECEIVER_KEY not in result.output and BASIC_PASSWORD not in result.output


def test_two_sends_are_two_events(server: str) -> None:
    ids = set()
    for _ in range(2):
        result = _run("adf", "--url", server, "--key", RECEIVER_KEY)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout.split("\n", 1)[1])
        assert answer["duplicate"] is False
        ids.add(answer["event_id"])
    assert len(ids) == 2


def test_a_refused_send_exits_1_with_the_answer(server: str) -> None:
    result = _run("synapse", "--url", server, "--key", "wrong-key")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        f"POST {server}/synapse-monitor (synapse/metric) -> 401")
    assert json.loads(result.stdout.split("\n", 1)[1])["error"] == "unauthorized"


def test_an_unreachable_url_exits_1() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _run("databricks", "--url", f"http://127.0.0.1:{port}", "--basic", "u:p")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"remediator send-test: cannot reach http://127.0.0.1:{port}/databricks-monitor: ")


def test_bad_input_exits_2() -> None:
    result = _run("functions", "--url", "http://127.0.0.1:9", "--sample", "metric")
    assert (result.exit_code, result.stderr) == (
        2, "remediator send-test: functions has no sample 'metric'; choose one of log\n")
    result = _run("adf", "--url", "http://127.0.0.1:9", "--basic", "no-colon")
    assert (result.exit_code, result.stderr) == (
        2, "remediator send-test: --basic: expected user:password\n")


def test_fresh_payloads_change_only_the_ids_and_time() -> None:
    original = load_sample("adf", "log")
    fresh = fresh_payload("adf", "log")
    ess, old = fresh["data"]["essentials"], original["data"]["essentials"]
    assert ess["alertId"].rsplit("/", 1)[0] == old["alertId"].rsplit("/", 1)[0]
    assert ess["alertId"] != old["alertId"]
    run_ids = {d["value"] for d in fresh["data"]["alertContext"]["condition"]["allOf"][0][
        "dimensions"] if d["name"] == "PipelineRunId"}
    assert run_ids == {fresh["data"]["alertContext"]["properties"]["PipelineRunId"]}
    assert run_ids != {"7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"}
    fresh["data"]["essentials"] = old
    fresh["data"]["alertContext"]["properties"]["PipelineRunId"] = "x"
    original["data"]["alertContext"]["properties"]["PipelineRunId"] = "x"
    for payload in (fresh, original):
        for d in payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"]:
            if d["name"] == "PipelineRunId":
                d["value"] = "x"
    assert fresh == original
    task = fresh_payload("databricks", "task")
    assert isinstance(task["run"]["run_id"], str) and task["run"]["run_id"] != "447120411"
    seed = fresh_payload("databricks", "seed")
    assert isinstance(seed["run"]["run_id"], int)


@pytest.mark.parametrize(("shipped", "original"), sorted(ORIGINALS.items()))
def test_shipped_samples_equal_the_test_samples(shipped: str, original: str) -> None:
    source, name = shipped.split("-", 1)
    assert load_sample(source, name) == json.loads(
        (TESTDATA / "samples" / original).read_text())
    assert Path(TESTDATA / "samples" / original).exists()


# -- against a server that runs the engine: send-test waits and reports the decision ---------


@pytest.fixture
def engine_server(service_rig: Any) -> Iterator[Served]:
    """A live rig (an ADF rule that needs approval) served on a free port, its worker draining
    the inbox in a thread of its own, as the service's worker would."""
    rig = service_rig(APPROVAL, live=True)
    running = Served(rig)
    stop = threading.Event()

    def work() -> None:
        while not stop.wait(0.02):
            rig.run()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    yield running
    stop.set()
    worker.join(timeout=30)
    running.stop()


def _send(*args: str, env: dict[str, str] | None = None) -> Sent:
    return Sent(CliRunner().invoke(main, ["send-test", *args], env=env,
                                   catch_exceptions=False))


def test_send_test_waits_and_reports_the_rule_incident_and_decision(
        engine_server: Served) -> None:
    result = _send("adf", "--url", engine_server.url, "--key", SERVICE_RECEIVER_KEY,
                   "--admin-key", SERVICE_ADMIN_KEY)
    assert result.exit_code == 0, result.output
    [incident] = engine_server.rig.incidents()
    rules_file = engine_server.rig.playbooks / "rules.yaml"
    assert result.stdout.splitlines()[-4:] == [
        "event:    done: adf activity_run firing pl_ingest_sales_daily, error code "
        "UserErrorSourceBlobNotExist",
        f"rule:     blob-with-approval ({rules_file}:4)",
        f"incident: {incident.id} waiting_approval: waiting for approval",
        "action:   remediate adf.rerun_pipeline waiting_approval",
    ]
    assert '"state": "processing"' not in result.stdout


def test_send_test_json_reads_the_environment(engine_server: Served) -> None:
    result = _send("adf", "--json", env={
        "REMEDIATOR_URL": engine_server.url, "REMEDIATOR_API_KEY": SERVICE_RECEIVER_KEY,
        "REMEDIATOR_ADMIN_KEY": SERVICE_ADMIN_KEY})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [incident] = engine_server.rig.incidents()
    assert sorted(report) == ["actions", "answer", "error", "event", "incident", "ok", "rule",
                              "sample", "source", "status", "url"]
    assert (report["ok"], report["status"], report["sample"], report["error"]) == (
        True, 202, "log", None)
    assert report["event"]["id"] == report["answer"]["event_id"]
    assert report["event"]["state"] == "done"
    assert report["rule"]["id"] == "blob-with-approval"
    assert (report["incident"]["id"], report["incident"]["state"]) == (
        incident.id, "waiting_approval")
    assert [(a["action"], a["state"]) for a in report["actions"]] == [
        ("adf.rerun_pipeline", "waiting_approval")]


def test_a_refused_key_says_what_to_set(server: str) -> None:
    result = _run("adf", "--url", server, "--key", "not-the-key")
    assert result.exit_code == 1
    assert result.stderr == (
        f"remediator send-test: {server} refused the receiver credential (401): pass --key or "
        "set REMEDIATOR_API_KEY to one of the server's REMEDIATOR_API_KEYS (or the receiver's "
        "own REMEDIATOR_RECEIVER_KEYS_<NAME>), or --basic user:password of its "
        "REMEDIATOR_BASIC_USERS\n")
    wrong_admin = _run("adf", "--url", server, "--key", RECEIVER_KEY, "--admin-key", "nope")
    assert wrong_admin.exit_code == 1
    assert wrong_admin.stderr == (
        f"remediator send-test: {server} refused the admin key (401): pass --key or set "
        "REMEDIATOR_ADMIN_KEY to one of the server's REMEDIATOR_ADMIN_KEYS\n")


def test_a_wait_out_of_bounds_is_exit_2() -> None:
    result = _run("adf", "--url", "http://127.0.0.1:9", "--wait", "3601")
    assert (result.exit_code, result.stderr) == (
        2, "remediator send-test: --wait: expected 0 to 600 seconds, got 3601\n")
