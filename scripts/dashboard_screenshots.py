"""The dashboard's screenshots in docs/img: the incident list, an escalated incident that a
person has in hand, and an incident under way, at 1366 px (a desk) and at 390 px (a phone).

``remediator demo`` runs the whole product against the loopback emulators and is left serving;
one more Data Factory failure is posted, fired now, so that an incident is still under way
(its rerun waits 15 minutes); a person (``alice``, through the API) acknowledges the escalated
finance incident, assigns it and leaves a note; then Debian's chromium, logged in with the
demo's admin key, takes the pictures: the whole page at 1366 px, the page down to the end of
its *On call* part (the list: its first three incidents) at 390 px. A page that scrolls
sideways stops the script. Nothing leaves the machine. With Pillow (the ``bench`` extra) each
PNG is stored with a 256-colour palette, a third of its size.

    .venv/bin/python scripts/dashboard_screenshots.py docs/img
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts._harness import SAMPLE, free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SERVING = re.compile(r"serving on (\S+) until Ctrl-C: dashboard \S+ \(admin key (\S+)\), "
                     r"receiver key (\S+)")


def _start_demo(db: Path, port: int) -> tuple[subprocess.Popen[str], str, str, str]:
    """``remediator demo`` serving on ``port``; (process, base URL, admin key, receiver key)."""
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "remediator"), "demo", "--db", str(db),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env, cwd=ROOT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        found = SERVING.search(line)
        if found:
            return proc, found[1], found[2], found[3]
        if time.monotonic() > deadline:
            break
    proc.terminate()
    raise SystemExit("remediator demo did not start serving")


def _query(db: Path, sql: str) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute(sql).fetchone()
    if row is None:
        raise SystemExit(f"the demo's database has no answer to: {sql}")
    return str(row[0])


def _post_pending_failure(base: str, receiver_key: str, db: Path) -> None:
    """The blob-missing failure again, as a new alert fired now about a run the emulator
    knows (the demo's first one): the rule waits 15 minutes before its rerun, so the
    incident is pending when the pictures are taken (an alert a day old would be recorded,
    not remediated)."""
    event = json.loads(_query(db, "SELECT event FROM incidents WHERE rule_id = "
                                  "'adf-source-blob-missing' ORDER BY opened_ms LIMIT 1"))
    body = json.loads(SAMPLE.read_text().replace("7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11",
                                                 event["run_id"]))
    essentials = body["data"]["essentials"]
    essentials["alertId"] = essentials["alertId"].rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
    essentials["firedDateTime"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    answer = httpx.post(f"{base}/azure-monitor", json=body,
                        headers={"x-api-key": receiver_key}, timeout=10)
    answer.raise_for_status()
    event_id = answer.json()["event_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            done = conn.execute("SELECT state FROM events WHERE id = ?", (event_id,)).fetchone()
        if done and done[0] == "done":
            return
        time.sleep(0.2)
    raise SystemExit(f"the posted failure {event_id} was not processed within 60 s")


def _escalated(db: Path) -> str:
    """The finance incident: three reruns failed verification, then a ticket; escalated."""
    return _query(db, "SELECT id FROM incidents WHERE resource = 'pl_load_finance_monthly' "
                      "AND state = 'escalated' ORDER BY opened_ms LIMIT 1")


def _pending(db: Path) -> str:
    """The incident of the failure posted last: its rerun waits."""
    return _query(db, "SELECT id FROM incidents WHERE state = 'remediating' "
                      "ORDER BY opened_ms DESC LIMIT 1")


def _take_in_hand(base: str, admin_key: str, incident_id: str) -> None:
    """What the on-call engineer does first: acknowledge, assign, leave a note (the API, as
    ``alice``: the basic-auth user name is who the audit names)."""
    with httpx.Client(base_url=f"{base}/api/incidents/{incident_id}", timeout=10,
                      auth=("alice", admin_key)) as api:
        for path, body in (("/ack", None), ("/assign", {"assignee": "bob"}),
                           ("/notes", {"text": "Finance drops the file late at month end; "
                                               "asked them to re-send it, re-run after."})):
            api.post(path, json=body).raise_for_status()


PAGES = (("list", "/", "#incidents tbody tr:nth-child(3)"),
         ("incident", "/incidents/{escalated}", "#handling"),
         ("pending", "/incidents/{pending}", "#handling"))
"""Each picture: its name, its path, and where the phone's picture ends (the bottom of it)."""


def _shoot(base: str, admin_key: str, ids: dict[str, str], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    taken = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"])
        for width, height, scale in ((1366, 900, 1), (390, 844, 2)):
            phone = width < 500
            context = browser.new_context(
                http_credentials={"username": "on-call", "password": admin_key},
                viewport={"width": width, "height": height}, device_scale_factor=scale,
                is_mobile=phone, has_touch=phone)
            page = context.new_page()
            for name, path, end in PAGES:
                page.goto(base + path.format(**ids))
                wide = page.evaluate("document.documentElement.scrollWidth")
                if wide > width:
                    raise SystemExit(f"{path} at {width} px scrolls sideways ({wide} px wide)")
                target = out / f"dashboard-{name}-{width}.png"
                clip = None
                if phone:
                    bottom = page.evaluate("s => document.querySelector(s)"
                                           ".getBoundingClientRect().bottom + window.scrollY",
                                           end)
                    clip = {"x": 0, "y": 0, "width": width, "height": bottom + 4}
                page.screenshot(path=str(target), full_page=True, clip=clip)
                taken.append(target)
            context.close()
        browser.close()
    return taken


def _palette(path: Path) -> None:
    """Store ``path`` with a 256-colour palette (flat UI colours survive it); as it is
    without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "img"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        proc, base, admin_key, receiver_key = _start_demo(db, free_port())
        try:
            _post_pending_failure(base, receiver_key, db)
            escalated = _escalated(db)
            _take_in_hand(base, admin_key, escalated)
            ids = {"escalated": escalated, "pending": _pending(db)}
            for path in _shoot(base, admin_key, ids, out):
                _palette(path)
                print(f"{path} ({path.stat().st_size // 1024} KiB)")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
