"""Every payload the senders' documentation shows, posted where a deployment receives it.

The samples are the documentation's own text (tests/testdata/docs/, one file per JSON block,
named with its article and heading in manifest.json) and the ADF/Synapse alerts built from
the documented metrics and log tables. Each goes through the whole app (auth, intake, store)
and comes back out of the events API; the manifest's ``expect`` is the event an operator
expects, field by field. A second delivery of the same payload is the same event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.fixtures.app import admin_headers, receiver_headers
from tests.fixtures.documented import DOCS, body, entries, manifest, path_of, sample_id

FIELDS = ("source", "kind", "status", "resource", "resource_id", "run_id", "error_code",
          "severity", "message")


def _post(client: TestClient[Any], entry: dict[str, Any]) -> Any:
    endpoint = entry["endpoint"]
    return client.post(f"/{endpoint}", content=json.dumps(body(entry)).encode(),
                       headers={**receiver_headers(endpoint), "content-type": "application/json"})


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_manifest_names_every_file_once() -> None:
    on_disk = {p.resolve() for p in DOCS.rglob("*.json") if p.name != "manifest.json"}
    named = [path_of(e) for e in entries(definitions=True)]
    assert len(named) == len(set(named)), "a file is named twice"
    documented = {p for p in named if p.is_relative_to(DOCS)}
    assert documented == on_disk
    assert all(p.exists() for p in named)
    for entry in entries():
        assert set(entry["expect"]) == {*FIELDS, "occurred_at"}, entry["file"]
        assert entry["article"] and entry["heading"] and entry["endpoint"], entry["file"]
    assert len(entries()) == 83  # 72 documented blocks posted, 11 ADF/Synapse alerts built


@pytest.mark.parametrize("entry", entries(), ids=sample_id)
def test_a_documented_sample_is_accepted_and_normalized(
    client: TestClient[Any], entry: dict[str, Any]
) -> None:
    expect = entry["expect"]
    before = datetime.now(UTC)
    response = _post(client, entry)
    after = datetime.now(UTC)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["duplicate"], answer["status"]) == (False, expect["status"])

    shown = client.get(f"/api/events/{answer['event_id']}", headers=admin_headers()).json()
    assert {field: shown[field] for field in FIELDS} == {field: expect[field] for field in FIELDS}
    # One line in words, never the alert's JSON (issue 15, 7).
    assert "\n" not in shown["message"] and not shown["message"].startswith("{")
    occurred = _when(shown["occurred_at"])
    if expect["occurred_at"] == "receipt":  # no time in the payload: when it was received
        assert before <= occurred <= after
    else:
        assert occurred == _when(expect["occurred_at"])

    again = _post(client, entry)  # Azure Monitor retries a delivery it thinks was lost
    assert again.status_code == 202
    assert again.json() == {**answer, "duplicate": True}


@pytest.mark.parametrize(
    "entry", [e for e in manifest()["samples"] if e["shape"] == "definition"], ids=sample_id
)
def test_a_custom_payload_definition_is_not_refused_either(
    client: TestClient[Any], entry: dict[str, Any]
) -> None:
    """A rule author may well post the template itself while trying the webhook out."""
    response = client.post("/azure-monitor", content=path_of(entry).read_bytes(),
                           headers={**receiver_headers("azure-monitor"),
                                    "content-type": "application/json"})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "firing"
