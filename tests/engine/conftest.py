"""Fixtures the engine's test families share (each family's own stay in its folder)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli.drive import Sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    """The loopback webhook endpoint that notify, ticket and RCA links post to."""
    served = Sink(answer={"id": "INC-1042"})
    yield served
    served.close()
