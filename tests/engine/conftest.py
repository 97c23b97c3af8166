"""Fixtures the engine's test families share (each family's own stay in its folder)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.actions.conftest import WebhookSink


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    """The loopback webhook endpoint that notify, ticket and RCA links post to."""
    served = WebhookSink()
    yield served
    served.close()
