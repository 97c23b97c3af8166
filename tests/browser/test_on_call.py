"""The on-call engineer's hand in chromium, on a phone-sized screen, logged in as a named user
(``[http.users]``): acknowledge, assign, add a note, resolve by hand with a note, re-run (the
rule asks approval: the re-run waits for it), approve; every audit record says who."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.config import HttpSettings, Secret
from engine.store import audit as audit_store
from receivers.passwords import hash_password
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN, APPROVAL, SAMPLE
from tests.reliability.conftest import LiveServer

PASSWORD = "alice's own password"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def on_call(service_rig: Any) -> Iterator[tuple[Any, str]]:
    """A running engine with one incident waiting for approval, its app served by uvicorn."""
    rig = service_rig(APPROVAL, live=True, http=HttpSettings(users={
        "alice": Secret(hash_password(PASSWORD, cost=(1024, 8, 1)))}))
    rig.post("azure-monitor", load_sample(SAMPLE))
    assert rig.run() == 1
    server = LiveServer(rig.client.app, lifespan="off")
    yield rig, server.url
    server.stop()


def _fits(page: Any, selector: str) -> None:
    """No sideways scrolling, and the control fully on the 390 px screen."""
    assert page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [
        390, 390]
    box = page.locator(selector).bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector


def test_ack_assign_note_resolve_and_rerun_on_a_phone(browser: Any, on_call: Any) -> None:
    rig, url = on_call
    [incident] = rig.incidents()
    context = browser.new_context(http_credentials={"username": "alice", "password": PASSWORD},
                                  **PHONE)
    page = context.new_page()
    page.goto(f"{url}/incidents/{incident.id}")
    assert page.locator("#acked").inner_text() == "nobody yet"

    _fits(page, "#ack")
    page.tap("#ack")
    page.wait_for_selector("#acked:has-text('alice (dashboard)')")
    assert page.locator("#ack").count() == 0  # acknowledged by me: nothing more to click

    _fits(page, "#assign")
    page.fill("input[name=assignee]", "bob")
    page.tap("#assign")
    page.wait_for_selector("#assignee:has-text('bob')")

    _fits(page, "#add-note")
    page.fill("textarea[name=text]", "the blob lands late on Mondays\nasked the source team")
    page.tap("#add-note")
    page.wait_for_selector("#notes li:has-text('the blob lands late on Mondays')")

    page.goto(f"{url}/")  # the list says who has it, at a glance
    assert page.locator("#incidents .hands-line").inner_text() == (
        "acked by alice (dashboard) · → bob")
    assert page.evaluate("document.documentElement.scrollWidth") == 390
    page.goto(f"{url}/incidents/{incident.id}")

    _fits(page, "#resolve")
    page.fill("input[name=note]", "copied the blob by hand")
    page.tap("#resolve")
    page.wait_for_selector("#state.state-resolved")
    assert page.locator("#resolve").count() == 0 and page.locator("#ack").count() == 0

    _fits(page, "#rerun")
    page.tap("#rerun")
    page.wait_for_url(lambda to: "/incidents/inc_" in to and incident.id not in to)
    new_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#state.state-waiting_approval")
    assert f"a re-run of incident {incident.id}" in page.locator("#timeline").inner_text()
    _fits(page, "#approve")
    page.tap("#approve")
    page.wait_for_selector("#state.state-remediating")
    context.close()

    who = "alice (dashboard)"
    mine = [(r.kind, r.actor) for r in audit_store.list_records(
        rig.db, incident_id=incident.id) if r.actor != "engine"]
    assert mine == [("acknowledged", who), ("assignment", who), ("note", who),
                    ("action_cancelled", who), ("resolution", who), ("rerun", who)]
    rerun = [(r.kind, r.actor, r.data.get("decision")) for r in audit_store.list_records(
        rig.db, incident_id=new_id) if r.actor != "engine"]
    assert rerun == [("rerun", who, "rerun_of"), ("approval", who, "approved")]
    assert [(i.id, i.state) for i in rig.incidents()] == [
        (new_id, "remediating"), (incident.id, "resolved")]
    assert rig.incidents()[1].reason == f"resolved by hand by {who}: copied the blob by hand"


def test_the_longest_texts_an_operator_may_type_fit_a_phone(browser: Any,
                                                            on_call: tuple[Any, str]) -> None:
    """A note of 4,000 characters and an assignee of 100 without a space (a URL, a log
    line), a right-to-left note and markup: the page stays 390 px wide, the list too."""
    rig, served = on_call
    [incident] = rig.incidents()
    for path, body in ((f"/api/incidents/{incident.id}/notes", {"text": "x" * 4000}),
                       (f"/api/incidents/{incident.id}/notes",
                        {"text": "\u05e9\u05dc\u05d5\u05dd <b>bold</b> " + "y" * 300}),
                       (f"/api/incidents/{incident.id}/assign", {"assignee": "z" * 100}),
                       (f"/api/incidents/{incident.id}/ack", None)):
        assert rig.client.post(path, json=body, headers=ADMIN).status_code == 200
    context = browser.new_context(**PHONE, http_credentials={
        "username": "alice", "password": PASSWORD, "origin": served})
    page = context.new_page()
    for path in (f"/incidents/{incident.id}", "/", "/audit"):
        assert page.goto(served + path).status == 200
        assert page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [
            390, 390], path
    context.close()
