"""No change of state from another site: every route of the app is walked (a route added later
is walked too) with the headers a browser sends from another site, with bodies an HTML form
can send to /api, and as the CLI and the dashboard itself send them. No CORS header, ever.

The browser side of the same (chromium, a second origin): tests/browser/test_cross_site.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from markupsafe import escape

from engine import guards
from engine.config import RECEIVERS
from engine.store import audit as audit_store
from engine.store import inbox, state
from engine.store import incidents as incidents_store
from tests.fixtures.app import admin_headers, receiver_headers, routes
from tests.fixtures.common import load_sample
from tests.fixtures.dashboard import Seeded
from tests.receivers.test_metrics import scrape, value

SELF = "http://testserver.local"
"""The origin of Litestar's TestClient (its Host header is ``testserver.local``)."""
WHY = "only this service's own pages may change anything here"
SAMPLE_OF = {
    "azure-monitor": "seed/adf-action-group-alert.json",
    "synapse-monitor": "azure-monitor/azmon-common-metric-synapse-failed.json",
    "azure-functions-monitor": "azure-monitor/azmon-common-logv2-appinsights-exception.json",
    "databricks-monitor": "databricks/databricks-job-on-failure.json",
}
FOREIGN: dict[str, tuple[dict[str, str], str]] = {
    "sec-fetch-site cross-site": ({"sec-fetch-site": "cross-site"},
                                  f"Sec-Fetch-Site is 'cross-site': {WHY}"),
    "sec-fetch-site same-site": ({"sec-fetch-site": "same-site"},
                                 f"Sec-Fetch-Site is 'same-site': {WHY}"),
    "sec-fetch-site wins over a same Origin": (
        {"sec-fetch-site": "cross-site", "origin": SELF},
        f"Sec-Fetch-Site is 'cross-site': {WHY}"),
    "origin": ({"origin": "https://evil.example"},
               f"Origin 'https://evil.example' is not this service ('testserver.local'): {WHY}"),
    "origin null": ({"origin": "null"},
                    f"Origin 'null' is not this service ('testserver.local'): {WHY}"),
    "origin other port": ({"origin": "http://testserver.local:8080"},
                          "Origin 'http://testserver.local:8080' is not this service "
                          f"('testserver.local'): {WHY}"),
    "origin with our name as prefix": (
        {"origin": "http://testserver.local.evil.example"},
        "Origin 'http://testserver.local.evil.example' is not this service "
        f"('testserver.local'): {WHY}"),
    "referer": ({"referer": "https://evil.example/attack.html?key=secret"},
                f"Referer 'https://evil.example' is not this service ('testserver.local'): {WHY}"),
    "referer not a url": ({"referer": "about:blank"},
                          f"Referer 'about:blank' is not this service ('testserver.local'): {WHY}"),
}
SAME: dict[str, dict[str, str]] = {
    "no browser header (CLI, curl, senders)": {},
    "sec-fetch-site same-origin": {"sec-fetch-site": "same-origin"},
    "sec-fetch-site none (typed by the user)": {"sec-fetch-site": "none"},
    "origin": {"origin": SELF},
    "origin with the default port": {"origin": SELF, "host": "testserver.local:80"},
    "referer": {"referer": f"{SELF}/incidents/inc_1"},
    # behind a proxy that rewrites Host, the browser's own verdict is what counts
    "sec-fetch-site same-origin, Origin another name": {
        "sec-fetch-site": "same-origin", "origin": "https://remediator.contoso.com"},
}
FORM_BODIES: dict[str, tuple[dict[str, str], bytes, str]] = {
    "text/plain": ({"content-type": "text/plain"}, b'{"reason": "x"}', "'text/plain'"),
    "form": ({"content-type": "application/x-www-form-urlencoded"}, b"reason=x",
             "'application/x-www-form-urlencoded'"),
    "empty form": ({"content-type": "application/x-www-form-urlencoded"}, b"",
                   "'application/x-www-form-urlencoded'"),
    "multipart": ({"content-type": "multipart/form-data; boundary=b"}, b"--b--\r\n",
                  "'multipart/form-data'"),
    "no content type": ({}, b'{"reason": "x"}', "a body without a content type"),
}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _unsafe_routes(client: TestClient[Any], incident_id: str) -> list[tuple[str, str]]:
    found = [(m, p) for m, p in routes(client, fill=incident_id) if m in UNSAFE]
    # the walk is not empty: at least these (the replay and reset routes come on top)
    assert {p.replace(incident_id, "ID") for _, p in found} >= {
        *(f"/{name}" for name in RECEIVERS), "/api/incidents/ID/approve",
        "/api/incidents/ID/reject", "/api/pause", "/api/resume", "/api/playbooks/reload",
        "/api/simulate", "/incidents/ID/approve", "/incidents/ID/reject"}
    return found


def _credentials(path: str) -> dict[str, Any]:
    """What the route takes from a legitimate caller: a receiver key and a real payload, or
    the admin key (dashboard, /api)."""
    endpoint = path.lstrip("/")
    if endpoint in RECEIVERS:
        return {"headers": receiver_headers(endpoint), "json": load_sample(SAMPLE_OF[endpoint])}
    return {"headers": admin_headers()}


def _is_page(path: str) -> bool:
    return not path.startswith("/api/") and path.lstrip("/") not in RECEIVERS


def _no_cors(response: Any) -> None:
    assert [h for h in response.headers if h.lower().startswith("access-control-")] == []


def _snapshot(seeded: Seeded) -> tuple[Any, ...]:
    """Everything a state-changing route could change: pause, incidents, audit, inbox."""
    db = seeded.rig.db
    return (state.pause_state(db),
            [(i.id, i.state) for i in incidents_store.list_incidents(db, limit=100)],
            audit_store.head(db), len(inbox.list_events(db, limit=1000)))


@pytest.mark.parametrize("variant", list(FOREIGN))
def test_every_state_changing_route_refuses_a_request_from_another_site(
    dash: TestClient[Any], seeded: Seeded, variant: str
) -> None:
    foreign, detail = FOREIGN[variant]
    guards.pause(seeded.rig.db, "alice")  # a cross-site /api/resume must leave it paused
    before = _snapshot(seeded)
    walked = _unsafe_routes(dash, seeded.adf.id)
    for method, path in walked:
        call = _credentials(path)
        response = dash.request(method, path, **{**call, "headers": {**call["headers"],
                                                                      **foreign}})
        assert response.status_code == 403, (method, path, response.text)
        _no_cors(response)
        if _is_page(path):
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert "<title>Refused: request from another site · Remediator</title>" in \
                response.text
            assert f'<p class="error">{escape(detail)}</p>' in response.text
        else:
            assert response.json() == {"error": "cross_site_request", "detail": detail}, path
    assert _snapshot(seeded) == before
    assert state.pause_state(seeded.rig.db).paused
    assert incidents_store.get(seeded.rig.db, seeded.adf.id).state == "waiting_approval"
    assert value(scrape(dash), "remediator_rejections_total",
                 reason="cross_site") == len(walked)


@pytest.mark.parametrize("variant", list(FOREIGN))
def test_another_site_gets_no_login_prompt(client: TestClient[Any], variant: str) -> None:
    # Refused before the credentials are looked at: a 401 with a Basic challenge would make
    # the operator's browser ask for the admin key on behalf of the other site's form.
    foreign, _ = FOREIGN[variant]
    for method, path in _unsafe_routes(client, "inc_1"):
        response = client.request(method, path, headers=foreign)
        assert response.status_code == 403, (method, path)
        assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("body", list(FORM_BODIES))
def test_api_refuses_every_body_an_html_form_can_send(
    dash: TestClient[Any], seeded: Seeded, body: str
) -> None:
    headers, content, sent = FORM_BODIES[body]
    guards.pause(seeded.rig.db, "alice")
    before = _snapshot(seeded)
    walked = [(m, p) for m, p in _unsafe_routes(dash, seeded.adf.id) if p.startswith("/api/")]
    for method, path in walked:
        response = dash.request(method, path, content=content,
                                headers={**admin_headers(), **headers})
        assert (response.status_code, response.json()) == (415, {
            "error": "unsupported_media_type",
            "detail": f"expected Content-Type: application/json (or no body), got {sent}: "
                      "/api takes no body that an HTML form can send"}), (method, path)
    assert _snapshot(seeded) == before


@pytest.mark.parametrize("variant", list(SAME))
def test_every_state_changing_route_takes_same_origin_and_non_browser_requests(
    dash: TestClient[Any], seeded: Seeded, variant: str
) -> None:
    same = SAME[variant]
    for method, path in _unsafe_routes(dash, seeded.old.id):
        call = _credentials(path)
        response = dash.request(method, path, follow_redirects=False,
                                **{**call, "headers": {**call["headers"], **same}})
        # the handler ran and gave its own answer (200, 202, 303, 409 for an incident decided
        # already, 503 no_engine: the dashboard's app has no engine), not the guard's or auth's
        assert response.status_code not in (401, 403, 415), (method, path, response.text)
        assert response.status_code < 500 or response.json()["error"] == "no_engine", path
        _no_cors(response)
    db = seeded.rig.db
    assert incidents_store.get(db, seeded.old.id).state == "remediating"  # the first approve
    api = {**admin_headers(), **same}
    assert dash.post("/api/pause", headers=api).json() == {"paused": True, "who": "admin"}
    assert state.pause_state(db).paused
    assert dash.post("/api/resume", headers=api).json() == {"paused": False, "who": "admin"}
    assert not state.pause_state(db).paused
    reject = dash.post(f"/api/incidents/{seeded.adf.id}/reject", json={"reason": "planned"},
                       headers=api)
    assert reject.json() == {"id": seeded.adf.id, "decision": "rejected", "who": "admin"}


def test_the_dashboard_form_from_its_own_page_approves(dash: TestClient[Any],
                                                      seeded: Seeded) -> None:
    response = dash.post(f"/incidents/{seeded.adf.id}/approve", follow_redirects=False,
                         headers={**admin_headers(), "sec-fetch-site": "same-origin",
                                  "origin": SELF, "referer": f"{SELF}/incidents/{seeded.adf.id}",
                                  "content-type": "application/x-www-form-urlencoded"})
    assert (response.status_code, response.headers["location"]) == (
        303, f"/incidents/{seeded.adf.id}")
    incident = incidents_store.get(seeded.rig.db, seeded.adf.id)
    assert (incident.state, incident.reason) == ("remediating", "approved by admin (dashboard)")


def test_no_route_ever_answers_a_cors_preflight_or_request(dash: TestClient[Any],
                                                           seeded: Seeded) -> None:
    preflight = {"origin": "https://evil.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type, x-api-key, authorization"}
    walked = routes(dash, fill=seeded.adf.id)
    for _, path in walked:
        answer = dash.options(path, headers={**admin_headers(), **preflight})
        assert answer.status_code < 500, path
        _no_cors(answer)
    for method, path in walked:
        if method in ("GET", "HEAD"):
            _no_cors(dash.request(method, path, headers={**admin_headers(),
                                                         "origin": "https://evil.example"}))
