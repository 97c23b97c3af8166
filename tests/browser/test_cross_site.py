"""Cross-site request forgery and framing in chromium: the operator is logged in to the app
(basic auth, cached by the browser for the app's origin only) and opens a page of another
origin that auto-submits forms to /api/resume, /api/incidents/<id>/approve and the dashboard's
approve, and fetch()es them with credentials. The engine stays paused and the incident waiting
(read back from the database); the dashboard's own buttons and a same-origin fetch still work;
the pages render under the Content-Security-Policy without a violation and cannot be framed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from engine import guards
from engine.store import incidents as incidents_store
from engine.store import state
from tests.browser.conftest import Attacker
from tests.fixtures.app import ADMIN_KEY
from tests.fixtures.dashboard import Seeded

AUTO_SUBMIT = """<!doctype html><title>You won a prize</title>
<form id="f" method="post" action="{action}"{enctype}>{fields}</form>
<script>document.getElementById("f").submit()</script>"""
FETCHES = """<!doctype html><title>loading</title><script>
const calls = {calls};
(async () => {{
  const seen = [];
  for (const [url, init] of calls) {{
    try {{ const r = await fetch(url, init); seen.push(r.type + " " + r.status); }}
    catch (e) {{ seen.push("refused " + e.name); }}
  }}
  document.title = "done " + JSON.stringify(seen);
}})();
</script>"""
WATCH_CSP = """document.addEventListener("securitypolicyviolation", e =>
  console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI));"""


def _operator(browser: Any, served: str) -> tuple[Any, Any, list[str]]:
    """A browser context of the logged-in operator: credentials for the app's origin only,
    cached by chromium at the first page; every console message is kept."""
    context = browser.new_context(http_credentials={"username": "ops", "password": ADMIN_KEY,
                                                    "origin": served})
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    assert page.goto(served + "/").status == 200
    return context, page, console


def _still_waiting(seeded: Seeded) -> None:
    assert state.pause_state(seeded.rig.db).paused
    for incident in (seeded.adf, seeded.old):
        found = incidents_store.get(seeded.rig.db, incident.id)
        assert found is not None and found.state == "waiting_approval"


@pytest.mark.parametrize(("host", "site"), [("localhost", "cross-site"),
                                            ("127.0.0.1", "same-site")])
def test_another_origin_cannot_resume_or_approve(browser: Any, served: str, seeded: Seeded,
                                                 attacker: Attacker, host: str,
                                                 site: str) -> None:
    guards.pause(seeded.rig.db, "alice")
    context, page, _ = _operator(browser, served)
    forms = {
        "/resume": (f"{served}/api/resume", "", ""),
        "/approve-api": (f"{served}/api/incidents/{seeded.adf.id}/approve", "", ""),
        "/approve-page": (f"{served}/incidents/{seeded.old.id}/approve", "", ""),
        "/reject-text": (f"{served}/api/incidents/{seeded.adf.id}/reject",
                         ' enctype="text/plain"', '<input name=\'{"reason": "x", "y": "\' '
                                                  'value=\'"}\'>'),
    }
    for path, (action, enctype, fields) in forms.items():
        url = attacker.page(path, AUTO_SUBMIT.format(action=action, enctype=enctype,
                                                     fields=fields), host=host)
        with page.expect_navigation(url=action):
            page.goto(url)
        _still_waiting(seeded)
        # chromium said where the form came from, and that is what was refused
        assert f"Sec-Fetch-Site is '{site}'" in page.inner_text("body"), path

    calls = [
        [f"{served}/api/resume", {"method": "POST", "mode": "no-cors",
                                  "credentials": "include"}],
        [f"{served}/api/incidents/{seeded.adf.id}/approve",
         {"method": "POST", "mode": "no-cors", "credentials": "include",
          "headers": {"content-type": "text/plain"}, "body": "{}"}],
        [f"{served}/api/resume", {"method": "POST", "credentials": "include",
                                  "headers": {"content-type": "application/json"},
                                  "body": "{}"}],
    ]
    page.goto(attacker.page("/fetch", FETCHES.format(calls=json.dumps(calls)), host=host))
    page.wait_for_function("document.title.startsWith('done')")
    _still_waiting(seeded)
    # The page learns nothing either: the no-cors answers are withheld from it
    # (Cross-Origin-Resource-Policy), and JSON needs a CORS preflight, never granted.
    assert page.title() == 'done ["refused TypeError","refused TypeError","refused TypeError"]'

    # the operator's own pages still act: the dashboard button and a same-origin fetch
    page.goto(f"{served}/incidents/{seeded.adf.id}")
    page.click("#approve")
    page.wait_for_selector("#state.state-remediating")
    answer = page.evaluate("""async () => {
        const r = await fetch("/api/resume", {method: "POST"});
        return [r.status, await r.json()]; }""")
    assert answer == [200, {"paused": False, "who": "ops"}]
    assert not state.pause_state(seeded.rig.db).paused
    found = incidents_store.get(seeded.rig.db, seeded.adf.id)
    assert found is not None and found.reason == "approved by ops (dashboard)"
    context.close()


def test_pages_render_under_the_policy_and_are_never_framed(
    browser: Any, served: str, seeded: Seeded, attacker: Attacker
) -> None:
    context, page, console = _operator(browser, served)
    pages = ["/", "/?state=waiting_approval", "/playbooks", "/audit", "/audit?verify=true",
             *(f"/incidents/{i.id}" for i in (seeded.adf, seeded.dbx, seeded.unmatched))]
    for path in pages:
        response = page.goto(served + path)
        assert response.status == 200, path
        assert response.headers["content-security-policy"] == (
            "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
        # the stylesheet applied
        assert page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor") \
            == "rgb(243, 244, 246)", path
    assert [m for m in console if "Content Security Policy" in m or "CSP" in m] == []
    page.goto(served + "/")
    swatches = page.locator(".legend .swatch rect")  # the chart legend, without inline style
    assert swatches.count() >= 2
    # coloured by the stylesheet's class (the first series is the source adf)
    assert swatches.first.evaluate("e => getComputedStyle(e).fill") == "rgb(124, 58, 237)"
    assert page.locator(".legend .swatch").first.bounding_box()["width"] == 10

    framing = attacker.page("/frame", '<!doctype html><title>framing</title><iframe src="'
                            f'{served}/incidents/{seeded.adf.id}" onload="document.title='
                            "'loaded'\"></iframe>")
    with page.expect_console_message(lambda m: "frame-ancestors" in m.text):
        page.goto(framing)
    page.wait_for_function("document.title === 'loaded'")
    [framed] = [f for f in page.frames if f != page.main_frame]
    framed.wait_for_url(re.compile(r"^chrome-error://"))  # an error page instead of ours
    assert framed.locator("#approve").count() == 0
    # the one violation, and the proof that the console would have shown one above
    assert [m for m in console if "Content Security Policy" in m] == [
        f"error: Framing '{served}/' violates the following Content Security Policy "
        "directive: \"frame-ancestors 'none'\". The request has been blocked.\n"]
    context.close()
