"""/api/silences over a running engine: create (the author is the caller), list, expire
early, and the remediation a silence holds; every bad input a 400 naming it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine import silences
from engine.events import utcnow
from engine.rules.silences import parse_matcher
from engine.store import audit as audit_store
from engine.store.db import Database
from receivers import timeline
from tests.fixtures.app import basic_header
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN, ADMIN_KEY, RECEIVER

RULE = """
name: t
rules:
  - id: rerun-blob
    match: {source: adf, error_code: UserErrorSourceBlobNotExists}
    actions:
      - action: noop
        with: {note: would rerun}
"""
SAMPLE = "seed/adf-action-group-alert.json"
ALICE = basic_header("alice", ADMIN_KEY)


def _create(rig: Any, **body: Any) -> Any:
    return rig.client.post("/api/silences", headers=ALICE, json={
        "matchers": ["resource=~Copy_.*"], "comment": "ADF upgrade", "duration": "2h", **body})


def test_a_silence_made_by_api_holds_remediation_and_is_audited(service_rig: Any) -> None:
    rig = service_rig(RULE, live=True)
    response = _create(rig)
    assert response.status_code == 201
    made = response.json()
    assert {k: made[k] for k in ("state", "author", "comment", "text", "expired_by")} == {
        "state": "active", "author": "alice", "comment": "ADF upgrade",
        "text": "resource=~Copy_.*", "expired_by": None}
    assert made["matchers"] == [{"name": "resource", "value": "Copy_.*", "op": "=~"}]
    rig.post("azure-monitor", load_sample(SAMPLE))
    assert rig.run() == 1
    [incident] = rig.incidents()
    assert incident.state == "ignored"
    assert incident.reason.startswith(f"silenced by {made['id']} until {made['ends_at']} "
                                      "(alice: ADF upgrade)")
    listed = rig.client.get("/api/silences", headers=ADMIN).json()["items"]
    assert [s["id"] for s in listed] == [made["id"]]
    [record] = audit_store.list_records(rig.db, kind="silence")
    assert (record.actor, record.data["decision"], record.data["silence"]["id"]) == (
        "alice", "created", made["id"])


def test_expire_early_then_remediation_resumes(service_rig: Any) -> None:
    rig = service_rig(RULE, live=True)
    made = _create(rig).json()
    gone = rig.client.delete(f"/api/silences/{made['id']}", headers=basic_header("bob",
                                                                                  ADMIN_KEY))
    assert gone.status_code == 200
    assert (gone.json()["state"], gone.json()["expired_by"]) == ("expired", "bob")
    assert rig.client.get("/api/silences", headers=ADMIN).json()["items"] == []
    expired = rig.client.get("/api/silences?state=expired", headers=ADMIN).json()["items"]
    assert [s["id"] for s in expired] == [made["id"]]
    again = rig.client.delete(f"/api/silences/{made['id']}", headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["detail"].startswith(f"silence {made['id']} already ended at ")
    assert rig.client.delete("/api/silences/nope", headers=ADMIN).json() == {
        "error": "not_found", "detail": "unknown silence nope"}
    rig.post("azure-monitor", load_sample(SAMPLE))
    rig.run()
    [incident] = rig.incidents()
    assert incident.state != "ignored"
    kinds = [(r.actor, r.data["decision"])
             for r in audit_store.list_records(rig.db, kind="silence")]
    assert kinds == [("alice", "created"), ("bob", "expired")]


def test_a_silence_ends_by_itself(service_rig: Any) -> None:
    rig = service_rig(RULE, live=True)
    _create(rig, duration="30m")
    rig.clock.advance(minutes=31)
    assert rig.client.get("/api/silences", headers=ADMIN).json()["items"] == []
    rig.post("azure-monitor", load_sample(SAMPLE))
    rig.run()
    [incident] = rig.incidents()
    assert incident.state != "ignored"


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"matchers": ["colour=red"]}, 400, "matcher 'colour': unknown field; expected one "
     "of source, kind, target, resource, resource_id, error_code, failure_type, run_id or "
     "attributes.<path>"),
    ({"matchers": ["resource"]}, 400, "matcher 'resource': expected name=value, "
     "name!=value, name=~regex or name!~regex"),
    ({"matchers": ["resource!=x"]}, 400, "every matcher holds for an empty value: the "
     "silence would hold every event; name at least one field's value"),
    ({"matchers": ["resource=~(a"]}, 400, "matcher resource=~: "),
    ({"duration": None}, 400, "give exactly one of duration (e.g. 2h) and ends_at (an ISO "
     "time)"),
    ({"duration": "soon"}, 400, "duration: invalid duration 'soon'"),
    ({"duration": "91d"}, 400, "duration: a silence ends within 90 days"),
    ({"duration": None, "ends_at": "2020-01-01T00:00:00Z"}, 400, "ends_at: "
     "2020-01-01T00:00:00Z is not after now"),
    ({"duration": None, "ends_at": "tomorrow"}, 400, "ends_at: expected an ISO time, got "
     "'tomorrow'"),
    ({"comment": " "}, 400, "comment: say why (the on-call engineer reads it)"),
    ({"comment": "x" * 1001}, 400, "body: Expected `str` of length <= 1000 - at `$.comment`"),
    ({"matchers": [f"source=adf{i}" for i in range(17)]}, 400, "body: Expected `array` of "
     "length <= 16 - at `$.matchers`"),
    ({"colour": "red"}, 400, "body: Object contains unknown field `colour`"),
])
def test_bad_silences_are_400_naming_what_is_wrong(service_rig: Any, body: dict[str, Any],
                                                    status: int, detail: str) -> None:
    rig = service_rig(RULE)
    response = _create(rig, **body)
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(detail), response.json()
    assert rig.client.get("/api/silences", headers=ADMIN).json()["items"] == []
    assert audit_store.list_records(rig.db, kind="silence") == []


def test_silences_are_for_admins_only(service_rig: Any) -> None:
    rig = service_rig(RULE)
    assert rig.client.get("/api/silences", headers=RECEIVER).status_code == 401
    assert rig.client.post("/api/silences", headers=RECEIVER, json={}).status_code == 401
    assert rig.client.delete("/api/silences/x", headers=RECEIVER).status_code == 401
    assert rig.client.get("/api/silences?state=gone", headers=ADMIN).json() == {
        "error": "bad_request", "detail": "state: expected active or expired; got 'gone'"}


def test_the_audit_page_tells_a_silence_in_a_sentence(db: Database) -> None:
    now = utcnow()
    made = silences.create(db, [parse_matcher("source=adf")], author="alice",
                           comment="upgrade", now=now, ends=now + timedelta(hours=1))
    silences.expire(db, made["id"], "bob", now=now + timedelta(minutes=5))
    created, expired = audit_store.list_records(db, kind="silence")
    assert timeline.sentence(created) == (
        f"Silence {made['id']} (source=adf) created by alice, from {made['starts_at']} until "
        f"{made['ends_at']}: upgrade")
    assert timeline.sentence(expired) == f"Silence {made['id']} (source=adf) expired early by bob"
