"""The security headers on every answer: every route of the app walked with and without
credentials, and the answers of the router and the error handlers (404, 405, 413, 415, 403);
and pages that the policy lets render as they are: no script, no inline style, nothing from
another origin. That they render in chromium under the policy: tests/browser/test_cross_site.py.
"""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import TestClient

from engine.config import RECEIVERS
from tests.fixtures.app import admin_headers, receiver_headers, routes
from tests.fixtures.common import load_sample
from tests.fixtures.dashboard import Seeded

EXPECTED = {
    "content-security-policy": ("default-src 'self'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "cross-origin-resource-policy": "same-origin",
}
CONSOLES = ("https://adf.azure.com/", "https://web.azuresynapse.net/", "https://portal.azure.com/")
"""Where the dashboard links away: the failed run's page in its cloud console."""


def _secured(response: Any, where: Any) -> None:
    """Each header once, with its value (a handler's own value is replaced, not doubled)."""
    got = {name: response.headers.get_list(name) for name in EXPECTED}
    assert got == {name: [value] for name, value in EXPECTED.items()}, where


def _credentials(path: str) -> dict[str, Any]:
    endpoint = path.lstrip("/")
    if endpoint in RECEIVERS:
        return {"headers": receiver_headers(endpoint),
                "json": load_sample("seed/adf-action-group-alert.json")}
    return {"headers": admin_headers()}


def test_every_route_answers_with_the_security_headers(dash: TestClient[Any],
                                                       seeded: Seeded) -> None:
    walked = routes(dash, fill=seeded.adf.id)
    statuses = set()
    for method, path in walked:
        if path.startswith("/static/"):
            path = "/static/dashboard.css"
        for call in (_credentials(path), {}):
            response = dash.request(method, path, follow_redirects=False, **call)
            statuses.add(response.status_code)
            _secured(response, (method, path, response.status_code))
        _secured(dash.options(path), ("OPTIONS", path))
    # the walk met the answers that matter: pages and JSON, 202, refusals, conflicts
    assert {200, 202, 401, 409} <= statuses


def test_redirects_and_errors_carry_the_security_headers_too(dash: TestClient[Any],
                                                             seeded: Seeded) -> None:
    api = admin_headers()
    answers = {
        303: dash.post(f"/incidents/{seeded.old.id}/approve", headers=api,
                       follow_redirects=False),
        404: dash.get("/api/nothing-here", headers=api),
        405: dash.delete("/api/pause", headers=api),
        413: dash.post("/azure-monitor", content=b" " * (64 * 1024 + 1),
                       headers=receiver_headers("azure-monitor")),
        415: dash.post("/api/pause", content=b"paused=1", headers={
            **api, "content-type": "application/x-www-form-urlencoded"}),
        403: dash.post("/api/resume", headers={**api, "origin": "https://evil.example"}),
        400: dash.get("/api/events?limit=0", headers=api),
    }
    for status, response in answers.items():
        assert response.status_code == status
        _secured(response, status)


def test_pages_need_nothing_the_policy_refuses(dash: TestClient[Any], seeded: Seeded) -> None:
    pages = ["/", "/?state=waiting_approval", "/?since=yesterday", "/playbooks", "/audit",
             "/audit?verify=true", "/incidents/inc_missing",
             *(f"/incidents/{i.id}" for i in (seeded.adf, seeded.dbx, seeded.old,
                                              seeded.unmatched))]
    answers = [dash.get(page, headers=admin_headers()) for page in pages]
    answers.append(dash.post("/incidents/inc_missing/approve", headers=admin_headers()))
    answers.append(dash.post(f"/incidents/{seeded.adf.id}/approve",
                             headers={**admin_headers(), "sec-fetch-site": "cross-site"}))
    assert [r.status_code for r in answers] == [200, 200, 400, 200, 200, 200, 404,
                                                200, 200, 200, 200, 409, 403]
    for page, response in zip([*pages, "409", "403"], answers, strict=True):
        html = response.text
        # no inline script: the only script is the refresh, a file of this origin
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.I | re.S)
        assert html.lower().count("<script") == len(scripts), page
        assert all((attrs, body) == (' src="/static/refresh.js" defer', "")
                   for attrs, body in scripts), page
        assert re.findall(r"\sstyle=|\son[a-z]+=", html, re.I) == [], page
        links = re.findall(r'\s(?:href|src|action)="([^"]*)"', html)
        assert links, page
        # every other link is a cloud console's page of the failed run, opened without a
        # Referer and without a handle on this page
        away = [u for u in links if not u.startswith("/") or u.startswith("//")]
        assert [u for u in away if not u.startswith(CONSOLES)] == [], page
        anchors = re.findall(r'<a ([^>]*)href="https://[^"]*"([^>]*)>', html)
        assert len(anchors) == len(away), page
        assert all('rel="noopener noreferrer external"' in before + after
                   for before, after in anchors), page
