"""A real browser (Debian's chromium through Python playwright) against the app served by
uvicorn on 127.0.0.1 port 0, over data the real worker built; and a second web server, on
another origin, for the pages of an attacker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from receivers.app import create_app
from tests.fixtures.dashboard import Seeded, dashboard_settings
from tests.reliability.conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def served(seeded: Seeded, app_settings: Settings) -> Iterator[str]:
    """The whole app over the seeded database, served by uvicorn in a thread; yields its URL."""
    server = LiveServer(create_app(dashboard_settings(app_settings, seeded.rig), seeded.rig.db))
    yield server.url
    server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium, headless. Missing chromium fails the test: CI installs it (.ci/run)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(apt-get install -y --no-install-recommends chromium), as .ci/run does")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Attacker:
    """Pages served by a plain HTTP server on another port of 127.0.0.1: reached as
    ``http://localhost:PORT`` they are on another site than the app (127.0.0.1), as
    ``http://127.0.0.1:PORT`` on the same site but another origin."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def page(self, path: str, html: str, *, host: str = "localhost") -> str:
        """Serve ``html`` at ``path``; its URL on ``host``."""
        self.pages[path] = html
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    """The attacker's web server, in a thread, for one test."""
    found = Attacker()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()
    thread.join(timeout=10)
