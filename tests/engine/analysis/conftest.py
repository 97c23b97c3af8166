"""An Analyzer over a real database, pointed at the sandbox's OpenAI emulator through the real
openai client (no SDK retries, a short timeout so that a scripted hang ends quickly)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.actions.registry import action_table
from engine.analysis import Analyzer, make_rca
from engine.clock import FakeClock
from engine.config import Settings, load_settings
from engine.store.db import Database

OPENAI_KEY = "sk-live-0123456789abcdefSECRET"


def llm_settings(sandbox: Any, **over: Any) -> Settings:
    """Settings whose [llm] is the sandbox emulator."""
    llm = {"provider": "compatible", "base_url": sandbox.openai_url, "api_key": OPENAI_KEY,
           "model": "gpt-4o-mini", "timeout": 0.5, "max_retries": 0, "calls_per_hour": 30}
    llm.update(over)
    return load_settings(None, env={}, llm=llm)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_analyzer(sandbox: Any, db: Database, clock: FakeClock
                  ) -> Iterator[Callable[..., Analyzer]]:
    """Build analyzers (``llm=False``: none configured); all closed after the test."""
    built: list[Analyzer] = []

    def make(llm: bool = True, **over: Any) -> Analyzer:
        settings = llm_settings(sandbox, **over) if llm else load_settings(None, env={})
        analyzer = make_rca(settings, db, action_table(), clock=clock)
        built.append(analyzer)
        return analyzer

    yield make
    for analyzer in built:
        analyzer.close()


@pytest.fixture
def analyzer(make_analyzer: Callable[..., Analyzer]) -> Analyzer:
    return make_analyzer()
