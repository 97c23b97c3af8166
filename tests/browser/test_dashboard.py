"""The dashboard in chromium: log in with basic auth, filter, open an incident, approve it;
replay a parked event on a phone-sized screen."""

from __future__ import annotations

from typing import Any

import pytest

from engine.store import inbox
from tests.fixtures.app import ADMIN_KEY
from tests.fixtures.dashboard import Seeded, park_one


def test_filter_open_and_approve(browser: Any, served: str, seeded: Seeded) -> None:
    context = browser.new_context(http_credentials={"username": "ops", "password": ADMIN_KEY})
    page = context.new_page()
    page.goto(served + "/")
    assert page.locator("#mode").inner_text() == "DRY-RUN"
    assert page.locator("#incidents tbody tr").count() == 4

    page.select_option("select[name=state]", "waiting_approval")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/?state=waiting_approval*")
    rows = page.locator("#incidents tbody tr")
    assert rows.count() == 2
    assert sorted(rows.locator("td.state").all_inner_texts()) == ["waiting_approval"] * 2

    page.click(f"a[href='/incidents/{seeded.adf.id}']")
    page.wait_for_url(f"**/incidents/{seeded.adf.id}")
    assert page.locator("#state").inner_text() == "waiting_approval"
    page.click("#approve")
    page.wait_for_selector("#state.state-remediating")
    assert page.locator("#state").inner_text() == "remediating"
    assert page.locator("#approve").count() == 0
    assert "approval" in page.locator("#timeline").inner_text()
    context.close()


def test_without_credentials_the_browser_is_refused(browser: Any, served: str) -> None:
    from playwright.sync_api import Error

    context = browser.new_context()
    # the Basic challenge makes the browser ask for credentials; headless, it has none
    with pytest.raises(Error, match="net::ERR_INVALID_AUTH_CREDENTIALS"):
        context.new_page().goto(served + "/")
    response = context.request.get(served + "/")
    assert response.status == 401
    assert response.headers["www-authenticate"] == 'Basic realm="remediator-admin"'
    context.close()


def test_replay_a_parked_event_on_a_phone(browser: Any, served: str, seeded: Seeded) -> None:
    event_id = park_one(seeded)
    context = browser.new_context(http_credentials={"username": "ops", "password": ADMIN_KEY},
                                  viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(served + "/")
    assert page.locator("#parked-count").inner_text() == "Parked events: 1"
    # laid out for the phone's width (not a desktop page zoomed out), nothing sideways
    assert page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [
        390, 390]
    page.tap("#parked-count a")
    page.wait_for_url("**/events/parked")
    card = page.locator(f"#parked-{event_id}")
    assert card.locator(".claims").inner_text() == "5"
    assert card.locator(".reason").inner_text().startswith("claimed 5 times without finishing")
    # nothing wider than the phone: no sideways scrolling, the button fully on screen
    assert page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]") == [
        390, 390]
    box = card.locator("button").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert box["height"] >= 40  # a thumb's target

    card.locator("input[name=reason]").fill("poison fixed")
    card.locator("button").tap()
    page.wait_for_selector("#replayed")
    assert page.locator("#replayed").inner_text() == (
        f"{event_id} is pending again (replayed by ops (dashboard): poison fixed).")
    assert page.locator("#parked .card").count() == 0
    stored = inbox.get(seeded.rig.db, event_id)
    assert stored is not None and (stored.state, stored.attempts) == ("pending", 0)
    context.close()
