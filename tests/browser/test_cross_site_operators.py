"""The operators' hand (issue 18) from another site, in chromium: the logged-in operator opens
a page that auto-submits the dashboard's acknowledge, assign, note, resolve and re-run forms,
and fetch()es the same /api routes with credentials. Nothing is acknowledged, assigned,
noted, resolved nor re-run (read back from the database and the audit log)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.store import audit as audit_store
from engine.store import handling as handling_store
from engine.store import incidents as incidents_store
from tests.browser.conftest import Attacker
from tests.browser.test_cross_site import AUTO_SUBMIT, FETCHES, _operator
from tests.fixtures.dashboard import Seeded

HAND_KINDS = ("acknowledged", "assignment", "note", "rerun", "resolution")


def _untouched(seeded: Seeded) -> None:
    db = seeded.rig.db
    for incident in (seeded.adf, seeded.dbx, seeded.unmatched):
        assert handling_store.get(db, incident.id) == handling_store.Handling(
            incident_id=incident.id)
        assert handling_store.notes(db, incident.id) == []
        found = incidents_store.get(db, incident.id)
        assert found is not None and found.state == incident.state
    assert [r.kind for r in audit_store.list_records(db, limit=500)
            if r.kind in HAND_KINDS and r.actor != "engine"] == []


@pytest.mark.parametrize(("host", "site"), [("localhost", "cross-site"),
                                            ("127.0.0.1", "same-site")])
def test_another_origin_cannot_lay_a_hand_on_an_incident(browser: Any, served: str,
                                                         seeded: Seeded, attacker: Attacker,
                                                         host: str, site: str) -> None:
    context, page, _ = _operator(browser, served)
    adf, done = seeded.adf.id, seeded.unmatched.id
    forms = {
        "/ack": (f"/incidents/{adf}/ack", ""),
        "/assign": (f"/incidents/{adf}/assign", "<input name=assignee value=mallory>"),
        "/note": (f"/incidents/{adf}/notes", "<input name=text value=pwned>"),
        "/resolve": (f"/incidents/{adf}/resolve", "<input name=note value=gone>"),
        "/rerun": (f"/incidents/{done}/rerun", ""),
        "/api-note": (f"/api/incidents/{adf}/notes",
                      '<input name=\'{"text": "x", "y": "\' value=\'"}\'>'),
    }
    for path, (action, fields) in forms.items():
        enctype = ' enctype="text/plain"' if path.startswith("/api") else ""
        url = attacker.page(path, AUTO_SUBMIT.format(action=served + action, enctype=enctype,
                                                     fields=fields), host=host)
        with page.expect_navigation(url=served + action):
            page.goto(url)
        assert f"Sec-Fetch-Site is '{site}'" in page.inner_text("body"), path
        _untouched(seeded)

    calls = [[f"{served}/api/incidents/{adf}/{route}",
              {"method": "POST", "mode": "no-cors", "credentials": "include",
               "headers": {"content-type": "text/plain"}, "body": body}]
             for route, body in (("ack", ""), ("assign", '{"assignee": "mallory"}'),
                                 ("notes", '{"text": "pwned"}'),
                                 ("resolve", '{"note": "gone"}'))]
    calls.append([f"{served}/api/incidents/{done}/rerun",
                  {"method": "POST", "credentials": "include",
                   "headers": {"content-type": "application/json"}, "body": "{}"}])
    page.goto(attacker.page("/fetch", FETCHES.format(calls=json.dumps(calls)), host=host))
    page.wait_for_function("document.title.startsWith('done')")
    assert page.title() == "done " + json.dumps(["refused TypeError"] * 5).replace(", ", ",")
    _untouched(seeded)

    # the operator's own page still acts
    page.goto(f"{served}/incidents/{adf}")
    page.click("#ack")
    page.wait_for_url(f"{served}/incidents/{adf}#handling")
    assert handling_store.get(seeded.rig.db, adf).acked_by == "ops (dashboard)"
    context.close()
