"""The management API over a running engine: incidents with their timeline, approve/reject,
pause/resume, status, playbooks and reload, simulate."""

from __future__ import annotations

from typing import Any

from engine.store import audit as audit_store
from receivers.simulate import simulate_payload
from tests.fixtures.common import assert_wrapped, load_sample
from tests.fixtures.service import ADMIN, APPROVAL, RECEIVER, SAMPLE


def _waiting(service_rig: Any) -> tuple[Any, str, str]:
    rig = service_rig(APPROVAL, live=True)
    receipt = rig.post("azure-monitor", load_sample(SAMPLE))
    assert rig.run() == 1
    [incident] = rig.incidents()
    assert incident.state == "waiting_approval"
    return rig, incident.id, receipt["event_id"]


def test_incident_detail_has_timeline_events_and_actions(service_rig: Any) -> None:
    rig, incident_id, event_id = _waiting(service_rig)
    body = rig.client.get(f"/api/incidents/{incident_id}", headers=ADMIN).json()
    assert (body["id"], body["state"], body["rule_id"], body["resource"]) == (
        incident_id, "waiting_approval", "approve-blob", "Copy_Data_Pipeline")
    assert [e["id"] for e in body["events"]] == [event_id]
    assert [(a["action"], a["state"], a["params"]) for a in body["actions"]] == [
        ("noop", "waiting_approval", {"note": "waited for a person"})]
    kinds = [r["kind"] for r in body["timeline"]]
    assert kinds == rig.audit_kinds(incident_id)
    assert kinds[-1] == "action_planned"
    assert "incident" in kinds and kinds.count("guard") == 7
    assert body["event"]["error_code"] == "UserErrorSourceBlobNotExists"
    assert rig.client.get("/api/incidents/nope", headers=ADMIN).status_code == 404
    assert rig.client.get(f"/api/incidents/{incident_id}", headers=RECEIVER).status_code == 401


def test_approve_runs_the_actions_and_a_second_approve_is_a_conflict(service_rig: Any) -> None:
    rig, incident_id, _ = _waiting(service_rig)
    answer = rig.client.post(f"/api/incidents/{incident_id}/approve", headers=ADMIN)
    assert (answer.status_code, answer.json()) == (
        200, {"id": incident_id, "decision": "approved", "who": "admin"})
    again = rig.client.post(f"/api/incidents/{incident_id}/approve", headers=ADMIN)
    assert (again.status_code, again.json()) == (409, {
        "error": "conflict",
        "detail": f"incident {incident_id} is remediating, not waiting_approval"})
    unknown = rig.client.post("/api/incidents/inc-x/reject", headers=ADMIN)
    assert (unknown.status_code, unknown.json()) == (
        404, {"error": "not_found", "detail": "unknown incident inc-x"})
    rig.tick()
    [incident] = rig.incidents()
    assert (incident.state, incident.reason) == (
        "resolved", "actions succeeded; nothing to verify")


def test_reject_cancels(service_rig: Any) -> None:
    rig, incident_id, _ = _waiting(service_rig)
    answer = rig.client.post(f"/api/incidents/{incident_id}/reject", headers=ADMIN)
    assert answer.json()["decision"] == "rejected"
    body = rig.client.get(f"/api/incidents/{incident_id}", headers=ADMIN).json()
    assert (body["state"], body["reason"]) == ("ignored", "rejected by admin")
    assert [a["state"] for a in body["actions"]] == ["cancelled"]


def test_reject_takes_a_reason_and_refuses_a_body_of_another_shape(service_rig: Any) -> None:
    rig, incident_id, _ = _waiting(service_rig)
    where = f"Validation failed for POST /api/incidents/{incident_id}/reject"
    # ours: the status, the keys, the request and which key failed; then msgspec's reason
    for body, key, mentions in (({"reason": 5}, "reason", ("str", "int")),
                                ({"why": "x"}, "data", ("why",)),
                                ([1], "data", ("object", "array"))):
        refused = rig.client.post(f"/api/incidents/{incident_id}/reject", json=body,
                                  headers=ADMIN)
        answer = refused.json()
        assert (refused.status_code, sorted(answer), answer["error"]) == (
            400, ["detail", "error"], "bad_request")
        assert_wrapped(answer["detail"], f"{where}: {key}: ", *mentions)
    answer = rig.client.post(f"/api/incidents/{incident_id}/reject",
                             json={"reason": "planned outage"}, headers=ADMIN)
    assert answer.json()["decision"] == "rejected"
    body = rig.client.get(f"/api/incidents/{incident_id}", headers=ADMIN).json()
    assert (body["state"], body["reason"]) == ("ignored", "rejected by admin: planned outage")


def test_list_filters_and_pages(service_rig: Any) -> None:
    rig, first, _ = _waiting(service_rig)
    page = rig.client.get("/api/incidents", params={"limit": "1"}, headers=ADMIN).json()
    assert [i["id"] for i in page["items"]] == [first] and page["next"] is None
    for query, ids in (({"state": "waiting_approval"}, [first]), ({"state": "resolved"}, []),
                       ({"source": "adf"}, [first]), ({"source": "databricks"}, []),
                       ({"resource": "Copy_Data_Pipeline"}, [first]), ({"since": "1h"}, [])):
        got = rig.client.get("/api/incidents", params=query, headers=ADMIN).json()
        assert [i["id"] for i in got["items"]] == ids, query
    bad = rig.client.get("/api/incidents", params={"state": "odd"}, headers=ADMIN)
    assert (bad.status_code, bad.json()["detail"]) == (400, (
        "state: expected one of open, remediating, waiting_approval, verifying, resolved, "
        "escalated, ignored; got 'odd'"))
    unknown = rig.client.get("/api/incidents", params={"colour": "x"}, headers=ADMIN)
    assert unknown.json()["detail"] == (
        "unknown filter 'colour'; expected state, source, resource, since, limit, before")


def test_pause_resume_and_status(service_rig: Any) -> None:
    rig = service_rig(APPROVAL, live=True)
    status = rig.client.get("/api/status", headers=ADMIN).json()
    assert status == {"mode": "LIVE", "live": True, "paused": False, "paused_by": "",
                      "queue_depth": 0, "playbooks_generation": 1, "rules": 1}
    rig.post("azure-monitor", load_sample(SAMPLE))
    assert rig.client.post("/api/pause", headers=ADMIN).json() == {"paused": True,
                                                                    "who": "admin"}
    status = rig.client.get("/api/status", headers=ADMIN).json()
    assert (status["mode"], status["paused_by"], status["queue_depth"]) == ("PAUSED", "admin", 1)
    assert rig.client.post("/api/resume", headers=ADMIN).json()["paused"] is False
    assert rig.client.get("/api/status", headers=ADMIN).json()["mode"] == "LIVE"


def test_reload_refuses_a_broken_set_and_keeps_the_old_one(service_rig: Any) -> None:
    rig = service_rig(APPROVAL)
    listed = rig.client.get("/api/playbooks", headers=ADMIN).json()
    assert listed["generation"] == 1
    assert [r["id"] for r in listed["rules"]] == ["approve-blob"]
    (rig.playbooks / "rules.yaml").write_text("name: t\nrules:\n  - id: x\n    colour: red\n")
    refused = rig.client.post("/api/playbooks/reload", headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["generation"] == 1
    assert refused.json()["problems"] and all(
        p.startswith(str(rig.playbooks / "rules.yaml") + ":") for p in refused.json()["problems"])
    assert rig.client.get("/api/status", headers=ADMIN).json()["playbooks_generation"] == 1
    (rig.playbooks / "rules.yaml").write_text(APPROVAL.replace("approve-blob", "renamed"))
    loaded = rig.client.post("/api/playbooks/reload", headers=ADMIN)
    assert (loaded.status_code, loaded.json()) == (200, {"generation": 2, "rules": 1})
    assert [r["id"] for r in rig.client.get("/api/playbooks", headers=ADMIN).json()["rules"]
            ] == ["renamed"]


def test_simulate_answers_what_the_cli_prints(service_rig: Any) -> None:
    rig = service_rig(APPROVAL)
    payload = load_sample(SAMPLE)
    answer = rig.client.post("/api/simulate", json={"source": "adf", "payload": payload},
                             headers=ADMIN)
    assert answer.status_code == 200
    body = answer.json()
    import json as _json

    expected = _json.loads(_json.dumps(simulate_payload(
        rig.service.playbooks.current, "adf", _json.dumps(payload).encode()), default=str))
    assert body == expected
    assert body["events"][0]["matched"] == ["approve-blob"]
    junk = rig.client.post("/api/simulate", json={"source": "adf", "payload": {"a": 1}},
                           headers=ADMIN)
    assert junk.status_code == 422
    wrong = rig.client.post("/api/simulate", json={"source": "x", "payload": {}}, headers=ADMIN)
    assert (wrong.status_code, wrong.json()["detail"]) == (
        400, "source: expected one of adf, synapse, functions, databricks; got 'x'")


def test_the_timeline_and_events_of_a_big_incident_come_in_pages(service_rig: Any) -> None:
    rig, incident_id, first = _waiting(service_rig)
    alert = load_sample(SAMPLE)
    for n in range(300):  # the same failure, fired again 300 times: each event joins
        alert["data"]["essentials"]["alertId"] = f"/subscriptions/x/alerts/storm-{n:04d}"
        rig.post("azure-monitor", alert)
    while rig.run():
        pass
    everything = audit_store.list_records(rig.db, incident_id=incident_id, limit=100_000)
    joined = {r.event_id for r in everything if r.event_id}
    assert len(everything) > 300 and len(joined) == 301
    url = f"/api/incidents/{incident_id}"
    page = rig.client.get(url, headers=ADMIN).json()
    assert [r["seq"] for r in page["timeline"]] == [r.seq for r in everything[-200:]]
    assert page["next"] == everything[-200].seq
    assert len(page["events"]) <= 201 and page["events"][0]["id"] == first
    seen_records, seen_events, cursor = [], set(), None
    while True:
        params = {"limit": "150", **({"before": str(cursor)} if cursor else {})}
        page = rig.client.get(url, params=params, headers=ADMIN).json()
        assert len(page["timeline"]) <= 150
        seen_records[:0] = [r["seq"] for r in page["timeline"]]
        seen_events |= {e["id"] for e in page["events"]}
        if (cursor := page["next"]) is None:
            break
    assert seen_records == [r.seq for r in everything]
    assert seen_events == joined
    for params, detail in (({"before": "x"}, "before: expected a timeline seq (the `next` of "
                                             "the page before), got 'x'"),
                           ({"limit": "0"}, "limit: expected a whole number from 1 to 500, "
                                            "got '0'"),
                           ({"page": "2"}, "unknown parameter 'page'; expected limit, before")):
        refused = rig.client.get(url, params=params, headers=ADMIN)
        assert (refused.status_code, refused.json()) == (
            400, {"error": "bad_request", "detail": detail})
