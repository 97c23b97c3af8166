"""What the service log holds at info level: our own lines, not a library's routine chatter."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from engine.logs import configure_logging


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        root = logging.getLogger()
        for handler in list(root.handlers):
            if type(handler) is logging.StreamHandler:
                root.removeHandler(handler)


def test_a_scheduler_tick_writes_no_line_at_info_but_our_own(log: io.StringIO) -> None:
    ran = threading.Event()

    def tick() -> None:
        structlog.get_logger("engine.runtime.scheduler").info("tick", due=0)
        ran.set()

    scheduler = BackgroundScheduler(timezone="UTC")
    # As the engine's ticks are: an interval job (its first run now, not in an hour).
    scheduler.add_job(tick, "interval", hours=1, id="tick", next_run_time=datetime.now(UTC))
    scheduler.start()
    try:
        assert ran.wait(30), "the job did not run"
    finally:
        scheduler.shutdown(wait=True)  # its "executed successfully" comes after tick() returns
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["tick"]


def test_apscheduler_warnings_still_reach_the_log(log: io.StringIO) -> None:
    logging.getLogger("apscheduler.scheduler").warning("Run time of job %r was missed", "tick")
    [line] = [json.loads(line) for line in log.getvalue().splitlines()]
    assert (line["event"], line["level"]) == ("Run time of job 'tick' was missed", "warning")


def test_debug_lets_apscheduler_through() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    try:
        assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
    finally:
        configure_logging("info", "json", stream=stream)
    assert not logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
