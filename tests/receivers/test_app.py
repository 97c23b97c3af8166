"""The HTTP service end to end in-process: every sample through its receiver and back out of
the events API, idempotency, exact error answers, a database that really fails, and secrets
that never reach the stored payload, the API or the log."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from litestar.testing import TestClient

from engine.config import Secret, Settings
from engine.logs import configure_logging
from engine.store.db import Database
from receivers.app import create_app
from receivers.intake import normalize
from tests.fixtures.app import (
    ADMIN_KEY,
    ENDPOINT_OF_SAMPLE,
    RECEIVER_KEY,
    admin_headers,
    api_key_headers,
    receiver_headers,
)
from tests.fixtures.common import assert_wrapped, load_sample

# (source, kind, status, resource, run_id, error_code) as docs/SENDERS.md defines them.
EXPECTED = {
    "azure-monitor/azmon-common-activitylog.json":
        ("adf", "alert", "firing", "tr_daily_0200", "", ""),
    "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json":
        ("adf", "activity_run", "firing", "pl_ingest_sales_daily",
         "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11", None),
    "azure-monitor/azmon-common-logv2-appinsights-exception.json":
        ("functions", "function", "firing", "func-orders-prod", "",
         "Microsoft.Data.SqlClient.SqlException"),
    "azure-monitor/azmon-common-metric-adf-pipelinefailed.json":
        ("adf", "pipeline_run", "firing", "pl_ingest_sales_daily", "", ""),
    "azure-monitor/azmon-common-metric-synapse-failed.json":
        ("synapse", "pipeline_run", "firing", "pl_load_dw_sales", "", ""),
    "azure-monitor/azmon-legacy-metric-adf.json":
        ("adf", "pipeline_run", "firing", "pl_ingest_sales_daily", "", ""),
    "databricks/databricks-job-on-failure.json":
        ("databricks", "job_run", "firing", "sales_bronze_to_silver", "447120398", ""),
    "databricks/databricks-task-on-failure.json":
        ("databricks", "task_run", "firing", "sales_bronze_to_silver", "447120411", ""),
    "seed/adf-action-group-alert.json":
        ("adf", "activity_run", "firing", "Copy_Data_Pipeline", "abc123-def456-789",
         "UserErrorSourceBlobNotExists"),
    "seed/adf-test-alert.json":
        ("adf", "activity_run", "firing", "Test_ETL_Pipeline", "test-run-12345",
         "UserErrorSourceBlobNotExists"),
    "seed/databricks-cluster-failed-to-start.json":
        ("databricks", "cluster", "firing", "ML Training Cluster", "", "INSTANCE_UNREACHABLE"),
    "seed/databricks-cluster-terminated.json":
        ("databricks", "cluster", "firing", "Production ETL Cluster", "", "INACTIVITY"),
    "seed/databricks-job-failure.json":
        ("databricks", "job_run", "firing", "ETL_Production_Pipeline", "204354054874177", ""),
}
FIELDS = ("source", "kind", "status", "resource", "run_id", "error_code")


def post_sample(client: TestClient[Any], sample: str, payload: Any = None) -> Any:
    endpoint = ENDPOINT_OF_SAMPLE[sample]
    body = load_sample(sample) if payload is None else payload
    return client.post(f"/{endpoint}", json=body, headers=receiver_headers(endpoint))


def get_event(client: TestClient[Any], event_id: str) -> dict[str, Any]:
    response = client.get(f"/api/events/{event_id}", headers=admin_headers())
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("sample", sorted(ENDPOINT_OF_SAMPLE))
def test_every_sample_round_trips_through_its_receiver(
    client: TestClient[Any], sample: str
) -> None:
    response = post_sample(client, sample)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["duplicate"] is False
    assert answer["status"] == "firing"
    assert answer["event_id"].startswith("evt_")

    shown = get_event(client, answer["event_id"])
    endpoint = ENDPOINT_OF_SAMPLE[sample]
    expected = EXPECTED[sample]
    for field, value in zip(FIELDS, expected, strict=True):
        if value is not None:
            assert shown[field] == value, field
    # The rest exactly as the parser made it (the parser tests check those field by field).
    parsed = normalize(endpoint, load_sample(sample))[0]
    assert shown["error_code"] == parsed.error_code
    assert shown["message"] == parsed.message
    assert shown["dedup_key"] == parsed.dedup_key
    assert shown["fingerprint"] == parsed.fingerprint
    assert shown["id"] == answer["event_id"]
    assert shown["endpoint"] == endpoint
    assert shown["state"] == "pending"
    assert (shown["attempts"], shown["duplicates"]) == (0, 0)
    assert shown["raw"] == load_sample(sample)  # no secrets in these samples: kept as sent
    assert "received" not in shown  # not enriched yet


def test_the_same_payload_twice_is_one_event(client: TestClient[Any], db: Database) -> None:
    first = post_sample(client, "seed/adf-action-group-alert.json").json()
    second = post_sample(client, "seed/adf-action-group-alert.json")
    assert second.status_code == 202
    assert second.json() == {"event_id": first["event_id"], "duplicate": True, "status": "firing"}
    listed = client.get("/api/events", headers=admin_headers()).json()
    assert [item["id"] for item in listed["items"]] == [first["event_id"]]
    assert get_event(client, first["event_id"])["duplicates"] == 1


def test_a_resolved_alert_is_a_separate_event(client: TestClient[Any]) -> None:
    sample = "azure-monitor/azmon-common-metric-adf-pipelinefailed.json"
    fired = post_sample(client, sample).json()
    payload = load_sample(sample)
    payload["data"]["essentials"]["monitorCondition"] = "Resolved"
    payload["data"]["essentials"]["resolvedDateTime"] = "2025-03-14T03:20:00Z"
    resolved = post_sample(client, sample, payload)
    assert resolved.status_code == 202
    body = resolved.json()
    assert body["duplicate"] is False
    assert body["status"] == "resolved"
    assert body["event_id"] != fired["event_id"]
    assert get_event(client, body["event_id"])["status"] == "resolved"
    assert get_event(client, fired["event_id"])["status"] == "firing"


def test_unknown_event_is_404(client: TestClient[Any]) -> None:
    response = client.get("/api/events/evt_nope", headers=admin_headers())
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}


def _post_raw(client: TestClient[Any], content: bytes, content_type: str = "application/json",
              path: str = "/azure-monitor") -> Any:
    headers = {**api_key_headers(), "content-type": content_type}
    return client.post(path, content=content, headers=headers)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "empty body; expected a JSON object"),
    ],
)
def test_malformed_json_is_400(client: TestClient[Any], body: bytes, detail: str) -> None:
    response = _post_raw(client, body)
    assert response.status_code == 400
    assert response.json() == {"error": "malformed_payload", "detail": detail, "path": "$"}


@pytest.mark.parametrize(
    ("body", "ours"),
    [
        (b'{"schemaId": ', "invalid JSON: "),
    ],
)
def test_json_that_msgspec_refuses_is_400_with_our_prefix(
    client: TestClient[Any], body: bytes, ours: str
) -> None:
    response = _post_raw(client, body)
    assert response.status_code == 400
    answer = response.json()
    assert (sorted(answer), answer["error"], answer["path"]) == (
        ["detail", "error", "path"], "malformed_payload", "$")
    assert_wrapped(answer["detail"], ours)  # then msgspec's reason, in its own words


def test_json_of_no_known_shape_is_422(client: TestClient[Any]) -> None:
    response = _post_raw(client, b"[1, 2]")
    assert response.status_code == 422
    assert response.json() == {
        "error": "unknown_schema", "detail": "expected a JSON object, got an array", "path": "$"
    }
    response = _post_raw(client, b'{"hello": "world"}', path="/databricks-monitor")
    assert response.status_code == 401  # auth first: nothing is read before it
    response = _post_raw(client, b"[" * 100 + b"]" * 100)
    assert response.status_code == 422
    assert response.json()["detail"] == "expected a JSON object, got an array"
    response = _post_raw(client, b'{"a":' * 100 + b"1" + b"}" * 100)
    assert response.status_code == 422
    assert response.json()["detail"] == "JSON nested deeper than 64 levels"


def test_a_parser_refusal_is_422_with_its_path(client: TestClient[Any]) -> None:
    response = _post_raw(client, b'{"hello": "world"}')
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unknown_schema"
    assert set(body) == {"error", "detail", "path"}
    assert body["detail"] and body["path"].startswith("$")


def test_oversized_bodies_are_413(client: TestClient[Any], app_settings: Settings) -> None:
    big = b'{"x": "' + b"a" * app_settings.body_limit + b'"}'
    expected = {"error": "payload_too_large",
                "detail": f"the body is larger than the limit of {app_settings.body_limit} bytes"}
    response = _post_raw(client, big)
    assert response.status_code == 413
    assert response.json() == expected

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(app_settings.body_limit // 1024 + 2):
            yield b" " * 1024

    response = client.post("/azure-monitor", content=chunks(),
                           headers={**api_key_headers(), "content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == expected


def test_content_types(client: TestClient[Any]) -> None:
    body = json.dumps(load_sample("seed/adf-test-alert.json")).encode()
    assert _post_raw(client, body, "application/json; charset=utf-8").status_code == 202
    assert _post_raw(client, body, "text/plain").json()["duplicate"] is True
    response = _post_raw(client, body, "application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json() == {
        "error": "unsupported_media_type",
        "detail": "expected application/json, got application/x-www-form-urlencoded",
    }


def test_a_locked_database_answers_503_and_stores_nothing(
    client: TestClient[Any], db: Database
) -> None:
    db.utils.execute("PRAGMA busy_timeout = 50")
    locker = sqlite3.connect(db.path, isolation_level=None, timeout=0.05)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        response = post_sample(client, "seed/adf-test-alert.json")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "error": "storage_unavailable", "detail": "the event could not be stored; retry later"
    }
    assert client.get("/api/events", headers=admin_headers()).json() == {"items": [], "next": None}
    # The sender's retry goes through once the database is back.
    assert post_sample(client, "seed/adf-test-alert.json").status_code == 202


def test_listing_filters_and_pages(client: TestClient[Any]) -> None:
    ids = {}
    for sample in ENDPOINT_OF_SAMPLE:
        ids[sample] = post_sample(client, sample).json()["event_id"]

    def listing(**params: Any) -> Any:
        return client.get("/api/events", params=params, headers=admin_headers())

    everything = listing(limit=500).json()
    assert everything["next"] is None
    assert [i["id"] for i in everything["items"]] == sorted(ids.values(), reverse=True)
    assert "raw" not in everything["items"][0]

    databricks = listing(source="databricks").json()["items"]
    assert sorted(i["id"] for i in databricks) == sorted(
        v for k, v in ids.items() if EXPECTED[k][0] == "databricks"
    )
    named = listing(resource="pl_ingest_sales_daily").json()["items"]
    assert len(named) == 3
    assert listing(status="resolved").json()["items"] == []
    assert len(listing(since="1h").json()["items"]) == len(ids)
    assert listing(since="2999-01-01T00:00:00").json()["items"] == []

    seen, cursor = [], None
    while True:
        page = listing(limit=5, **({"before": cursor} if cursor else {})).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in everything["items"]]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"limit": "0"}, "limit: expected a whole number from 1 to 500, got '0'"),
        ({"limit": "501"}, "limit: expected a whole number from 1 to 500, got '501'"),
        ({"limit": "ten"}, "limit: expected a whole number from 1 to 500, got 'ten'"),
        ({"source": "aws"},
         "source: expected one of adf, synapse, functions, databricks, generic; got 'aws'"),
        ({"status": "open"}, "status: expected one of firing, resolved, info; got 'open'"),
        ({"since": "yesterday"},
         "since: expected an ISO time or a duration such as 15m, 2h, 1d; got 'yesterday'"),
        ({"since": "999999999w"}, "since: duration '999999999w' is too long"),
        ({"state": "failed"},
         "state: expected one of pending, processing, done, parked; got 'failed'"),
        ({"sourc": "adf"},
         "unknown filter 'sourc'; expected source, status, resource, state, since, limit, "
         "before"),
    ],
)
def test_bad_filters_are_400(client: TestClient[Any], params: dict, detail: str) -> None:
    response = client.get("/api/events", params=params, headers=admin_headers())
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "detail": detail}


def test_secrets_never_reach_storage_the_api_or_the_log(
    client: TestClient[Any], db: Database
) -> None:
    log = io.StringIO()
    configure_logging("info", "json", stream=log)
    try:
        payload = load_sample("seed/adf-test-alert.json")
        password = "Hunter2-S3cret!"
        payload["data"]["alertContext"]["properties"]["password"] = password
        payload["data"]["alertContext"]["properties"]["ConnectionString"] = (
            f"Server=tcp:x.database.windows.net;Password={password};"
        )
        response = client.post("/azure-monitor", params={"api_key": RECEIVER_KEY}, json=payload)
        assert response.status_code == 202
        event_id = response.json()["event_id"]
        shown = client.get(f"/api/events/{event_id}", headers=admin_headers()).text
        listed = client.get("/api/events", headers=admin_headers()).text
        stored = json.dumps([list(r) for r in db.query("SELECT * FROM events")])
    finally:
        structlog.reset_defaults()
        configure_logging_off()
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    intake = [line for line in lines if line["event"] == "intake"]
    assert len(intake) == 1
    assert intake[0]["event_id"] == event_id
    assert intake[0]["endpoint"] == "azure-monitor"
    assert (intake[0]["duplicate"], intake[0]["status"]) == (False, "firing")
    for text in (shown, listed, stored, log.getvalue()):
        assert password not in text
        assert RECEIVER_KEY not in text
        assert ADMIN_KEY not in text
    assert json.loads(shown)["raw"]["data"]["alertContext"]["properties"]["password"] == "***"


def configure_logging_off() -> None:
    """Put the standard library's root logger back as pytest expects it."""
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and not type(handler).__name__.startswith(
            "LogCapture"
        ):
            root.removeHandler(handler)


def test_the_log_redacts_secrets_in_any_value() -> None:
    log = io.StringIO()
    configure_logging("info", "json", stream=log)
    try:
        structlog.get_logger("t").info(
            "calling", url="https://x.blob.core.windows.net/c?sv=1&sig=abcDEF123", api_key="k-123",
            note="Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        )
        import logging

        logging.getLogger("uvicorn.access").info(
            '127.0.0.1 - "POST /azure-monitor?api_key=%s HTTP/1.1" 202', "k-123"
        )
    finally:
        structlog.reset_defaults()
        configure_logging_off()
    first, second = (json.loads(line) for line in log.getvalue().splitlines())
    assert first["url"] == "https://x.blob.core.windows.net/c?sv=1&sig=***"
    assert first["api_key"] == "***"
    assert first["note"] == "Authorization: Bearer ***"
    assert second["event"] == '127.0.0.1 - "POST /azure-monitor?api_key=*** HTTP/1.1" 202'
    assert "k-123" not in log.getvalue()


def test_admin_keys_in_settings_do_not_print(app_settings: Settings) -> None:
    assert ADMIN_KEY not in repr(app_settings)
    assert isinstance(app_settings.admin_keys[0], Secret)


def test_an_app_without_a_db_opens_and_closes_its_own(tmp_path) -> None:
    settings = Settings(db=str(tmp_path / "own.db"), api_keys=(Secret(RECEIVER_KEY),),
                        admin_keys=(Secret(ADMIN_KEY),))
    with TestClient(create_app(settings)) as client:
        receipt = post_sample(client, "seed/adf-test-alert.json").json()
        assert client.get("/ready").json() == {"status": "ready"}
    reopened = Database(tmp_path / "own.db")
    try:
        assert [r["id"] for r in reopened.query("SELECT id FROM events")] == [receipt["event_id"]]
    finally:
        reopened.close()


def test_a_payload_of_several_events_answers_each_receipt(db: Database) -> None:
    from receivers import intake

    events = [
        *normalize("azure-monitor", load_sample("seed/adf-test-alert.json")),
        *normalize("databricks-monitor", load_sample("seed/databricks-job-failure.json")),
    ]
    receipts = intake.store(db, "azure-monitor", events, {"several": True})
    answer = intake.answer(receipts)
    assert answer == {
        "event_id": receipts[0].event_id,
        "duplicate": False,
        "status": "firing",
        "events": [
            {"event_id": receipts[0].event_id, "duplicate": False, "status": "firing"},
            {"event_id": receipts[1].event_id, "duplicate": False, "status": "firing"},
        ],
    }
    again = intake.answer(intake.store(db, "azure-monitor", events, {"several": True}))
    assert [r["duplicate"] for r in again["events"]] == [True, True]
    assert intake.answer([]) == {
        "event_id": None, "duplicate": False, "status": "ignored", "events": []
    }


def test_ready_is_503_when_the_database_does_not_answer(
    app_settings: Settings, tmp_path
) -> None:
    db = Database(tmp_path / "gone.db")
    with TestClient(create_app(app_settings, db)) as client:
        assert client.get("/ready").status_code == 200
        db.close()
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable"}
        assert response.headers["retry-after"] == "5"
        assert client.get("/health").json() == {"status": "ok"}
