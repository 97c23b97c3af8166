"""A real HTTP server for the reliability tests (and the browser's and the CLI's): the app under
uvicorn in a thread on a free loopback port, so that requests really run concurrently
(TestClient serializes them)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from engine.config import Settings
from engine.store.db import Database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``app`` served by uvicorn on a free loopback port until :meth:`stop`."""

    def __init__(self, app: Any, lifespan: str = "on") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan=lifespan)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server(app_settings: Settings, db: Database) -> Iterator[LiveServer]:
    """The whole app with :func:`tests.fixtures.app.app_settings` on the ``db`` fixture."""
    from receivers.app import create_app

    server = LiveServer(create_app(app_settings, db))
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def poll(check: Callable[[], Any], *, bound_s: float = 20.0, every_s: float = 0.02,
         what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy, at most ``bound_s``; return it.
    ``what`` names the awaited condition in the failure message."""
    deadline = time.monotonic() + bound_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {bound_s} s"
        time.sleep(every_s)
