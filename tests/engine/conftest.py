"""Fixtures the engine's test families share (each family's own stay in its folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.drive import Sink
from engine.store.db import Database


@pytest.fixture
def sink() -> Iterator[Sink]:
    """The loopback webhook endpoint that notify, ticket and RCA links post to."""
    served = Sink(answer={"id": "INC-1042"})
    yield served
    served.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The engine's and the store's tests run on both backends: a real SQLite file in a fresh
    temporary directory, and a fresh database on the suite's PostgreSQL server."""
    if request.param == "sqlite":
        database = Database(tmp_path / "remediator.db")
    else:
        database = Database(request.getfixturevalue("pg_url"))
    yield database
    database.close()
