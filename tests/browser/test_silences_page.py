"""The silences page in chromium at 1366 and 390 px: add a silence with the form (the author
is the signed-in user), see it hold a failure, expire it early; a bad matcher is refused with
the reason and what was typed kept; nothing scrolls sideways."""

from __future__ import annotations

from typing import Any

import pytest

from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from tests.engine.actions.conftest import adf_event
from tests.fixtures.app import ADMIN_KEY
from tests.fixtures.dashboard import Seeded

DESK, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
WIDTH = "[window.innerWidth, document.documentElement.scrollWidth]"


@pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["1366px", "390px"])
def test_add_a_silence_see_it_hold_and_expire_it(browser: Any, served: str, seeded: Seeded,
                                                 viewport: dict[str, int]) -> None:
    context = browser.new_context(http_credentials={"username": "alice", "password": ADMIN_KEY},
                                  viewport=viewport, is_mobile=viewport == PHONE,
                                  has_touch=viewport == PHONE)
    page = context.new_page()
    page.goto(served + "/")
    page.click("nav a[href='/silences']")
    page.wait_for_url("**/silences")
    assert page.locator("#silences .empty").inner_text().startswith("No active silence")

    page.fill("#matchers", "resource=~pl_ingest_.*\nattributes.factory=" + "f" * 150)
    page.fill("#duration", "2h")
    page.fill("#comment", "ADF upgrade CHG-1234")
    page.click("#add-silence button")
    page.wait_for_selector("#silence-done")
    [card] = page.locator("#silences .card").all()
    silence_id = card.locator(".silence-id").inner_text().split(" ")[0]
    assert card.locator(".author").inner_text() == "alice"
    assert card.locator(".comment").inner_text() == "ADF upgrade CHG-1234"
    assert card.locator(".matchers").inner_text() == (
        "resource=~pl_ingest_.*, attributes.factory=" + "f" * 150)
    assert page.evaluate(WIDTH) == [viewport["width"]] * 2
    box = card.locator("button").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    assert box["height"] >= 40

    # the silence holds a failure it matches (the factory matcher does not: drop it first)
    page.click(f"#silence-{silence_id} button")
    page.wait_for_selector(f"#ended-{silence_id}")
    assert "(expired by alice)" in page.locator(f"#ended-{silence_id}").inner_text()
    page.fill("#matchers", "resource=~pl_ingest_.*")
    page.fill("#comment", "ADF upgrade CHG-1234")
    page.click("#add-silence button")
    page.wait_for_selector("#silence-done")
    held_by = page.locator("#silences .silence-id").inner_text().split(" ")[0]
    event_id = seeded.rig.deliver(adf_event(dedup_key="azmon:held:Fired", run_id="held-run",
                                            resource="pl_ingest_held"))
    seeded.worker.drain()
    [held] = [i for i in incidents_store.list_incidents(seeded.rig.db, limit=100)
              if i.event_id == event_id]
    assert (held.state, held.reason.split(" until ")[0]) == ("ignored",
                                                             f"silenced by {held_by}")
    assert [(r.actor, r.data["decision"])
            for r in audit_store.list_records(seeded.rig.db, kind="silence")] == [
        ("alice", "created"), ("alice", "expired"), ("alice", "created")]
    context.close()


def test_a_bad_matcher_is_refused_with_the_reason(browser: Any, served: str) -> None:
    context = browser.new_context(http_credentials={"username": "alice", "password": ADMIN_KEY},
                                  viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(served + "/silences")
    page.fill("#matchers", "colour=red")
    page.fill("#comment", "why not")
    with page.expect_response(lambda r: r.url.endswith("/silences")) as answer:
        page.click("#add-silence button")
    assert answer.value.status == 400
    assert page.locator("#silence-error").inner_text() == (
        "matcher 'colour': unknown field; expected one of source, kind, target, resource, "
        "resource_id, error_code, failure_type, run_id or attributes.<path>")
    assert page.locator("#matchers").input_value() == "colour=red"
    assert page.locator("#silences .card").count() == 0
    assert page.evaluate(WIDTH) == [390, 390]
    context.close()
