"""The dashboard in chromium: log in with basic auth, filter, open an incident, approve it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.app import ADMIN_KEY
from tests.fixtures.dashboard import Seeded


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
