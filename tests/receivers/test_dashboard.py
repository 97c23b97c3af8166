"""The dashboard over data the real worker built: filters, timelines, approve/reject through
the forms, the mode banner, playbook hits, the audit page, auth, escaping and no secrets."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

import receivers
from engine import guards, lifecycle
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from receivers.app import create_app
from tests.engine.actions.conftest import adf_event
from tests.fixtures.app import admin_headers, basic_header, receiver_headers
from tests.fixtures.dashboard import (
    HOSTILE,
    PLANTED,
    PLAYBOOK,
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


# --- the incident at a glance (issue 18, items 1-3 and 5) -----------------------------------

FACTORY_ID = ("%2Fsubscriptions%2F5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17%2FresourceGroups%2F"
              "rg-dataplatform-prod%2Fproviders%2FMicrosoft.DataFactory%2Ffactories%2F"
              "adf-contoso-prod")
RUN_URL = ("https://adf.azure.com/en/monitoring/pipelineruns/"
           "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11?factory=" + FACTORY_ID)
LINK = ('<a class="run-link" href="{url}" rel="noopener noreferrer external" '
        'target="_blank">{label} ↗</a>')
RERUN = ("rerun pipeline pl_ingest_sales_daily in factory adf-contoso-prod from the failed "
         "activity (recovery of run 7b1e4c52...)")


def local(ms: int) -> str:
    """Epoch ms as the pages show it: the server's local time."""
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def row_of(html: str, incident_id: str) -> str:
    """The list's row of one incident."""
    found = re.search(r'<tr class="state-[a-z_]+">(?:(?!</tr>).)*?/incidents/'
                      + incident_id + r'".*?</tr>', html, re.S)
    assert found is not None, incident_id
    return found.group(0)


def texts(html: str, css: str) -> list[str]:
    """The text of each element of class ``css`` (tags dropped, spaces collapsed)."""
    found = re.findall(rf'<(p|span|td|li) class="{css}"[^>]*>(.*?)</\1>', html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", body).split()) for _, body in found]


def visible(html: str) -> str:
    """The page without its folded raw records."""
    return re.sub(r"<details\b.*?</details>", "", html, flags=re.S)


def approve_and_run(seeded: Seeded) -> None:
    """Approve the ADF incident and let the live worker rerun it against the sandbox."""
    guards.approve(seeded.rig.db, seeded.adf.id, "alice", now=seeded.rig.clock.now())
    seeded.worker.scheduler.tick()
    seeded.rig.clock.advance(minutes=2)
    seeded.worker.scheduler.tick()


def test_the_list_says_what_failed_what_was_done_and_what_is_pending(
        dash: TestClient[Any], seeded: Seeded) -> None:
    html = dash.get("/", headers=admin_headers()).text
    adf = row_of(html, seeded.adf.id)
    # what failed: titled by resource and error code, the message, the run in its console
    assert f'<a href="/incidents/{seeded.adf.id}">pl_ingest_sales_daily · 2200</a>' in adf
    assert '<p class="message">Copy failed</p>' in adf
    assert LINK.format(url=RUN_URL, label="ADF run 7b1e4c52…") in adf
    # what was done (nothing yet) and what is pending, until when
    assert texts(adf, "action") == [f"Will {RERUN} once approved awaiting approval"]
    incident = incidents_store.get(seeded.rig.db, seeded.adf.id)
    assert incident is not None
    assert re.sub(r" \([^)]*\)$", "", texts(adf, "pending")[0]) == \
        f"approval until {local(incident.approval_due_ms)}"
    assert texts(row_of(html, seeded.dbx.id), "action") == [
        "Did nothing (task transform_orders failed) done"]
    unmatched = row_of(html, seeded.unmatched.id)
    assert "pl_unmatched_export&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; · " \
           "UserErrorUnknown</a>" in unmatched
    assert texts(unmatched, "rca") == ["Root-cause analysis: no RCA engine configured"]

    approve_and_run(seeded)
    adf = row_of(dash.get("/", headers=admin_headers()).text, seeded.adf.id)
    [action] = actions_store.for_incident(seeded.rig.db, seeded.adf.id)
    new_run = action.result["ref"]["run_id"]
    new_link = LINK.format(url=RUN_URL.replace("7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11", new_run),
                           label=f"ADF run {new_run[:8]}…")
    assert texts(adf, "action") == [
        f"Reran{RERUN[5:]} started, verifying ADF run {new_run[:8]}… ↗"]
    assert new_link in adf
    [until] = texts(adf, "pending")
    assert re.sub(r" \([^)]*\)$", "", until) == (
        f"verifying ADF run {new_run[:8]}… ↗ until {local(action.probe_deadline_ms)}")


def test_the_incident_page_reads_as_steps(dash: TestClient[Any], seeded: Seeded) -> None:
    approve_and_run(seeded)
    html = dash.get(f"/incidents/{seeded.adf.id}", headers=admin_headers()).text
    [action] = actions_store.for_incident(seeded.rig.db, seeded.adf.id)
    new_run = action.result["ref"]["run_id"]
    assert "<h1 id=\"title\" data-live>pl_ingest_sales_daily · 2200</h1>" in html
    assert '<p id="message" class="message">Copy failed</p>' in html
    assert LINK.format(url=RUN_URL, label="ADF run 7b1e4c52…") in html
    assert texts(html, "text") == [
        "Alert received: adf activity run, firing",
        "Matched rule adf-copy-failed (engine.yaml:3) because source = adf, error_code = 2200",
        "Opened the incident on adf:pipeline:adf-contoso-prod/pl_ingest_sales_daily",
        "Guards passed: circuit, budget, cooldown, lock, dry_run, pause; "
        "decided: approval → wait",
        f"Planned: {RERUN}",
        "Approved by alice",
        "Started adf.rerun_pipeline (attempt 1)",
        "Pre-check: still needed: run 7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11 of pipeline "
        "pl_ingest_sales_daily failed and was not rerun",
        f"adf.rerun_pipeline succeeded: rerun {new_run} of pipeline pl_ingest_sales_daily "
        "started (recovery of run 7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11) "
        f"ADF run {new_run[:8]}… ↗",
        "Verifying: the probe follows what the actions started",
    ]
    # the other rule is counted, not listed; the raw records are folded away, one fold a
    # step, their text as stored (no \u0027 escapes), escaped for HTML
    shown = visible(html)
    assert "<li>Other rules: 1 not tried (the first match wins).</li>" in shown
    assert "dbx-task-failed" not in shown and "dbx-task-failed" in html
    assert "<pre>" not in shown
    assert html.count('<details id="raw-') == len(texts(html, "text"))
    assert "\\u00" not in html
    page = dash.get(f"/incidents/{seeded.unmatched.id}", headers=admin_headers()).text
    assert "\\u00" not in page
    assert ("&#34;resource&#34;: &#34;pl_unmatched_export&lt;script&gt;alert(&#39;x&#39;)"
            "&lt;/script&gt;&#34;") in page


def test_actions_are_worded_by_what_really_happened(dash: TestClient[Any],
                                                    seeded: Seeded) -> None:
    waiting = dash.get(f"/incidents/{seeded.adf.id}", headers=admin_headers()).text
    assert texts(waiting, "sentence") == [f"Will {RERUN} once approved"]
    approve_and_run(seeded)
    live = visible(dash.get(f"/incidents/{seeded.adf.id}", headers=admin_headers()).text)
    assert texts(live, "sentence") == [f"Reran{RERUN[5:]}"]  # not "would rerun"
    assert "would" not in live.lower()
    # the same rule in dry-run: "would", and it says it was not done
    dry = seeded.rig.worker(PLAYBOOK)
    seeded.rig.deliver(adf_event(resource="pl_dry_copy", dedup_key="azmon:dry:Fired",
                                 attributes={**adf_event().attributes,
                                             "pipeline": "pl_dry_copy"}))
    dry.drain()
    [found] = incidents_store.list_incidents(seeded.rig.db, resource="pl_dry_copy")
    page = visible(dash.get(f"/incidents/{found.id}", headers=admin_headers()).text)
    assert texts(page, "sentence") == [
        f"Would {RERUN.replace('pl_ingest_sales_daily', 'pl_dry_copy')} (dry-run: not done)"]
    assert '<td class="state">dry_run</td>' in page


def test_charts_have_axes_values_and_a_legend(dash: TestClient[Any], seeded: Seeded) -> None:
    html = dash.get("/", headers=admin_headers()).text
    failures, closed = re.findall(r'<figure class="chart">.*?</figure>', html, re.S)
    # the y axis counts up to the tallest bar (the three failures of this hour)
    assert re.findall(r'class="tick y">(\d+)</text>', failures) == ["0", "1", "2", "3"]
    assert re.findall(r'class="value">(\d+)</text>', failures) == ["3"]
    # the x axis: every sixth hour back from this one, local time
    hour = datetime.now().astimezone()
    assert re.findall(r'class="tick x">([\d:]+)</text>', failures) == [
        (hour - timedelta(hours=h)).strftime("%H:00") for h in (18, 12, 6, 0)]
    # the legend: each series with its colour class and its total
    assert re.findall(r'<rect width="10" height="10" class="([a-z_-]+)"/></svg>(\w+) '
                      r'<span class="count">(\d+)</span>', failures) == [
        ("source-adf", "adf", "2"), ("source-databricks", "databricks", "1")]
    assert re.findall(r'<rect width="10" height="10" class="([a-z_-]+)"/></svg>(\w+) '
                      r'<span class="count">(\d+)</span>', closed) == [
        ("state-escalated", "escalated", "1"), ("state-resolved", "resolved", "1")]
    assert set(re.findall(r'class="bar ([a-z_-]+)"', closed)) == {"state-escalated",
                                                                  "state-resolved"}


def test_one_colour_per_state_set_once() -> None:
    css = (Path(receivers.__file__).parent / "static" / "dashboard.css").read_text()
    root = re.search(r"^:root \{(.*?)\}", css, re.M | re.S)
    assert root is not None
    colours = dict(re.findall(r"--([a-z_]+): (#[0-9a-f]{6});", root.group(1)))
    assert sorted(colours) == sorted(lifecycle.STATES)
    assert len(set(colours.values())) == len(colours)
    # each state's class takes its colour from there, and the colour is written nowhere else
    for state, colour in colours.items():
        assert re.search(rf"^\.state-{state} \{{ --c: var\(--{state}\);", css, re.M), state
        assert css.count(colour) == 1, state
    sources = re.findall(r"^\.source-[a-z]+ \{ --c: (#[0-9a-f]{6});", css, re.M)
    assert len(sources) == 4 and set(sources).isdisjoint(colours.values())
