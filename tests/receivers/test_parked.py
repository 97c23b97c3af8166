"""Parked events through the API and the dashboard, over data the real worker built: listed
(``state=parked``), shown with their claims and reason, replayed once by an admin (audited with
who did it), refused a second time (409), unauthenticated (401) or from another site (403);
counted on the main page and in /metrics."""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import TestClient

from engine.store import audit as audit_store
from engine.store import inbox
from tests.fixtures.app import admin_headers, basic_header
from tests.fixtures.common import assert_wrapped
from tests.fixtures.dashboard import HOSTILE, PARKED_RESOURCE, Seeded, park_one
from tests.receivers.test_metrics import scrape, value

REASON = "claimed 5 times without finishing: its stages crashed or stalled each time"
ESCAPED = "pl_poison&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"


def _state(seeded: Seeded, event_id: str) -> tuple[str, int, str]:
    stored = inbox.get(seeded.rig.db, event_id)
    assert stored is not None
    return stored.state, stored.attempts, stored.reason


def _records(seeded: Seeded, event_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.kind, r.actor, r.data) for r in audit_store.list_records(
        seeded.rig.db, event_id=event_id, limit=100) if r.kind in ("parked", "replayed")]


# -- API -----------------------------------------------------------------------------------


def test_the_api_lists_and_shows_a_parked_event(dash: TestClient[Any], seeded: Seeded) -> None:
    event_id = park_one(seeded)
    listed = dash.get("/api/events", params={"state": "parked"}, headers=admin_headers())
    assert listed.status_code == 200
    assert [(i["id"], i["state"], i["claims"], i["reason"]) for i in listed.json()["items"]] == [
        (event_id, "parked", 5, REASON)]
    done = dash.get("/api/events", params={"state": "done"}, headers=admin_headers()).json()
    assert event_id not in [i["id"] for i in done["items"]] and done["items"]

    shown = dash.get(f"/api/events/{event_id}", headers=admin_headers()).json()
    assert (shown["state"], shown["claims"], shown["reason"], shown["resource"]) == (
        "parked", 5, REASON, PARKED_RESOURCE)


def test_replay_through_the_api_once(dash: TestClient[Any], seeded: Seeded) -> None:
    event_id = park_one(seeded)
    url = f"/api/events/{event_id}/replay"

    refused = dash.post(url, json={"reason": "fixed"})
    assert (refused.status_code, _state(seeded, event_id)[0]) == (401, "parked")

    replayed = dash.post(url, json={"reason": "poison fixed"}, headers=admin_headers())
    assert (replayed.status_code, replayed.json()) == (
        200, {"id": event_id, "state": "pending", "claims": 0, "who": "admin"})
    assert _state(seeded, event_id) == ("pending", 0, "replayed by admin: poison fixed")

    again = dash.post(url, headers=admin_headers())
    assert (again.status_code, again.json()) == (409, {
        "error": "conflict",
        "detail": f"event {event_id} is pending, not parked: only a parked event can be "
                  "replayed"})
    missing = dash.post("/api/events/evt_nope/replay", headers=admin_headers())
    assert (missing.status_code, missing.json()) == (
        404, {"error": "not_found", "detail": "unknown event evt_nope"})

    assert _records(seeded, event_id) == [
        ("parked", "engine", {"reason": REASON, "claims": 5, "error": "",
                              "resource": PARKED_RESOURCE}),
        ("replayed", "admin", {"who": "admin", "reason": "poison fixed",
                               "resource": PARKED_RESOURCE})]

    # the worker takes it again: this time it finishes
    assert seeded.worker.drain() == 1
    assert _state(seeded, event_id)[:2] == ("done", 1)


def test_a_replay_names_the_basic_auth_user_and_bounds_its_reason(
        dash: TestClient[Any], seeded: Seeded) -> None:
    event_id = park_one(seeded)
    url = f"/api/events/{event_id}/replay"
    too_long = dash.post(url, json={"reason": "x" * 501}, headers=admin_headers())
    assert too_long.status_code == 400
    assert_wrapped(too_long.json()["detail"], f"Validation failed for POST {url}: reason: ",
                   "str", "500")
    unknown = dash.post(url, json={"why": "x"}, headers=admin_headers())
    assert unknown.status_code == 400
    assert _state(seeded, event_id)[0] == "parked"
    replayed = dash.post(url, headers=basic_header("ops", "ak-admin-5e9a2d71"))
    assert (replayed.status_code, replayed.json()["who"]) == (200, "ops")
    assert _records(seeded, event_id)[-1] == (
        "replayed", "ops", {"who": "ops", "reason": "", "resource": PARKED_RESOURCE})


# -- dashboard -----------------------------------------------------------------------------


def test_the_main_page_counts_parked_events(dash: TestClient[Any], seeded: Seeded) -> None:
    html = dash.get("/", headers=admin_headers()).text
    assert ('<p id="parked-count" class="parked-count"><a href="/events/parked">'
            'Parked events: 0</a></p>') in html
    park_one(seeded)
    html = dash.get("/", headers=admin_headers()).text
    assert ('<p id="parked-count" class="parked-count warn"><a href="/events/parked">'
            'Parked events: 1</a></p>') in html


def test_the_parked_page_shows_each_with_its_reason_escaped(
        dash: TestClient[Any], seeded: Seeded) -> None:
    empty = dash.get("/events/parked", headers=admin_headers())
    assert empty.status_code == 200 and '<li class="empty">No parked event.</li>' in empty.text
    event_id = park_one(seeded)
    html = dash.get("/events/parked", headers=admin_headers()).text
    assert '<p id="parked-total">1 parked.</p>' in html
    cards = re.findall(r'<li class="card" id="parked-(evt_\w+)">', html)
    assert cards == [event_id]
    assert f'<dd class="event-id">{event_id}</dd>' in html
    assert '<dd class="claims">5</dd>' in html
    assert f'<dd class="reason">{REASON}</dd>' in html
    assert f"<dt>Resource</dt><dd>{ESCAPED}</dd>" in html
    assert HOSTILE not in html
    assert f'<form method="post" action="/events/{event_id}/replay" class="replay">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_replay_through_the_form_once(dash: TestClient[Any], seeded: Seeded) -> None:
    event_id = park_one(seeded)
    url = f"/events/{event_id}/replay"
    assert dash.post(url, data={"reason": "x"}).status_code == 401
    cross = dash.post(url, data={"reason": "x"},
                      headers={**admin_headers(), "origin": "https://evil.example"})
    assert cross.status_code == 403
    assert _state(seeded, event_id)[0] == "parked"

    response = dash.post(url, data={"reason": "poison fixed"}, headers={
        **admin_headers(), "origin": "http://testserver.local"}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (
        303, f"/events/parked?replayed={event_id}")
    assert _state(seeded, event_id) == (
        "pending", 0, "replayed by admin (dashboard): poison fixed")
    page = dash.get(response.headers["location"], headers=admin_headers()).text
    assert (f'<p id="replayed" class="ok">{event_id} is pending again (replayed by admin '
            '(dashboard): poison fixed).</p>') in page
    assert '<p id="parked-total">0 parked.</p>' in page

    again = dash.post(url, data={"reason": ""}, headers=admin_headers())
    assert again.status_code == 409
    assert (f"event {event_id} is pending, not parked: only a parked event can be replayed"
            in again.text)
    assert dash.post("/events/evt_nope/replay", data={}, headers=admin_headers()
                     ).status_code == 404
    assert [(kind, actor) for kind, actor, _ in _records(seeded, event_id)] == [
        ("parked", "engine"), ("replayed", "admin (dashboard)")]


def test_the_replayed_notice_names_only_an_event_that_left_the_parked_state(
        dash: TestClient[Any], seeded: Seeded) -> None:
    event_id = park_one(seeded)
    for query in (f"?replayed={event_id}", f"?replayed={HOSTILE}"):
        html = dash.get(f"/events/parked{query}", headers=admin_headers()).text
        assert 'id="replayed"' not in html
        assert HOSTILE not in html


def test_the_audit_page_filters_parked_and_replayed(dash: TestClient[Any],
                                                    seeded: Seeded) -> None:
    event_id = park_one(seeded)
    assert dash.post(f"/api/events/{event_id}/replay", headers=admin_headers()
                     ).status_code == 200
    for kind in ("parked", "replayed"):
        html = dash.get(f"/audit?kind={kind}", headers=admin_headers()).text
        assert re.findall(r'<td class="kind">(\w+)</td>', html) == [kind]
        assert f'<option value="{kind}" selected>{kind}</option>' in html


def test_metrics_count_parked_events(dash: TestClient[Any], seeded: Seeded) -> None:
    assert value(scrape(dash), "remediator_events_parked") == 0
    event_id = park_one(seeded)
    assert value(scrape(dash), "remediator_events_parked") == 1
    assert dash.post(f"/api/events/{event_id}/replay", headers=admin_headers()
                     ).status_code == 200
    assert value(scrape(dash), "remediator_events_parked") == 0
