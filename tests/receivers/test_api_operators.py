"""An operator's hand on an incident through the management API over a running engine:
acknowledge, assign, notes, resolve by hand with a note, re-run; each audited with who, and
who is the named user who logged in (``[http.users]``), not a name basic auth made up."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from engine.config import HttpSettings, Secret
from engine.store import audit as audit_store
from receivers.passwords import hash_password
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN, ADMIN_KEY, APPROVAL, SAMPLE

PLAIN = APPROVAL.replace("    approval: required\n", "")
ALICE_PASSWORD = "correct horse battery staple"
# A cheap cost keeps the test quick; the format and the check are the real ones.
USERS = HttpSettings(users={
    "alice": Secret(hash_password(ALICE_PASSWORD, cost=(1024, 8, 1)))})


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


ALICE = basic("alice", ALICE_PASSWORD)


def _incident(service_rig: Any, playbook: str = APPROVAL, **settings: Any) -> tuple[Any, str]:
    rig = service_rig(playbook, live=True, **settings)
    rig.post("azure-monitor", load_sample(SAMPLE))
    assert rig.run() == 1
    [incident] = rig.incidents()
    return rig, incident.id


def _actors(rig: Any, incident_id: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(r.actor, r.data) for r in audit_store.list_records(rig.db, incident_id=incident_id,
                                                                kind=kind)]


def test_ack_assign_note_and_resolve_by_hand_are_audited_with_who(service_rig: Any) -> None:
    rig, inc = _incident(service_rig, http=USERS)
    post = rig.client.post
    acked = post(f"/api/incidents/{inc}/ack", headers=ALICE)
    assert (acked.status_code, acked.json()) == (
        200, {"id": inc, "acknowledged_by": "alice", "changed": True})
    again = post(f"/api/incidents/{inc}/ack", headers=ALICE)  # a double click
    assert again.json() == {"id": inc, "acknowledged_by": "alice", "changed": False}
    assigned = post(f"/api/incidents/{inc}/assign", json={"assignee": "bob"}, headers=ALICE)
    assert assigned.json() == {"id": inc, "assignee": "bob", "who": "alice", "changed": True}
    noted = post(f"/api/incidents/{inc}/notes", headers=ALICE,
                 json={"text": "upstream fixed the blob; password: hunter2"})
    assert noted.status_code == 200
    assert (noted.json()["who"], noted.json()["text"]) == (
        "alice", "upstream fixed the blob; password: ***")
    resolved = post(f"/api/incidents/{inc}/resolve", json={"note": "copied the blob by hand"},
                    headers=ALICE)
    assert resolved.json() == {
        "id": inc, "state": "resolved", "who": "alice",
        "reason": "resolved by hand by alice: copied the blob by hand"}

    assert _actors(rig, inc, "acknowledged") == [
        ("alice", {"who": "alice", "state": "waiting_approval", "before": None,
                   "resource": "Copy_Data_Pipeline"})]
    assert _actors(rig, inc, "assignment") == [
        ("alice", {"who": "alice", "assignee": "bob", "before": None,
                   "resource": "Copy_Data_Pipeline"})]
    [(actor, note)] = _actors(rig, inc, "note")
    assert (actor, note["text"]) == ("alice", "upstream fixed the blob; password: ***")
    assert _actors(rig, inc, "resolution") == [
        ("alice", {"state": "resolved", "reason": "resolved by hand by alice: copied the blob "
                   "by hand", "resource": "Copy_Data_Pipeline"})]
    assert [(a.state) for a in rig.actions(inc)] == ["cancelled"]
    assert "hunter2" not in str(audit_store.list_records(rig.db, limit=1000))

    body = rig.client.get(f"/api/incidents/{inc}", headers=ADMIN).json()
    assert {k: body["handling"][k] for k in ("acknowledged_by", "assignee", "assigned_by",
                                             "rerun")} == {
        "acknowledged_by": "alice", "assignee": "bob", "assigned_by": "alice", "rerun": None}
    assert [(n["who"], n["text"]) for n in body["notes"]] == [
        ("alice", "upstream fixed the blob; password: ***")]


def test_what_the_state_does_not_allow_is_a_conflict_saying_why(service_rig: Any) -> None:
    rig, inc = _incident(service_rig)
    post = rig.client.post
    empty = post(f"/api/incidents/{inc}/resolve", json={"note": "  "}, headers=ADMIN)
    assert (empty.status_code, empty.json()) == (
        400, {"error": "bad_request", "detail": "note: must not be empty"})
    long = post(f"/api/incidents/{inc}/notes", json={"text": "x" * 4001}, headers=ADMIN)
    assert long.json()["detail"] == "note: at most 4000 characters, got 4001"
    odd = post(f"/api/incidents/{inc}/assign", json={"assignee": "bob\x1b[31m"}, headers=ADMIN)
    assert odd.json()["detail"] == "assignee: control characters are not allowed"
    shape = post(f"/api/incidents/{inc}/notes", json={"note": "x"}, headers=ADMIN)
    assert shape.status_code == 400
    assert post(f"/api/incidents/{inc}/reject", headers=ADMIN).status_code == 200  # ignored
    for path, body in (("ack", None), ("assign", {"assignee": "bob"})):
        refused = post(f"/api/incidents/{inc}/{path}", json=body, headers=ADMIN)
        verb = "acknowledge" if path == "ack" else "assign"
        assert (refused.status_code, refused.json()) == (409, {
            "error": "conflict",
            "detail": f"incident {inc} is ignored: nothing to {verb} (add a note instead)"})
    closed = post(f"/api/incidents/{inc}/resolve", json={"note": "done"}, headers=ADMIN)
    assert (closed.status_code, closed.json()["detail"]) == (409, (
        f"incident {inc} is ignored: only an active incident (open, remediating, "
        "waiting_approval, verifying) can be resolved; add a note instead"))
    late = post(f"/api/incidents/{inc}/notes", json={"text": "rejected: planned outage"},
                headers=ADMIN)
    assert (late.status_code, late.json()["who"]) == (200, "admin")
    unknown = post("/api/incidents/inc_nope/ack", headers=ADMIN)
    assert (unknown.status_code, unknown.json()) == (
        404, {"error": "not_found", "detail": "unknown incident inc_nope"})


def test_named_users_and_the_shared_key(service_rig: Any) -> None:
    rig, inc = _incident(service_rig, http=USERS)
    post = rig.client.post
    assert post(f"/api/incidents/{inc}/ack", headers=basic("alice", "wrong")).status_code == 401
    assert post(f"/api/incidents/{inc}/ack", headers=basic("mallory", ALICE_PASSWORD)
                ).status_code == 401
    # The shared admin key still logs in; beside named users its user name is only a label.
    shared = post(f"/api/incidents/{inc}/ack", headers=basic("alice", ADMIN_KEY))
    assert shared.json()["acknowledged_by"] == "alice (admin key)"
    named = post(f"/api/incidents/{inc}/ack", headers=ALICE)
    assert named.json()["acknowledged_by"] == "alice"
    assert [actor for actor, _ in _actors(rig, inc, "acknowledged")] == [
        "alice (admin key)", "alice"]
    [_, second] = _actors(rig, inc, "acknowledged")
    assert second[1]["before"] == "alice (admin key)"


def test_rerun_waits_for_approval_and_a_second_click_is_refused(service_rig: Any) -> None:
    rig, inc = _incident(service_rig)
    post = rig.client.post
    waiting = post(f"/api/incidents/{inc}/rerun", headers=ADMIN)
    assert (waiting.status_code, waiting.json()["detail"]) == (
        409, f"incident {inc} is waiting for approval: approve or reject it")
    post(f"/api/incidents/{inc}/reject", headers=ADMIN)
    again = post(f"/api/incidents/{inc}/rerun", headers=ADMIN)
    assert again.status_code == 200
    new = again.json()["incident_id"]
    assert again.json() == {"rerun_of": inc, "incident_id": new, "state": "waiting_approval",
                            "reason": "waiting for approval", "rule_id": "approve-blob",
                            "who": "admin"}
    double = post(f"/api/incidents/{inc}/rerun", headers=ADMIN)
    assert (double.status_code, double.json()["detail"]) == (
        409, f"incident {inc} was re-run already by admin as incident {new}: re-run that one")
    assert [(a.state, a.attempt) for a in rig.actions(new)] == [("waiting_approval", 1)]
    assert _actors(rig, inc, "rerun") == [("admin", {
        "who": "admin", "decision": "opened", "incident": new, "rule": "approve-blob",
        "resource": "Copy_Data_Pipeline"})]
    assert _actors(rig, new, "rerun")[0][1]["incident"] == inc
    assert rig.records(new, "guard")[-2:] == [
        {"name": "approval", "decision": "wait", "reason": "rule approve-blob requires approval",
         "resource": "Copy_Data_Pipeline"},
        {"name": "pause", "decision": "allow", "reason": "not paused",
         "resource": "Copy_Data_Pipeline"}]
    assert post(f"/api/incidents/{new}/approve", headers=ADMIN).status_code == 200
    rig.tick()
    assert [(i.id, i.state) for i in rig.incidents()] == [(new, "resolved"), (inc, "ignored")]
    assert [a.state for a in rig.actions(new)] == ["succeeded"]


def test_rerun_runs_the_rule_again_once_it_is_closed(service_rig: Any) -> None:
    delayed = PLAIN.replace("        with: {note", "        delay: 10m\n        with: {note")
    rig, inc = _incident(service_rig, delayed)
    post = rig.client.post
    running = post(f"/api/incidents/{inc}/rerun", headers=ADMIN)
    assert (running.status_code, running.json()["detail"]) == (409, (
        f"a remediation of incident {inc} is under way (remediating): wait for its outcome, "
        "or resolve it by hand"))
    rig.tick(600)
    assert rig.incidents()[0].state == "resolved"
    alert = load_sample(SAMPLE)  # the same failure fires again: a new incident handles it
    alert["data"]["essentials"]["alertId"] = "/subscriptions/x/alerts/again"
    rig.post("azure-monitor", alert)
    assert rig.run() == 1
    later = rig.incidents()[0]
    busy = post(f"/api/incidents/{inc}/rerun", headers=ADMIN)
    assert (busy.status_code, busy.json()["detail"]) == (409, (
        f"a remediation of {later.target} is under way (incident {later.id}, remediating): "
        "wait for its outcome"))
    rig.tick(600)
    answer = post(f"/api/incidents/{inc}/rerun", headers=ADMIN).json()
    assert (answer["state"], answer["reason"]) == ("remediating", "actions planned")
    [row] = rig.actions(answer["incident_id"])
    assert (row.state, row.due_ms) == ("scheduled", rig.now_ms() + 600_000)  # its delay
    rig.tick(600)
    assert [(i.state, i.reason) for i in rig.incidents()] == [
        ("resolved", "actions succeeded; nothing to verify")] * 3


def test_rerun_is_refused_when_a_guard_would_stop_it(service_rig: Any) -> None:
    budget = PLAIN.replace("    actions:\n", "    budget: {max_attempts: 1, window: 1h}\n"
                                             "    actions:\n")
    rig, inc = _incident(service_rig, budget)
    rig.tick()
    refused = rig.client.post(f"/api/incidents/{inc}/rerun", headers=ADMIN)
    assert (refused.status_code, refused.json()["detail"]) == (409, (
        f"incident {inc} cannot be re-run now: budget spent: 1 of 1 attempts in 3600s per "
        "target adf:pipeline:your-adf/copy_data_pipeline"))
    assert len(rig.incidents()) == 1  # nothing opened
    assert [d["decision"] for _, d in _actors(rig, inc, "rerun")] == ["refused"]


@pytest.mark.parametrize("case", ["no rule", "rule gone"])
def test_rerun_without_a_rule_to_run_is_refused(service_rig: Any, case: str) -> None:
    playbook = APPROVAL.replace("UserErrorSourceBlobNotExists", "SomethingElse") \
        if case == "no rule" else PLAIN
    rig, inc = _incident(service_rig, playbook)
    rig.tick()
    if case == "rule gone":
        (rig.playbooks / "rules.yaml").write_text(PLAIN.replace("approve-blob", "renamed"))
        assert rig.client.post("/api/playbooks/reload", headers=ADMIN).status_code == 200
    refused = rig.client.post(f"/api/incidents/{inc}/rerun", headers=ADMIN)
    assert (refused.status_code, refused.json()["detail"]) == (409, (
        f"incident {inc} matched no rule: there is no action to re-run" if case == "no rule"
        else f"rule approve-blob of incident {inc} is no longer loaded (the playbooks were "
             "reloaded without it): nothing to re-run"))


def test_a_rerun_in_dry_run_says_what_it_would_do(service_rig: Any) -> None:
    rig = service_rig(PLAIN.replace("action: noop", "action: adf.rerun_pipeline")
                      .replace("with: {note: waited for a person}",
                               "with: {start_from_failure: true}"), live=False)
    rig.post("azure-monitor", load_sample(SAMPLE))
    assert rig.run() == 1
    [old] = rig.incidents()
    assert old.state == "ignored"
    answer = rig.client.post(f"/api/incidents/{old.id}/rerun", headers=ADMIN).json()
    assert (answer["state"], answer["reason"].split(":")[0]) == ("ignored", "dry-run")
    assert answer["reason"] == rig.incidents()[0].reason
    assert [a.state for a in rig.actions(answer["incident_id"])] == ["dry_run"]
    rig.tick(3600)
    assert rig.mutating_calls() == []


def test_the_incident_page_shows_the_hand_escaped(service_rig: Any) -> None:
    rig, inc = _incident(service_rig)
    hostile = "<script>alert('x')</script>"
    rig.client.post(f"/api/incidents/{inc}/assign", json={"assignee": hostile}, headers=ADMIN)
    rig.client.post(f"/api/incidents/{inc}/notes", json={"text": f"see {hostile}"},
                    headers=ADMIN)
    page = rig.client.get(f"/incidents/{inc}", headers=ADMIN).text
    assert hostile not in page
    assert "see &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert f'<form method="post" action="/incidents/{inc}/ack">' in page
    listed = rig.client.get("/", headers=ADMIN).text
    assert hostile not in listed and "→ &lt;script&gt;" in listed
