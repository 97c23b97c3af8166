"""The dashboard in chromium: log in with basic auth, filter, open an incident, approve it;
replay a parked event on a phone-sized screen; a live incident at a glance at 1366 and 390 px,
no page wider than the screen, one colour per state, updates that keep the operator's place."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine import guards
from engine.store import actions as actions_store
from engine.store import inbox
from engine.store import state as state_store
from tests.browser.test_cross_site import WATCH_CSP
from tests.engine.actions.conftest import adf_event
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


# --- a live incident at a desk and on a phone (issue 18, items 1-5) ---------------------------

DESK, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
RERUN = ("pipeline pl_ingest_sales_daily in factory adf-contoso-prod from the failed activity "
         "(recovery of run 7b1e4c52...)")
RUN_URL = ("https://adf.azure.com/en/monitoring/pipelineruns/7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"
           "?factory=%2Fsubscriptions%2F5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17%2FresourceGroups%2F"
           "rg-dataplatform-prod%2Fproviders%2FMicrosoft.DataFactory%2Ffactories%2F"
           "adf-contoso-prod")
WIDTH = "[window.innerWidth, document.documentElement.scrollWidth]"


def _operator(browser: Any, viewport: dict[str, int]) -> Any:
    phone = viewport["width"] < 500
    return browser.new_context(http_credentials={"username": "ops", "password": ADMIN_KEY},
                               viewport=viewport, is_mobile=phone, has_touch=phone)


def _run_live(seeded: Seeded) -> str:
    """Approve the ADF incident; the live worker reruns the pipeline in the sandbox. Returns
    the new run's id."""
    guards.approve(seeded.rig.db, seeded.adf.id, "alice", now=seeded.rig.clock.now())
    seeded.worker.scheduler.tick()
    [action] = actions_store.for_incident(seeded.rig.db, seeded.adf.id)
    assert (action.state, action.dry_run) == ("succeeded", False)
    return str(action.result["ref"]["run_id"])


def _open_breaker(seeded: Seeded) -> None:
    """A breaker opened on a target with a long name (the engine's own store call)."""
    state_store.record_outcome(
        seeded.rig.db, "adf-copy-failed",
        "adf:pipeline:adf-contoso-prod/pl_ingest_sales_daily_with_a_very_long_name_0123456789",
        success=False, threshold=1, cool_off_ms=3_600_000, now_ms=int(time.time() * 1000))


@pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["1366px", "390px"])
def test_a_live_incident_at_a_glance(browser: Any, served: str, seeded: Seeded,
                                     viewport: dict[str, int]) -> None:
    context = _operator(browser, viewport)
    page = context.new_page()
    # waiting for approval: both buttons on screen, big enough for a thumb
    page.goto(f"{served}/incidents/{seeded.adf.id}")
    for button in ("#approve", "#reject"):
        box = page.locator(button).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert box["height"] >= 36

    new_run = _run_live(seeded)
    page.goto(served + "/")
    row = page.locator("#incidents tbody tr", has=page.locator(
        f"a[href='/incidents/{seeded.adf.id}']"))
    assert row.locator("td.what a").first.inner_text() == "pl_ingest_sales_daily · 2200"
    assert row.locator(".message").inner_text() == "Copy failed"
    assert row.locator("td.state").inner_text() == "verifying"
    assert row.locator(".action").inner_text().startswith(f"Reran {RERUN}")
    assert row.locator(".action .status").inner_text() == "started, verifying"
    assert row.locator("a.run-link").first.get_attribute("href") == RUN_URL
    assert page.evaluate(WIDTH) == [viewport["width"]] * 2

    page.goto(f"{served}/incidents/{seeded.adf.id}")
    assert page.locator("h1").inner_text() == "pl_ingest_sales_daily · 2200"
    assert page.locator("#message").inner_text() == "Copy failed"
    assert page.locator("#run a").get_attribute("href") == RUN_URL
    assert page.locator("#actions .sentence").all_inner_texts() == [f"Reran {RERUN}"]
    assert page.locator("#actions a.run-link").inner_text() == f"ADF run {new_run[:8]}… ↗"
    assert "would" not in page.locator("main").inner_text().lower()
    assert page.locator("#pending").inner_text().startswith(
        f"Pending\nverifying ADF run {new_run[:8]}… ↗ until ")
    assert page.evaluate(WIDTH) == [viewport["width"]] * 2
    if viewport is DESK:  # the steps, not pages of JSON: all but the raw records at a glance
        assert page.evaluate("document.documentElement.scrollHeight") < 2500
    context.close()


@pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["1366px", "390px"])
def test_no_page_scrolls_sideways(browser: Any, served: str, seeded: Seeded,
                                  viewport: dict[str, int]) -> None:
    _run_live(seeded)
    park_one(seeded)
    _open_breaker(seeded)
    # a failure whose code, message and names are long words without a space (as Data
    # Factory writes them: "ErrorCode=...,'Type=Microsoft.DataTransfer....")
    long_code = "UserError" + "Unbroken" * 12
    seeded.rig.deliver(adf_event(
        resource="pl_" + "x" * 120, dedup_key="azmon:long:Fired", error_code=long_code,
        error_codes=("2200", long_code),
        message="ErrorCode=" + long_code + ",'Type=Microsoft.DataTransfer." + "y" * 600,
        attributes={**adf_event().attributes, "pipeline": "pl_" + "x" * 120,
                    "activity": "Copy_" + "z" * 50}))
    seeded.worker.drain()
    context = _operator(browser, viewport)
    page = context.new_page()
    incidents = [f"/incidents/{i.id}" for i in (seeded.adf, seeded.dbx, seeded.old,
                                                 seeded.unmatched)]
    for path in ["/", "/?state=escalated", *incidents, "/audit", "/audit?verify=true",
                 "/playbooks", "/events/parked", "/breakers"]:
        page.goto(served + path)
        # open every folded record too: long JSON wraps as well
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.evaluate(WIDTH) == [viewport["width"]] * 2, path
    # the breaker's reset is on screen
    box = page.locator("#breakers button").bounding_box()
    assert box is not None and box["x"] + box["width"] <= viewport["width"]
    context.close()


def test_one_colour_per_state_everywhere(browser: Any, served: str, seeded: Seeded) -> None:
    context = _operator(browser, DESK)
    page = context.new_page()
    page.goto(served + "/")
    colour = "(e) => getComputedStyle(e).backgroundColor"
    fill = "(e) => getComputedStyle(e).fill"
    for state, rgb in (("escalated", "rgb(185, 28, 28)"), ("resolved", "rgb(21, 128, 61)")):
        assert page.locator(f"#incidents .badge.state-{state}").first.evaluate(colour) == rgb
        assert page.locator(f".chart .bar.state-{state}").first.evaluate(fill) == rgb
        assert page.locator(f".legend rect.state-{state}").evaluate(fill) == rgb
    page.goto(f"{served}/incidents/{seeded.unmatched.id}")
    assert page.locator("#state").evaluate(colour) == "rgb(185, 28, 28)"
    page.goto(f"{served}/incidents/{seeded.dbx.id}")
    step = page.locator("#timeline li.state-resolved")
    assert step.evaluate("(e) => getComputedStyle(e).borderLeftColor") == "rgb(21, 128, 61)"
    context.close()


def test_an_update_keeps_the_operators_place(browser: Any, served: str,
                                             seeded: Seeded) -> None:
    context = _operator(browser, PHONE)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.clock.install()
    page.goto(f"{served}/incidents/{seeded.adf.id}")
    assert page.locator("#updated").inner_text() == "updates every 15 s"
    # the operator opens a raw record, starts a reason, scrolls to the timeline
    raw = page.locator("#timeline details").nth(1)
    raw.locator("summary").tap()
    page.fill("input[name=reason]", "the data team is on it")
    page.locator("h1").tap()  # the field loses the focus
    page.evaluate("window.scrollTo(0, document.getElementById('timeline').offsetTop)")
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0

    # the same failure again: the incident counts two events
    seeded.rig.deliver(adf_event(dedup_key="azmon:again:Fired"))
    seeded.worker.drain()
    page.clock.run_for(15_000)
    page.locator("html[data-updates='1']").wait_for(state="attached")
    assert "2 events" in page.locator("#summary").inner_text()
    assert raw.evaluate("(d) => d.open") is True
    assert page.input_value("input[name=reason]") == "the data team is on it"
    assert page.evaluate("window.scrollY") == scrolled
    assert page.locator("#updated").inner_text().startswith("updated ")

    # approved elsewhere: the state and the timeline change, the record stays open
    guards.approve(seeded.rig.db, seeded.adf.id, "alice", now=seeded.rig.clock.now())
    page.clock.run_for(15_000)
    page.locator("html[data-updates='2']").wait_for(state="attached")
    assert page.locator("#state").inner_text() == "remediating"
    assert "Approved by alice" in page.locator("#timeline").inner_text()
    assert raw.evaluate("(d) => d.open") is True
    assert [m for m in console if "Content Security Policy" in m or "CSP" in m] == []
    context.close()


def test_the_state_stays_a_pill_beside_a_long_why(browser: Any, served: str,
                                                  seeded: Seeded) -> None:
    """An escalation's reason quotes the cloud's whole error (15 lines at a desk): the state
    beside it keeps its own height, not the row's."""
    from engine import lifecycle
    from engine.store import incidents as incidents_store

    incident = incidents_store.get(seeded.rig.db, seeded.adf.id)
    assert incident is not None
    why = "verification failed: " + "ErrorCode=UserErrorSourceBlobNotExist, " * 30
    assert lifecycle.escalate(seeded.rig.db, incident, why, now=seeded.rig.clock.now())
    context = _operator(browser, DESK)
    page = context.new_page()
    page.goto(f"{served}/incidents/{incident.id}")
    pill = page.locator("#state").bounding_box()
    reason = page.locator("#state ~ dd").first.bounding_box()
    assert pill is not None and reason is not None
    assert reason["height"] > 100 and pill["height"] < 30
    context.close()
