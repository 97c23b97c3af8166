"""The dashboard over data the real worker built: filters, timelines, approve/reject through
the forms, the mode banner, playbook hits, the audit page, auth, escaping and no secrets."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from engine import guards
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from receivers.app import create_app
from tests.fixtures.app import admin_headers, basic_header, receiver_headers
from tests.fixtures.dashboard import (
    HOSTILE,
    PLANTED,
    Seeded,
    dashboard_settings,
    planted_payload,
)

PAGES = ("/", "/playbooks", "/audit", "/audit?verify=true")


def listed(html: str) -> set[str]:
    return set(re.findall(r'<a href="/incidents/(inc_\w+)">', html))


def stages(html: str) -> list[str]:
    """The stages of a timeline, each once, in order of first appearance."""
    seen: list[str] = []
    for stage in re.findall(r'<span class="stage">([^<]+)</span>', html):
        if stage not in seen:
            seen.append(stage)
    return seen


def mode(html: str) -> str:
    found = re.search(r'<div id="mode" class="mode mode-[a-z-]+">([A-Z-]+)</div>', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("path", [*PAGES, "/incidents/inc_x", "/metrics",
                                  "/static/dashboard.css"])
def test_pages_refuse_without_admin_credentials(client: TestClient[Any], path: str) -> None:
    for headers in ({}, receiver_headers("azure-monitor"), basic_header("admin", "wrong")):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="remediator-admin"'
    assert client.post("/incidents/inc_x/approve").status_code == 401


def test_basic_auth_with_the_admin_key_opens_the_pages(client: TestClient[Any]) -> None:
    for path in PAGES:
        response = client.get(path, headers=basic_header("ops", "ak-admin-5e9a2d71"))
        assert response.status_code == 200


def test_incident_list_filters(dash: TestClient[Any], seeded: Seeded) -> None:
    def ids(query: str) -> set[str]:
        response = dash.get(f"/{query}", headers=admin_headers())
        assert response.status_code == 200
        return listed(response.text)

    everything = {seeded.adf.id, seeded.dbx.id, seeded.old.id, seeded.unmatched.id}
    assert ids("") == everything
    assert ids("?state=waiting_approval") == {seeded.adf.id, seeded.old.id}
    assert ids("?state=escalated") == {seeded.unmatched.id}
    assert ids("?source=databricks") == {seeded.dbx.id}
    assert ids("?resource=pl_archive_weekly") == {seeded.old.id}
    assert ids("?since=1d") == everything - {seeded.old.id}
    assert ids("?since=4d&state=waiting_approval&source=adf") == {seeded.adf.id, seeded.old.id}
    bad = dash.get("/?since=yesterday", headers=admin_headers())
    assert bad.status_code == 400
    assert ("since: invalid duration &#39;yesterday&#39;: expected a number and a unit, like "
            "30s, 15m, 2h, 1d or 1h30m") in bad.text
    assert '<meta http-equiv="refresh" content="15">' in bad.text


def test_charts_count_failures_by_source_and_closed_incidents_by_outcome(
    dash: TestClient[Any], seeded: Seeded
) -> None:
    html = dash.get("/", headers=admin_headers()).text
    # the three recent incidents (the old one is outside the 24 hours)...
    assert "Failures (new incidents) by source (3 in 24 h)" in html
    assert re.search(r"<title>[^<]*: adf 2</title>", html)
    assert re.search(r"<title>[^<]*: databricks 1</title>", html)
    # ...and the two incidents closed since: resolved (noop) and escalated (no rule)
    assert "Closed incidents by outcome (2 in 24 h)" in html
    assert re.search(r"<title>[^<]*: resolved 1</title>", html)
    assert re.search(r"<title>[^<]*: escalated 1</title>", html)


def test_timeline_shows_each_stage(dash: TestClient[Any], seeded: Seeded) -> None:
    def page(incident_id: str) -> str:
        response = dash.get(f"/incidents/{incident_id}", headers=admin_headers())
        assert response.status_code == 200
        return response.text

    assert stages(page(seeded.dbx.id)) == ["event", "rule", "incident", "guards", "actions",
                                           "outcome"]
    # issue 16: every close writes its record, so an unmatched incident shows its escalation
    assert stages(page(seeded.unmatched.id)) == ["event", "rule", "incident", "RCA", "outcome"]
    guards.approve(seeded.rig.db, seeded.adf.id, "alice", now=seeded.rig.clock.now())
    seeded.worker.scheduler.tick()
    seeded.rig.clock.advance(minutes=2)
    seeded.worker.scheduler.tick()
    html = page(seeded.adf.id)
    assert stages(html) == ["event", "rule", "incident", "guards", "actions", "approval",
                            "verification"]
    assert '<td class="state">succeeded</td>' in html
    assert dash.get("/incidents/inc_missing", headers=admin_headers()).status_code == 404


def test_approve_through_the_form(dash: TestClient[Any], seeded: Seeded) -> None:
    page = dash.get(f"/incidents/{seeded.adf.id}", headers=admin_headers()).text
    assert f'<form method="post" action="/incidents/{seeded.adf.id}/approve">' in page
    response = dash.post(f"/incidents/{seeded.adf.id}/approve", headers=admin_headers(),
                         follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (
        303, f"/incidents/{seeded.adf.id}")
    incident = incidents_store.get(seeded.rig.db, seeded.adf.id)
    assert incident is not None
    assert (incident.state, incident.reason) == ("remediating", "approved by admin (dashboard)")
    page = dash.get(f"/incidents/{seeded.adf.id}", headers=admin_headers()).text
    assert '<dd id="state" class="state-remediating">remediating</dd>' in page
    assert 'id="approve"' not in page
    again = dash.post(f"/incidents/{seeded.adf.id}/approve", headers=admin_headers())
    assert again.status_code == 409
    assert f"incident {seeded.adf.id} is remediating, not waiting_approval" in again.text


def test_reject_through_the_form(dash: TestClient[Any], seeded: Seeded) -> None:
    response = dash.post(f"/incidents/{seeded.old.id}/reject", headers=admin_headers(),
                         data={"reason": "maintenance window"}, follow_redirects=False)
    assert response.status_code == 303
    incident = incidents_store.get(seeded.rig.db, seeded.old.id)
    assert incident is not None
    assert (incident.state, incident.reason) == (
        "ignored", "rejected by admin (dashboard): maintenance window")
    [record] = audit_store.list_records(seeded.rig.db, kind="approval")
    assert (record.actor, record.data["decision"]) == ("admin (dashboard)", "rejected")


def test_a_cross_site_form_is_refused(dash: TestClient[Any], seeded: Seeded) -> None:
    response = dash.post(f"/incidents/{seeded.adf.id}/approve",
                         headers={**admin_headers(), "origin": "https://evil.example"})
    assert response.status_code == 403
    incident = incidents_store.get(seeded.rig.db, seeded.adf.id)
    assert incident is not None and incident.state == "waiting_approval"


def test_banner_shows_the_mode(dash: TestClient[Any], seeded: Seeded,
                               app_settings: Any) -> None:
    assert mode(dash.get("/", headers=admin_headers()).text) == "DRY-RUN"
    guards.pause(seeded.rig.db, "alice")
    assert mode(dash.get("/audit", headers=admin_headers()).text) == "PAUSED"
    guards.resume(seeded.rig.db, "alice")
    live = dashboard_settings(app_settings, seeded.rig, live=True)
    with TestClient(create_app(live, seeded.rig.db)) as client:
        assert mode(client.get("/playbooks", headers=admin_headers()).text) == "LIVE"


def test_playbooks_page_counts_hits(dash: TestClient[Any], seeded: Seeded) -> None:
    html = dash.get("/playbooks", headers=admin_headers()).text
    rows = re.findall(r"<tr><td>([\w-]+)</td>.*?<td class=\"hits\">(\d+)</td>", html, re.S)
    assert rows == [("adf-copy-failed", "2"), ("dbx-task-failed", "1")]


def test_audit_page_filters_and_verifies_the_chain(dash: TestClient[Any],
                                                   seeded: Seeded) -> None:
    html = dash.get("/audit?kind=rca", headers=admin_headers()).text
    assert re.findall(r'<td class="kind">(\w+)</td>', html) == ["rca"]
    html = dash.get("/audit?resource=sales_bronze_to_silver&kind=action_succeeded",
                    headers=admin_headers()).text
    assert re.findall(r'<td class="kind">(\w+)</td>', html) == ["action_succeeded"]
    head = audit_store.head(seeded.rig.db)
    assert head is not None
    html = dash.get("/audit?verify=true", headers=admin_headers()).text
    assert f"Chain verified: {head[0]} records." in html


def test_everything_is_escaped(dash: TestClient[Any], seeded: Seeded) -> None:
    for path in ("/", f"/incidents/{seeded.unmatched.id}"):
        html = dash.get(path, headers=admin_headers()).text
        assert HOSTILE not in html
        assert "pl_unmatched_export&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html


def test_no_secret_on_any_page(dash: TestClient[Any], seeded: Seeded) -> None:
    response = dash.post("/azure-monitor", json=planted_payload(),
                         headers=receiver_headers("azure-monitor"))
    assert response.status_code == 202
    event_id = response.json()["event_id"]
    assert seeded.worker.drain() == 1
    paths = [*PAGES, "/metrics", "/audit?kind=received"] + [
        f"/incidents/{i.id}" for i in incidents_store.list_incidents(seeded.rig.db)]
    pages = {path: dash.get(path, headers=admin_headers()).text for path in paths}
    assert event_id in pages["/audit?kind=received"]
    for path, html in pages.items():
        for secret in (*PLANTED, "ak-admin-5e9a2d71", "rk-first-0f4c2a9e"):
            assert secret not in html, path
