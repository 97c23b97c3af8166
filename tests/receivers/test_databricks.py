"""The Databricks parsers: every sample field by field, every refusal with its exact message."""

from __future__ import annotations

import ast
import contextlib
import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import receivers.databricks
from engine.errors import MalformedPayload, PayloadError, UnknownSchema
from engine.events import ErrorEvent
from receivers.databricks import parse, parse_cluster_events_page
from scripts.fuzz_parsers import json_parent, json_paths
from tests.fixtures.common import TESTDATA, assert_wrapped, load_sample

JOB_ON_FAILURE = "databricks/databricks-job-on-failure.json"
TASK_ON_FAILURE = "databricks/databricks-task-on-failure.json"
SEED_JOB = "seed/databricks-job-failure.json"
SEED_TERMINATED = "seed/databricks-cluster-terminated.json"
SEED_FAILED_TO_START = "seed/databricks-cluster-failed-to-start.json"
PAGE_UNREACHABLE = "cloud-api/databricks-cluster-events-instance-unreachable.json"
PAGE_INACTIVITY = "cloud-api/databricks-cluster-events-terminated-inactivity.json"
WEBHOOK_SAMPLES = (JOB_ON_FAILURE, TASK_ON_FAILURE, SEED_JOB, SEED_TERMINATED, SEED_FAILED_TO_START)
PAGE_SAMPLES = (PAGE_UNREACHABLE, PAGE_INACTIVITY)


def raw_sample(relative: str) -> bytes:
    """The sample's bytes exactly as a sender would post them."""
    return (TESTDATA / "samples" / relative).read_bytes()


def fields(event: ErrorEvent) -> dict[str, Any]:
    """An event as a dict, so that a mismatch shows field by field."""
    return msgspec.structs.asdict(event)


def expect(**values: Any) -> dict[str, Any]:
    """The expected event's fields; the fingerprint is computed by the engine's own function."""
    return fields(ErrorEvent(source="databricks", **values).with_fingerprint())


def only(events: list[ErrorEvent]) -> ErrorEvent:
    assert len(events) == 1
    return events[0]


def ms(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


# --- the samples, field by field -------------------------------------------------------------

JOB_ON_FAILURE_EVENT = expect(
    kind="job_run",
    status="firing",
    dedup_key="dbx:jobs.on_failure:447120398",
    resource="sales_bronze_to_silver",
    resource_id="816305927331",
    run_id="447120398",
    error_code="",
    error_codes=(),
    message="Job sales_bronze_to_silver run 447120398 failed",
    failure_type="",
    attributes={
        "event_type": "jobs.on_failure",
        "job_id": "816305927331",
        "workspace_id": "1234567890123456",
    },
)

TASK_ON_FAILURE_EVENT = expect(
    kind="task_run",
    status="firing",
    dedup_key="dbx:jobs.on_failure:447120411:transform_orders",
    resource="sales_bronze_to_silver",
    resource_id="816305927331",
    run_id="447120411",
    message="Task transform_orders of job sales_bronze_to_silver run 447120411 failed",
    attributes={
        "event_type": "jobs.on_failure",
        "job_id": "816305927331",
        "workspace_id": "1234567890123456",
        "task_key": "transform_orders",
        "parent_run_id": "447120398",
    },
)

SEED_JOB_EVENT = expect(
    kind="job_run",
    status="firing",
    dedup_key="dbx:job.failure:204354054874177",
    resource="ETL_Production_Pipeline",
    resource_id="404831337617650",
    run_id="204354054874177",
    error_code="",
    error_codes=(),
    message="Task failed. Check task logs for details.",
    failure_type="",
    occurred_at=datetime(2024, 11, 26, 13, 30, 0, tzinfo=UTC),
    attributes={
        "event_type": "job.failure",
        "job_id": "404831337617650",
        "workspace_id": "",
        "run_name": "Manual run",
        "life_cycle_state": "TERMINATED",
        "result_state": "FAILED",
    },
)

SEED_TERMINATED_EVENT = expect(
    kind="cluster",
    status="firing",
    dedup_key="dbx:cluster.terminated:1234-567890-abc123:1732627900000",
    resource="Production ETL Cluster",
    resource_id="1234-567890-abc123",
    run_id="",
    error_code="INACTIVITY",
    error_codes=("INACTIVITY",),
    message="Cluster terminated due to inactivity",
    failure_type="SUCCESS",
    occurred_at=datetime(2024, 11, 26, 13, 31, 40, tzinfo=UTC),
    attributes={
        "event_type": "cluster.terminated",
        "state": "TERMINATED",
        "cluster_id": "1234-567890-abc123",
        "termination_parameters": {"inactivity_duration_min": "120"},
    },
)

SEED_FAILED_TO_START_EVENT = expect(
    kind="cluster",
    status="firing",
    dedup_key="dbx:cluster.failed_to_start:1234-567890-abc123:1732628000000",
    resource="ML Training Cluster",
    resource_id="1234-567890-abc123",
    error_code="INSTANCE_UNREACHABLE",
    error_codes=("INSTANCE_UNREACHABLE",),
    message=(
        "Cluster failed to start: Instance type Standard_DS3_v2 is not available in region eastus"
    ),
    failure_type="CLOUD_FAILURE",
    occurred_at=datetime(2024, 11, 26, 13, 33, 20, tzinfo=UTC),
    attributes={
        "event_type": "cluster.failed_to_start",
        "state": "ERROR",
        "cluster_id": "1234-567890-abc123",
        "termination_parameters": {"aws_error_message": "Instance type not available"},
    },
)

EXPECTED = {
    JOB_ON_FAILURE: JOB_ON_FAILURE_EVENT,
    TASK_ON_FAILURE: TASK_ON_FAILURE_EVENT,
    SEED_JOB: SEED_JOB_EVENT,
    SEED_TERMINATED: SEED_TERMINATED_EVENT,
    SEED_FAILED_TO_START: SEED_FAILED_TO_START_EVENT,
}


def test_every_databricks_webhook_sample_is_covered() -> None:
    on_disk = {
        f"{path.parent.name}/{path.name}"
        for folder in ("databricks", "seed")
        for path in (TESTDATA / "samples" / folder).glob("databricks-*.json")
    }
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("sample", WEBHOOK_SAMPLES)
def test_sample_bytes_give_the_expected_event(sample: str) -> None:
    event = only(parse(raw_sample(sample)))
    assert fields(event) == EXPECTED[sample]
    assert len(event.fingerprint) == 16


@pytest.mark.parametrize("sample", WEBHOOK_SAMPLES)
def test_bytes_text_bytearray_and_dict_give_the_same_event(sample: str) -> None:
    raw = raw_sample(sample)
    expected = EXPECTED[sample]
    assert fields(only(parse(load_sample(sample)))) == expected
    assert fields(only(parse(raw.decode()))) == expected
    assert fields(only(parse(bytearray(raw)))) == expected
    assert fields(only(parse(memoryview(raw)))) == expected


def test_parse_leaves_the_callers_dict_alone() -> None:
    body = load_sample(SEED_TERMINATED)
    before = copy.deepcopy(body)
    event = only(parse(body))
    event.attributes["termination_parameters"]["extra"] = "x"
    assert body == before


# --- ids as numbers or strings --------------------------------------------------------------


@pytest.mark.parametrize("sample", (JOB_ON_FAILURE, TASK_ON_FAILURE))
def test_numeric_ids_give_the_same_event_as_string_ids(sample: str) -> None:
    body = load_sample(sample)
    body["workspace_id"] = int(body["workspace_id"])
    body["job"]["job_id"] = int(body["job"]["job_id"])
    for key in ("run_id", "parent_run_id"):
        if key in body["run"]:
            body["run"][key] = int(body["run"][key])
    assert fields(only(parse(msgspec.json.encode(body)))) == EXPECTED[sample]


def test_string_ids_in_the_seed_job_give_the_same_event_as_numbers() -> None:
    body = load_sample(SEED_JOB)
    body["job"]["job_id"] = "404831337617650"
    body["run"]["run_id"] = " 204354054874177 "
    assert fields(only(parse(body))) == SEED_JOB_EVENT


def test_ids_beyond_64_bits_stay_exact() -> None:
    body = load_sample(JOB_ON_FAILURE)
    body["run"]["run_id"] = 123456789012345678901234567890
    event = only(parse(msgspec.json.encode(body)))
    assert event.run_id == "123456789012345678901234567890"
    assert event.dedup_key == "dbx:jobs.on_failure:123456789012345678901234567890"


# --- every event type -----------------------------------------------------------------------

# (event type, status, severity, verb). The threshold notifications are warnings someone must
# see (issue 15, 9): firing, with the low severity 3, not `info`.
EVENT_TYPES = [
    ("jobs.on_start", "info", None, "started"),
    ("jobs.on_success", "info", None, "succeeded"),
    ("jobs.on_failure", "firing", None, "failed"),
    (
        "jobs.on_duration_warning_threshold_exceeded",
        "firing",
        3,
        "exceeded its duration warning threshold",
    ),
    ("jobs.on_streaming_backlog_exceeded", "firing", 3,
     "exceeded its streaming backlog threshold"),
]


@pytest.mark.parametrize(("event_type", "status", "severity", "verb"), EVENT_TYPES)
def test_every_job_event_type(
    event_type: str, status: str, severity: int | None, verb: str
) -> None:
    body = load_sample(JOB_ON_FAILURE)
    body["event_type"] = event_type
    event = only(parse(body))
    assert fields(event) == expect(
        kind="job_run",
        status=status,
        severity=severity,
        dedup_key=f"dbx:{event_type}:447120398",
        resource="sales_bronze_to_silver",
        resource_id="816305927331",
        run_id="447120398",
        message=f"Job sales_bronze_to_silver run 447120398 {verb}",
        attributes={
            "event_type": event_type,
            "job_id": "816305927331",
            "workspace_id": "1234567890123456",
        },
    )


@pytest.mark.parametrize(("event_type", "status", "severity", "verb"), EVENT_TYPES)
def test_every_task_event_type(
    event_type: str, status: str, severity: int | None, verb: str
) -> None:
    body = load_sample(TASK_ON_FAILURE)
    body["event_type"] = event_type
    event = only(parse(body))
    assert (event.kind, event.status, event.severity, event.dedup_key, event.message) == (
        "task_run",
        status,
        severity,
        f"dbx:{event_type}:447120411:transform_orders",
        f"Task transform_orders of job sales_bronze_to_silver run 447120411 {verb}",
    )
    assert event.attributes["event_type"] == event_type


# --- tolerance: unknown keys, optional fields ------------------------------------------------


def add_unknown_keys(value: Any) -> Any:
    """The same payload with an extra key in every object, as a newer sender might post it."""
    if isinstance(value, dict):
        grown = {key: add_unknown_keys(item) for key, item in value.items()}
        grown["added_by_a_newer_sender"] = {"nested": [1, "two", None]}
        return grown
    if isinstance(value, list):
        return [add_unknown_keys(item) for item in value]
    return value


@pytest.mark.parametrize("sample", (JOB_ON_FAILURE, TASK_ON_FAILURE, SEED_JOB))
def test_unknown_keys_are_ignored(sample: str) -> None:
    assert fields(only(parse(add_unknown_keys(load_sample(sample))))) == EXPECTED[sample]


@pytest.mark.parametrize("sample", (SEED_TERMINATED, SEED_FAILED_TO_START))
def test_unknown_keys_around_a_cluster_are_ignored(sample: str) -> None:
    body = add_unknown_keys(load_sample(sample))
    # the reason's parameters are an open map: a new one is kept, as sent
    parameters = body["cluster"]["termination_reason"]["parameters"]
    expected = copy.deepcopy(EXPECTED[sample])
    expected["attributes"]["termination_parameters"] = parameters
    assert fields(only(parse(body))) == expected


def test_unknown_keys_in_a_page_are_ignored() -> None:
    page = add_unknown_keys(load_sample(PAGE_UNREACHABLE))
    event = only(parse_cluster_events_page(page))
    assert event.dedup_key == "dbx-cluster:0601-182128-dcbte59m:1741963104552"
    assert event.error_code == "DRIVER_UNREACHABLE"


def test_a_job_without_a_name_is_named_by_its_id() -> None:
    body = load_sample(JOB_ON_FAILURE)
    del body["job"]["name"]
    event = only(parse(body))
    assert (event.resource, event.message) == (
        "job 816305927331",
        "Job 816305927331 run 447120398 failed",
    )


def test_missing_workspace_and_parent_run_ids_are_empty_strings() -> None:
    body = load_sample(TASK_ON_FAILURE)
    del body["workspace_id"]
    body["run"]["parent_run_id"] = None
    event = only(parse(body))
    assert event.attributes["workspace_id"] == ""
    assert event.attributes["parent_run_id"] == ""


def test_a_null_task_is_a_job_event() -> None:
    body = load_sample(JOB_ON_FAILURE)
    body["task"] = None
    assert fields(only(parse(body))) == JOB_ON_FAILURE_EVENT


def test_the_event_key_wins_over_event_type() -> None:
    body = load_sample(SEED_JOB)
    body["event_type"] = "jobs.on_success"
    assert fields(only(parse(body))) == SEED_JOB_EVENT


def test_event_type_alone_selects_the_in_house_shapes() -> None:
    body = load_sample(SEED_TERMINATED)
    del body["event"]
    assert fields(only(parse(body))) == SEED_TERMINATED_EVENT


def test_seed_job_with_termination_details_takes_code_and_type_from_them() -> None:
    body = load_sample(SEED_JOB)
    body["run"]["status"] = {
        "state": "TERMINATED",
        "termination_details": {
            "code": "LIBRARY_INSTALLATION_ERROR",
            "type": "CLIENT_ERROR",
            "message": "Library installation failed for library due to user error.",
        },
    }
    event = only(parse(body))
    assert (event.error_code, event.error_codes, event.failure_type, event.message) == (
        "LIBRARY_INSTALLATION_ERROR",
        ("LIBRARY_INSTALLATION_ERROR",),
        "CLIENT_ERROR",
        "Task failed. Check task logs for details.",
    )
    del body["run"]["state"]
    event = only(parse(body))
    assert event.message == "Library installation failed for library due to user error."
    assert (event.attributes["result_state"], event.attributes["life_cycle_state"]) == ("", "")


def test_seed_job_without_state_or_timestamp() -> None:
    body = load_sample(SEED_JOB)
    del body["run"]["state"], body["timestamp"], body["job"]["settings"]
    body["job"]["name"] = "fallback_name"
    event = only(parse(body))
    assert (event.message, event.resource, event.occurred_at) == (
        "Job fallback_name run 204354054874177 failed",
        "fallback_name",
        None,
    )


def test_cluster_message_from_the_reason_when_the_sender_gives_none() -> None:
    body = load_sample(SEED_TERMINATED)
    del body["cluster"]["state_message"]
    assert only(parse(body)).message == (
        "Cluster Production ETL Cluster terminated: INACTIVITY (inactivity_duration_min=120)"
    )
    body = load_sample(SEED_FAILED_TO_START)
    del body["cluster"]["state_message"]
    body["cluster"]["termination_reason"] = {
        "code": "AZURE_QUOTA_EXCEEDED_EXCEPTION",
        "type": "CLIENT_ERROR",
        "parameters": {
            "azure_error_code": "QuotaExceeded",
            "azure_error_message": "Operation could not be completed as it results in exceeding"
            " approved standardDSv2Family Cores quota.",
        },
    }
    event = only(parse(body))
    assert (event.error_code, event.error_codes, event.failure_type, event.message) == (
        "AZURE_QUOTA_EXCEEDED_EXCEPTION",
        ("AZURE_QUOTA_EXCEEDED_EXCEPTION", "QuotaExceeded"),
        "CLIENT_ERROR",
        "Operation could not be completed as it results in exceeding approved"
        " standardDSv2Family Cores quota.",
    )


def test_cluster_without_reason_or_name() -> None:
    body = load_sample(SEED_FAILED_TO_START)
    cluster = body["cluster"]
    del cluster["termination_reason"], cluster["state_message"], cluster["cluster_name"]
    assert fields(only(parse(body))) == expect(
        kind="cluster",
        status="firing",
        dedup_key="dbx:cluster.failed_to_start:1234-567890-abc123:1732628000000",
        resource="1234-567890-abc123",
        resource_id="1234-567890-abc123",
        message="Cluster 1234-567890-abc123 failed to start",
        occurred_at=ms(1732628000000),
        attributes={
            "event_type": "cluster.failed_to_start",
            "state": "ERROR",
            "cluster_id": "1234-567890-abc123",
            "termination_parameters": {},
        },
    )


# --- cluster events pages --------------------------------------------------------------------


def test_page_with_a_driver_unreachable_termination() -> None:
    page = load_sample(PAGE_UNREACHABLE)
    events = parse_cluster_events_page(page, cluster_name="etl-shared", workspace="adb-1234")
    # DRIVER_NOT_RESPONDING, NODES_LOST (even with a reason) and RUNNING are not terminations
    assert [fields(event) for event in events] == [
        expect(
            kind="cluster",
            status="firing",
            dedup_key="dbx-cluster:0601-182128-dcbte59m:1741963104552",
            resource="etl-shared",
            resource_id="0601-182128-dcbte59m",
            run_id="",
            error_code="DRIVER_UNREACHABLE",
            error_codes=("DRIVER_UNREACHABLE",),
            message="Could not reach driver of cluster 0601-182128-dcbte59m for 1800 seconds.",
            failure_type="CLOUD_FAILURE",
            occurred_at=datetime(2025, 3, 14, 14, 38, 24, 552000, tzinfo=UTC),
            attributes={
                "event_type": "TERMINATING",
                "workspace": "adb-1234",
                "cluster_id": "0601-182128-dcbte59m",
                "termination_parameters": {
                    "databricks_error_message": (
                        "Could not reach driver of cluster 0601-182128-dcbte59m for 1800 seconds."
                    ),
                    "instance_id": "3f1c9a7e52b84d06a1e7c2b9f0d4e813",
                },
            },
        )
    ]


def test_page_with_an_inactivity_termination_is_firing() -> None:
    events = parse_cluster_events_page(load_sample(PAGE_INACTIVITY))
    # DRIVER_HEALTHY, RUNNING, INIT_SCRIPTS_*, STARTING are ignored
    assert [fields(event) for event in events] == [
        expect(
            kind="cluster",
            status="firing",
            dedup_key="dbx-cluster:0601-182128-dcbte59m:1741945320118",
            resource="0601-182128-dcbte59m",
            resource_id="0601-182128-dcbte59m",
            error_code="INACTIVITY",
            error_codes=("INACTIVITY",),
            message=(
                "Cluster 0601-182128-dcbte59m terminated: INACTIVITY (inactivity_duration_min=60)"
            ),
            failure_type="SUCCESS",
            occurred_at=datetime(2025, 3, 14, 9, 42, 0, 118000, tzinfo=UTC),
            attributes={
                "event_type": "TERMINATING",
                "workspace": "",
                "cluster_id": "0601-182128-dcbte59m",
                "termination_parameters": {"inactivity_duration_min": "60"},
            },
        )
    ]


def test_page_with_two_terminations_keeps_both_in_order() -> None:
    page = load_sample(PAGE_UNREACHABLE)
    page["events"] += load_sample(PAGE_INACTIVITY)["events"]
    events = parse_cluster_events_page(page, cluster_name="etl")
    assert [event.dedup_key for event in events] == [
        "dbx-cluster:0601-182128-dcbte59m:1741963104552",
        "dbx-cluster:0601-182128-dcbte59m:1741945320118",
    ]


@pytest.mark.parametrize(
    "page",
    [
        {},
        {"total_count": 0},
        {"events": None},
        {"events": []},
        {"events": [{"type": "TERMINATING", "cluster_id": "c", "timestamp": 1}]},
        {"events": [{"type": "TERMINATING", "details": {}, "cluster_id": "c", "timestamp": 1}]},
        {"events": [{"type": "TERMINATING", "details": {"reason": None}}]},
        {"events": [{"type": "RUNNING", "details": "anything", "cluster_id": 5}]},
        {"events": [{"details": {"reason": {"code": "X"}}}]},
    ],
)
def test_pages_without_terminations_give_no_events(page: dict[str, Any]) -> None:
    assert parse_cluster_events_page(page) == []


# --- refusals: exact class and message -------------------------------------------------------


def refusal(error_class: type[PayloadError], call: Any, *args: Any) -> PayloadError:
    with pytest.raises(PayloadError) as info:
        call(*args)
    assert type(info.value) is error_class
    return info.value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000, "the body is not valid JSON: nested too deeply"),
    ],
)
def test_malformed_bodies(body: bytes | str, message: str) -> None:
    error = refusal(MalformedPayload, parse, body)
    assert (error.message, error.path, str(error)) == (message, "$", message)


@pytest.mark.parametrize(
    ("body", "ours"),
    [
        (b"", "the body is not valid JSON: "),
        (b'{"event_type": ', "the body is not valid JSON: "),
        (b"{'a': 1}", "the body is not valid JSON: "),
        (b'{"event_type": "jobs.on_failure"} trailing', "the body is not valid JSON: "),
        (b'{"a": "\xff"}', "the body is not valid UTF-8: "),
        ("{", "the body is not valid JSON: "),
    ],
)
def test_malformed_bodies_say_which_and_then_the_decoders_reason(
    body: bytes | str, ours: str
) -> None:
    error = refusal(MalformedPayload, parse, body)
    assert (error.path, str(error)) == ("$", error.message)
    assert_wrapped(error.message, ours)  # then msgspec's (or the codec's) reason, its wording


@pytest.mark.parametrize(
    ("body", "got"),
    [
        (b"[]", "array"),
        (b'"jobs.on_failure"', "string"),
        (b"null", "null"),
        (b"12", "number"),
        (b"true", "boolean"),
        ([{"event_type": "jobs.on_failure"}], "array"),
    ],
)
def test_json_that_is_not_an_object(body: Any, got: str) -> None:
    error = refusal(UnknownSchema, parse, body)
    assert (error.message, error.path) == (
        f"a Databricks payload must be a JSON object, got {got}",
        "$",
    )


KNOWN = (
    "jobs.on_start, jobs.on_success, jobs.on_failure, jobs.on_duration_warning_threshold_exceeded,"
    " jobs.on_streaming_backlog_exceeded, job.failure, cluster.terminated,"
    " cluster.failed_to_start"
)


def with_changes(sample: str, change: dict[str, Any]) -> dict[str, Any]:
    """The sample with dotted paths set to new values (``...`` deletes the key)."""
    body = load_sample(sample)
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        target = body
        for key in parents:
            target = target[key]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return body


@pytest.mark.parametrize(
    ("sample", "change", "message", "path"),
    [
        (JOB_ON_FAILURE, {"event_type": "jobs.on_foo"},
         f"unknown event_type 'jobs.on_foo'; known: {KNOWN}", "$.event_type"),
        (SEED_JOB, {"event": "job.success"},
         f"unknown event 'job.success'; known: {KNOWN}", "$.event"),
        (JOB_ON_FAILURE, {"event_type": "x" * 150},
         f"unknown event_type '{'x' * 100}...'; known: {KNOWN}", "$.event_type"),
        (JOB_ON_FAILURE, {"event_type": ...}, "missing `event_type`", "$.event_type"),
        (JOB_ON_FAILURE, {"event_type": ""}, "`event_type` must not be empty", "$.event_type"),
        (JOB_ON_FAILURE, {"event_type": 3},
         "`event_type` must be a string, got number", "$.event_type"),
        (SEED_JOB, {"event": ["job.failure"]},
         "`event` must be a string, got array", "$.event"),
        (JOB_ON_FAILURE, {"run": ...}, "missing `run`", "$.run"),
        (JOB_ON_FAILURE, {"run": "447120398"},
         "`run` must be an object, got string", "$.run"),
        (JOB_ON_FAILURE, {"run.run_id": ...}, "missing `run.run_id`", "$.run.run_id"),
        (JOB_ON_FAILURE, {"run.run_id": None}, "missing `run.run_id`", "$.run.run_id"),
        (JOB_ON_FAILURE, {"run.run_id": "  "},
         "`run.run_id` must not be empty", "$.run.run_id"),
        (JOB_ON_FAILURE, {"run.run_id": 447120398.0},
         "`run.run_id` must be a string or an integer, got number", "$.run.run_id"),
        (JOB_ON_FAILURE, {"job": ...}, "missing `job`", "$.job"),
        (JOB_ON_FAILURE, {"job.job_id": ...}, "missing `job.job_id`", "$.job.job_id"),
        (JOB_ON_FAILURE, {"job.job_id": True},
         "`job.job_id` must be a string or an integer, got boolean", "$.job.job_id"),
        (JOB_ON_FAILURE, {"job.job_id": {"id": 1}},
         "`job.job_id` must be a string or an integer, got object", "$.job.job_id"),
        (JOB_ON_FAILURE, {"job.name": 12}, "`job.name` must be a string, got number", "$.job.name"),
        (JOB_ON_FAILURE, {"workspace_id": [1]},
         "`workspace_id` must be a string or an integer, got array", "$.workspace_id"),
        (TASK_ON_FAILURE, {"task.task_key": ...}, "missing `task.task_key`", "$.task.task_key"),
        (TASK_ON_FAILURE, {"task": "transform_orders"},
         "`task` must be an object, got string", "$.task"),
        (TASK_ON_FAILURE, {"run.parent_run_id": 1.5},
         "`run.parent_run_id` must be a string or an integer, got number", "$.run.parent_run_id"),
        (SEED_JOB, {"run.run_id": ...}, "missing `run.run_id`", "$.run.run_id"),
        (SEED_JOB, {"job.settings": "ETL"},
         "`job.settings` must be an object, got string", "$.job.settings"),
        (SEED_JOB, {"run.state.state_message": 0},
         "`run.state.state_message` must be a string, got number", "$.run.state.state_message"),
        (SEED_JOB, {"timestamp": "1732627800000"},
         "`timestamp` must be an integer (milliseconds since the epoch), got string",
         "$.timestamp"),
        (SEED_TERMINATED, {"cluster": ...}, "missing `cluster`", "$.cluster"),
        (SEED_TERMINATED, {"cluster.cluster_id": ...},
         "missing `cluster.cluster_id`", "$.cluster.cluster_id"),
        (SEED_TERMINATED, {"cluster.cluster_id": 1234},
         "`cluster.cluster_id` must be a string, got number", "$.cluster.cluster_id"),
        (SEED_TERMINATED, {"timestamp": ...}, "missing `timestamp`", "$.timestamp"),
        (SEED_TERMINATED, {"timestamp": 1.5e12},
         "`timestamp` must be an integer (milliseconds since the epoch), got number",
         "$.timestamp"),
        (SEED_TERMINATED, {"timestamp": 10**20},
         "`timestamp` is out of range for a time in milliseconds", "$.timestamp"),
        (SEED_TERMINATED, {"cluster.termination_reason": "INACTIVITY"},
         "`cluster.termination_reason` must be an object, got string",
         "$.cluster.termination_reason"),
        (SEED_TERMINATED, {"cluster.termination_reason.parameters": ["a"]},
         "`cluster.termination_reason.parameters` must be an object, got array",
         "$.cluster.termination_reason.parameters"),
        (SEED_FAILED_TO_START, {"cluster.termination_reason.code": 5},
         "`cluster.termination_reason.code` must be a string, got number",
         "$.cluster.termination_reason.code"),
    ],
)
def test_unknown_schemas(sample: str, change: dict[str, Any], message: str, path: str) -> None:
    body = with_changes(sample, change)
    for form in (body, msgspec.json.encode(body)):
        error = refusal(UnknownSchema, parse, form)
        assert (error.message, error.path) == (message, path)
        assert str(error) == f"{message} - at `{path}`"


def test_values_that_json_cannot_carry_are_refused() -> None:
    body = load_sample(JOB_ON_FAILURE)
    body["job"]["name"] = "bad \ud800 name"
    error = refusal(UnknownSchema, parse, body)
    # then the codec's reason and msgspec's, each in its own words
    assert_wrapped(error.message, "the payload holds a value that JSON cannot carry: ")
    body = load_sample(SEED_TERMINATED)
    body["cluster"]["termination_reason"]["parameters"]["when"] = complex(1, 2)
    error = refusal(UnknownSchema, parse, body)
    assert_wrapped(error.message, "the payload holds a value that JSON cannot carry: ", "complex")
    deep: dict[str, Any] = {}
    body["cluster"]["termination_reason"]["parameters"]["when"] = deep
    for _ in range(5000):
        deep["x"] = deep = {}
    error = refusal(UnknownSchema, parse, body)
    assert error.message.startswith(
        "the payload holds a value that JSON cannot carry: maximum recursion depth exceeded"
    )


@pytest.mark.parametrize(
    ("page", "message", "path"),
    [
        ([], "a cluster events page must be a JSON object, got array", "$"),
        ({"events": {"0": {}}}, "`events` must be an array, got object", "$.events"),
        ({"events": ["TERMINATING"]}, "`events[0]` must be an object, got string", "$.events[0]"),
        (
            {"events": [{"type": "RUNNING"}, {"type": 7}]},
            "`events[1].type` must be a string, got number",
            "$.events[1].type",
        ),
        (
            {"events": [{"type": "TERMINATING", "details": {"reason": {}}, "timestamp": 1}]},
            "missing `events[0].cluster_id`",
            "$.events[0].cluster_id",
        ),
        (
            {"events": [{"type": "TERMINATING", "details": {"reason": {}}, "cluster_id": "c"}]},
            "missing `events[0].timestamp`",
            "$.events[0].timestamp",
        ),
        (
            {"events": [{"type": "TERMINATING", "details": [], "cluster_id": "c"}]},
            "`events[0].details` must be an object, got array",
            "$.events[0].details",
        ),
        (
            {"events": [{"type": "TERMINATING", "details": {"reason": "INACTIVITY"}}]},
            "`events[0].details.reason` must be an object, got string",
            "$.events[0].details.reason",
        ),
        (
            {
                "events": [
                    {
                        "type": "TERMINATING",
                        "cluster_id": "c",
                        "timestamp": 1,
                        "details": {"reason": {"code": "X", "type": ["CLOUD_FAILURE"]}},
                    }
                ]
            },
            "`events[0].details.reason.type` must be a string, got array",
            "$.events[0].details.reason.type",
        ),
    ],
)
def test_pages_of_the_wrong_shape(page: Any, message: str, path: str) -> None:
    error = refusal(UnknownSchema, parse_cluster_events_page, page)
    assert (error.message, error.path) == (message, path)


# --- the module stays a pure parser ----------------------------------------------------------


def test_the_parser_imports_no_web_framework_and_no_sdk() -> None:
    tree = ast.parse(Path(receivers.databricks.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"__future__", "collections", "datetime", "types", "typing", "msgspec",
                        "engine", "receivers"}


# --- nothing but PayloadError, whatever comes in ---------------------------------------------

KEYS = st.sampled_from([
    "event", "event_type", "run", "job", "task", "run_id", "job_id", "parent_run_id", "task_key",
    "name", "settings", "state", "status", "termination_details", "cluster", "cluster_id",
    "timestamp", "termination_reason", "parameters", "code", "type", "events", "details",
    "reason", "workspace_id", "state_message", "databricks_error_message",
]) | st.text(max_size=6)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["jobs.on_failure", "job.failure", "cluster.terminated", "TERMINATING", ""])
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)
FUZZ = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
ALL_SAMPLES = WEBHOOK_SAMPLES + PAGE_SAMPLES


def check_never_raises_anything_else(value: Any) -> None:
    """Both parsers, on the value and on its JSON bytes: events or a PayloadError, nothing else."""
    encoded = msgspec.json.encode(value)
    for call, argument in (
        (parse, value),
        (parse, encoded),
        (parse_cluster_events_page, value),
    ):
        try:
            events = call(argument)
        except PayloadError:
            continue
        for event in events:
            assert (event.source, event.id, len(event.fingerprint)) == ("databricks", "", 16)
            assert event.dedup_key.startswith(("dbx:", "dbx-cluster:"))


@FUZZ
@given(value=JSON_VALUES)
def test_arbitrary_json_values(value: Any) -> None:
    check_never_raises_anything_else(value)


@FUZZ
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(PayloadError):
        assert only(parse(body)).source == "databricks"


@FUZZ
@given(sample=st.sampled_from(ALL_SAMPLES), data=st.data())
def test_mutated_samples(sample: str, data: st.DataObject) -> None:
    document: Any = load_sample(sample)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        path = data.draw(st.sampled_from(json_paths(document)), label="path")
        if not path:
            document = data.draw(JSON_VALUES, label="root")
            continue
        parent = json_parent(document, path)
        how = data.draw(st.sampled_from(["replace", "delete", "add"]), label="how")
        if how == "replace":
            parent[path[-1]] = data.draw(JSON_VALUES, label="value")
        elif how == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(KEYS, label="key")] = data.draw(JSON_VALUES, label="value")
        else:
            parent.insert(path[-1], data.draw(JSON_VALUES, label="value"))
    check_never_raises_anything_else(document)
