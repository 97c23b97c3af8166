"""Hostile JSON bodies on ``/api`` (red-team round after issues 14 and 15): the receivers refuse
a body nested 10,000 deep with 400, but the management API decodes its bodies without that
bound, and msgspec's RecursionError escaped as ``500 {"error": "internal"}`` on
``/api/simulate``, ``/api/events/{id}/replay``, ``/api/incidents/{id}/reject`` and
``/api/breakers/{rule}/reset`` (found on a running ``serve``). A client's body is never a 500;
and ``/api/simulate`` must refuse what the receiver would refuse (nesting over 64 levels),
since it says what the server would do with the payload."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.store import inbox
from tests.fixtures.common import ROOT, load_sample
from tests.fixtures.service import ADMIN

BLOB = "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json"
JSON = {**ADMIN, "content-type": "application/json"}
DEEP_ARRAYS = b"[" * 10_000 + b"]" * 10_000
DEEP_REASON = b'{"reason": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
DEEP_PAYLOAD = b'{"source": "adf", "payload": {"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}"


def _routes(event_id: str) -> dict[str, list[bytes]]:
    return {
        "/api/simulate": [DEEP_ARRAYS, DEEP_PAYLOAD],
        f"/api/events/{event_id}/replay": [DEEP_ARRAYS, DEEP_REASON],
        "/api/incidents/inc_unknown/reject": [DEEP_ARRAYS, DEEP_REASON],
        "/api/breakers/some-rule/reset": [DEEP_ARRAYS, DEEP_REASON],
    }


@pytest.mark.parametrize("route", ["simulate", "replay", "reject", "reset"])
def test_a_body_nested_10000_deep_on_api_is_a_400_not_a_500(service_rig: Any,
                                                            route: str) -> None:
    rig = service_rig("name: none\nrules: []\n")
    event_id = rig.post("azure-monitor", load_sample(BLOB))["event_id"]
    before = inbox.get(rig.db, event_id)
    path = next(p for p in _routes(event_id) if route in p)
    for body in _routes(event_id)[path]:
        answer = rig.client.post(path, content=body, headers=JSON)
        assert answer.status_code == 400, (path, body[:20], answer.status_code, answer.text)
        assert answer.json()["error"] == "bad_request"
    after = inbox.get(rig.db, event_id)
    assert (after.state, after.attempts) == (before.state, before.attempts)


def test_simulate_refuses_a_payload_nested_deeper_than_the_receivers_take(
    service_rig: Any,
) -> None:
    rig = service_rig("name: none\nrules: []\n")
    payload = copy.deepcopy(load_sample(BLOB))
    deep: Any = "x"
    for _ in range(100):
        deep = {"a": deep}
    payload["data"]["customProperties"] = deep
    received = rig.client.post("/azure-monitor", json=payload,
                               headers={"x-api-key": "rk-svc-31c9a7"})
    assert (received.status_code, received.json()["detail"]) == (
        422, "JSON nested deeper than 64 levels")
    simulated = rig.client.post("/api/simulate", json={"source": "adf", "payload": payload},
                                headers=ADMIN)
    assert (simulated.status_code, simulated.json().get("detail")) == (
        422, "JSON nested deeper than 64 levels")


LONE = ("invalid \\u escape: \\ud800 is a lone UTF-16 surrogate (a high surrogate "
        "\\ud800-\\udbff must be followed by a low one, \\udc00-\\udfff), not a character")


@pytest.mark.parametrize("route", ["simulate", "replay", "reject", "reset"])
def test_a_lone_surrogate_is_named_not_called_truncated(service_rig: Any, route: str) -> None:
    rig = service_rig("name: none\nrules: []\n")
    event_id = rig.post("azure-monitor", load_sample(BLOB))["event_id"]
    path = next(p for p in _routes(event_id) if route in p)
    answer = rig.client.post(path, content=b'{"reason": "\\ud800"}', headers=JSON)
    assert (answer.status_code, answer.json()) == (
        400, {"error": "bad_request", "detail": f"body: invalid JSON: {LONE}"})
    truncated = rig.client.post(path, content=b'{"reason": "', headers=JSON)
    assert (truncated.status_code, truncated.json()) == (
        400, {"error": "bad_request", "detail": "body: invalid JSON: Input data was truncated"})


def test_a_receiver_names_a_lone_surrogate_too(service_rig: Any) -> None:
    rig = service_rig("name: none\nrules: []\n")
    body = b'{"schemaId": "azureMonitorCommonAlertSchema", "data": "\\udbff"}'
    answer = rig.client.post("/azure-monitor", content=body,
                             headers={"x-api-key": "rk-svc-31c9a7",
                                      "content-type": "application/json"})
    assert (answer.status_code, answer.json()["detail"]) == (
        400, "invalid JSON: " + LONE.replace("ud800 is", "udbff is"))


def _cluster_events_page(count: int) -> dict[str, Any]:
    """A page of clusters/events whose ``count`` TERMINATING events (of as many clusters) each
    become an event, as the poller makes them."""
    page = load_sample("cloud-api/databricks-cluster-events-instance-unreachable.json")
    [terminating] = [e for e in page["events"] if e["type"] == "TERMINATING"]
    events = []
    for n in range(count):
        event = copy.deepcopy(terminating)
        event.update(cluster_id=f"0601-182128-{n:08d}", timestamp=1741963104552 + n)
        events.append(event)
    return {"events": events, "total_count": count}


def test_simulate_explains_the_first_100_events_of_a_page_and_counts_the_rest(
        service_rig: Any) -> None:
    rig = service_rig(playbooks_dir=ROOT / "playbooks")
    answer = rig.client.post("/api/simulate", headers=ADMIN, json={
        "source": "databricks", "payload": _cluster_events_page(300)})
    assert answer.status_code == 200
    body = answer.json()
    assert (len(body["events"]), body["left_out"]) == (100, 200)
    assert [e["event"]["resource_id"] for e in body["events"]] == [
        f"0601-182128-{n:08d}" for n in range(100)]
    small = rig.client.post("/api/simulate", headers=ADMIN, json={
        "source": "databricks", "payload": _cluster_events_page(3)}).json()
    assert (len(small["events"]), small["left_out"]) == (3, 0)
