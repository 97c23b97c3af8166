"""The rig's service behind a real HTTP server, for the CLI commands that are its clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner, Result

from cli import main
from tests.e2e.test_remediation import APPROVAL, BLOB
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN_KEY, ServiceRig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """The rig's service behind a real HTTP server (the CLI is a separate client)."""

    def __init__(self, rig: ServiceRig) -> None:
        from receivers.app import create_app

        self.rig = rig
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        app = create_app(rig.service.settings, rig.db, service=rig.service, start_service=False)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_config=None, access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.01)

    def cli(self, *args: str, key: str | None = ADMIN_KEY) -> Result:
        extra = ["--url", self.url] + (["--key", key] if key is not None else [])
        return CliRunner().invoke(main, [*args, *extra])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def served(service_rig: Any) -> Iterator[Served]:
    """A live rig with one incident waiting for approval, served on a free port."""
    rig = service_rig(APPROVAL, live=True)
    rig.post("azure-monitor", load_sample(BLOB))
    rig.run()
    running = Served(rig)
    yield running
    running.stop()
