"""Intake wakes the engine: a committed webhook is claimed at once, not at the next poll.

The service polls the inbox only once an hour here, so only the group-commit writer's call to
``Service.wake`` can get the event processed within the test's bound.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from engine.config import Secret, Settings
from engine.runtime.service import Service
from engine.store import inbox
from engine.store.db import Database
from receivers.app import create_app
from tests.fixtures.common import load_sample

KEY = "rk-wake-5d21c7"


def test_a_committed_webhook_is_processed_without_waiting_for_the_poll(
    db: Database, tmp_path: Path
) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "rules.yaml").write_text(
        "name: wake\n"
        "rules:\n"
        "  - id: note-it\n"
        "    match: {source: adf}\n"
        "    actions: [{action: noop}]\n"
    )
    settings = Settings(db=str(tmp_path / "remediator.db"), playbooks=str(playbooks),
                        api_keys=(Secret(KEY),))
    service = Service(settings, db, poll_s=3600, fallback_poll_s=3600)
    with TestClient(create_app(settings, db, service=service)) as client:
        time.sleep(0.2)  # let the worker make its first (empty) claim and go to sleep
        response = client.post("/azure-monitor", json=load_sample("seed/adf-test-alert.json"),
                               headers={"x-api-key": KEY})
        assert response.status_code == 202, response.text
        event_id = response.json()["event_id"]
        state = _state_within(db, event_id, seconds=30)
    assert state == "done"


def _state_within(db: Database, event_id: str, *, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stored = inbox.get(db, event_id)
        if stored is not None and stored.state not in ("pending", "processing"):
            return stored.state
        time.sleep(0.02)
    stored = inbox.get(db, event_id)
    return stored.state if stored else None
