"""The rig's service behind a real HTTP server, for the CLI commands that are its clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from tests.e2e.test_remediation import APPROVAL, BLOB
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN_KEY, ServiceRig
from tests.reliability.conftest import LiveServer


class Served(LiveServer):
    """The rig's service behind a real HTTP server (the CLI is a separate client)."""

    def __init__(self, rig: ServiceRig) -> None:
        from receivers.app import create_app

        self.rig = rig
        super().__init__(create_app(rig.service.settings, rig.db, service=rig.service,
                                    start_service=False), lifespan="auto")

    def cli(self, *args: str, key: str | None = ADMIN_KEY) -> Result:
        extra = ["--url", self.url] + (["--key", key] if key is not None else [])
        return CliRunner().invoke(main, [*args, *extra])


@pytest.fixture
def served(service_rig: Any) -> Iterator[Served]:
    """A live rig with one incident waiting for approval, served on a free port."""
    rig = service_rig(APPROVAL, live=True)
    rig.post("azure-monitor", load_sample(BLOB))
    rig.run()
    running = Served(rig)
    yield running
    running.stop()
