"""The dashboard's screenshots in docs/img: the incident list and an incident page, at 1366 px
(a desk) and at 390 px (a phone).

``remediator demo`` runs the whole product against the loopback emulators and is left serving;
one more Data Factory failure is posted so that an incident is still under way (its rerun
waits 15 minutes); then Debian's chromium, logged in with the demo's admin key, takes the
pictures. Nothing leaves the machine. With Pillow (the ``bench`` extra) each PNG is stored
with a 256-colour palette, a third of its size.

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


def _post_pending_failure(base: str, receiver_key: str, db: Path) -> None:
    """The blob-missing failure again, as a new alert: the rule waits 15 minutes before its
    rerun, so the incident is pending when the pictures are taken."""
    body = json.loads(SAMPLE.read_text())
    essentials = body["data"]["essentials"]
    essentials["alertId"] = essentials["alertId"].rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
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


def _incident(db: Path) -> str:
    """The first blob-missing incident: enriched, rerun, verified, resolved."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT id FROM incidents WHERE rule_id = 'adf-source-blob-missing' "
                           "AND state = 'resolved' ORDER BY opened_ms LIMIT 1").fetchone()
    return str(row[0])


def _shoot(base: str, admin_key: str, incident_id: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    taken = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"])
        for width, height, scale, full in ((1366, 900, 1, True), (390, 844, 2, False)):
            phone = width < 500
            context = browser.new_context(
                http_credentials={"username": "on-call", "password": admin_key},
                viewport={"width": width, "height": height}, device_scale_factor=scale,
                is_mobile=phone, has_touch=phone)
            page = context.new_page()
            for name, path in (("list", "/"), ("incident", f"/incidents/{incident_id}")):
                page.goto(base + path)
                target = out / f"dashboard-{name}-{width}.png"
                page.screenshot(path=str(target), full_page=full)
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
            for path in _shoot(base, admin_key, _incident(db), out):
                _palette(path)
                print(f"{path} ({path.stat().st_size // 1024} KiB)")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
