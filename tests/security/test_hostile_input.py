"""Hostile request bodies: each is refused with its own status and a message that says why
(400 malformed, 413 too large, 415 not JSON, 422 not a known schema), never a 5xx; a client
that sends its body byte by byte does not hold back anyone else's request."""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from engine.config import Settings
from engine.store import inbox
from engine.store.db import Database
from receivers.app import create_app
from tests.fixtures.app import api_key_headers, receiver_headers
from tests.fixtures.common import assert_wrapped, load_sample
from tests.reliability.conftest import LiveServer

JSON = {"content-type": "application/json", **api_key_headers()}
BLOB = "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json"
ENDPOINTS = ("azure-monitor", "synapse-monitor", "azure-functions-monitor", "databricks-monitor")
LIMIT = 65536
"""app_settings' body_limit."""


def _malformed(detail: str) -> tuple[int, dict[str, str]]:
    return 400, {"error": "malformed_payload", "detail": detail, "path": "$"}


MISSING_SCHEMA = (422, {"error": "unknown_schema", "path": "$",
                        "detail": "missing schemaId; expected azureMonitorCommonAlertSchema or "
                                  "AzureMonitorMetricAlert"})
DATABRICKS_MISSING = {"error": "unknown_schema", "detail": "missing `event_type`",
                      "path": "$.event_type"}
TOO_DEEP = _malformed("invalid JSON: nested too deeply")

BODIES: dict[str, tuple[bytes, tuple[int, dict[str, str]]]] = {
    "10,000 nested arrays": (b"[" * 10_000 + b"]" * 10_000, TOO_DEEP),
    "10,000 nested objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, TOO_DEEP),
    "10,000 unclosed arrays": (b"[" * 10_000, TOO_DEEP),
    "an escaped NUL": (b'{"a":"\\u0000"}', MISSING_SCHEMA),
    "an empty body": (b"", _malformed("empty body; expected a JSON object")),
    "only whitespace": (b" \r\n\t", _malformed("empty body; expected a JSON object")),
    "a JSON array": (b"[]", (422, {"error": "unknown_schema", "path": "$",
                                   "detail": "expected a JSON object, got an array"})),
    "2 MiB": (b'{"a":"' + b"x" * (2 * 1024 * 1024) + b'"}',
              (413, {"error": "payload_too_large",
                     "detail": f"the body is larger than the limit of {LIMIT} bytes"})),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_a_hostile_body_gets_its_status_and_reason(client: TestClient[Any], name: str,
                                                   db: Database) -> None:
    body, (status, answer) = BODIES[name]
    for endpoint in ENDPOINTS:
        headers = {"content-type": "application/json", **receiver_headers(endpoint)}
        response = client.post(f"/{endpoint}", content=body, headers=headers)
        expected = DATABRICKS_MISSING if (endpoint, answer) == (
            "databricks-monitor", MISSING_SCHEMA[1]) else answer
        assert (endpoint, response.status_code, response.json()) == (endpoint, status, expected)
    assert inbox.list_events(db, limit=10) == []


DECODER_REFUSES: dict[str, tuple[bytes, str]] = {
    "1e400": (b'{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":'
              b'{"alertId":1e400}}}', "invalid JSON: "),
    "a 5,000-digit integer in an object": (b'{"n":' + b"9" * 5000 + b"}", "invalid JSON: "),
    "a 5,000-digit integer alone": (b"9" * 5000, "invalid JSON: "),
    "invalid UTF-8 in a value": (b'{"a":"\xff\xfe"}', "the body is not valid UTF-8: "),
    "invalid UTF-8 in a key": (b'{"\xc3\x28":1}', "the body is not valid UTF-8: "),
    "a raw NUL byte": (b'{"a":"\x00"}', "invalid JSON: "),
}
"""Bodies that msgspec (or the UTF-8 codec) refuses: ours is the status, the keys and the
error kind; the reason after it is the decoder's, in its own words."""


@pytest.mark.parametrize("name", list(DECODER_REFUSES))
def test_a_body_the_decoder_refuses_gets_400_and_which_kind_of_malformed(
        client: TestClient[Any], name: str, db: Database) -> None:
    body, ours = DECODER_REFUSES[name]
    for endpoint in ENDPOINTS:
        headers = {"content-type": "application/json", **receiver_headers(endpoint)}
        response = client.post(f"/{endpoint}", content=body, headers=headers)
        answer = response.json()
        assert (endpoint, response.status_code, {**answer, "detail": ours}) == (
            endpoint, *_malformed(ours))
        assert_wrapped(answer["detail"], ours)
    assert inbox.list_events(db, limit=10) == []


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/x-www-form-urlencoded", b"a=1&b=2"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1"
                                        b"\r\n--x--\r\n"),
    ("application/xml", b"<alert><id>1</id></alert>"),
    ("text/html", b"<html></html>"),
])
def test_a_body_that_is_not_json_is_415(client: TestClient[Any], content_type: str,
                                        body: bytes) -> None:
    response = client.post("/azure-monitor", content=body,
                           headers={**api_key_headers(), "content-type": content_type})
    media = content_type.split(";")[0]
    assert (response.status_code, response.json()) == (
        415, {"error": "unsupported_media_type",
              "detail": f"expected application/json, got {media}"})


def test_json_without_a_content_type_is_read_as_json(client: TestClient[Any]) -> None:
    response = client.post("/azure-monitor", content=json.dumps(load_sample(BLOB)).encode(),
                           headers=api_key_headers())
    assert response.status_code == 202, response.text


def test_an_escaped_nul_inside_a_real_alert_is_stored_as_text(client: TestClient[Any],
                                                               db: Database) -> None:
    payload = copy.deepcopy(load_sample(BLOB))
    payload["data"]["essentials"]["description"] = "before\u0000after"
    response = client.post("/azure-monitor", json=payload, headers=api_key_headers())
    assert response.status_code == 202, response.text
    [stored] = inbox.list_events(db, limit=10)
    assert stored.event.resource == "pl_ingest_sales_daily"


@pytest.fixture
def server(app_settings: Settings, db: Database) -> Iterator[LiveServer]:
    live = LiveServer(create_app(app_settings, db))
    yield live
    live.stop()


def test_a_slow_client_does_not_block_another(server: LiveServer) -> None:
    """A raw socket sends a real alert's body one byte at a time; meanwhile another client's
    health check and webhook are answered, while the slow body is still incomplete."""
    body = json.dumps(load_sample(BLOB)).encode()
    head = (f"POST /azure-monitor HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"x-api-key: {api_key_headers()['x-api-key']}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n").encode()
    others_done = threading.Event()
    sent: list[int] = []
    answer: list[bytes] = []

    def slow() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(head)
            for i in range(len(body)):
                sock.sendall(body[i:i + 1])
                sent.append(i)
                if i < 50 or not others_done.is_set():
                    others_done.wait(0.005)  # drip until the others are answered
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            answer.append(b"".join(chunks))

    dripper = threading.Thread(target=slow)
    dripper.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as other:
            while len(sent) < 10:  # bounded by the dripper's own pace
                assert dripper.is_alive()
                threading.Event().wait(0.01)
            assert other.get("/health").status_code == 200
            fresh = copy.deepcopy(load_sample(BLOB))
            fresh["data"]["essentials"]["alertId"] = "/subscriptions/x/alerts/other-client"
            assert other.post("/azure-monitor", json=fresh,
                              headers=api_key_headers()).status_code == 202
            assert len(sent) < len(body)  # the slow body was still arriving
    finally:
        others_done.set()
        dripper.join(timeout=60)
    assert not dripper.is_alive()
    assert answer[0].startswith(b"HTTP/1.1 202 "), answer[0][:200]


def test_a_chunked_body_past_the_limit_is_413_over_real_http(server: LiveServer) -> None:
    """No content-length to refuse up front: the limit is enforced while reading."""
    def chunks() -> Iterator[bytes]:
        yield b'{"a":"'
        for _ in range(32):
            yield b"x" * 65536
        yield b'"}'

    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.post("/azure-monitor", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json() == {"error": "payload_too_large",
                               "detail": f"the body is larger than the limit of {LIMIT} bytes"}
