"""kill -9 of the real ``remediator serve --live`` while a cloud call is in flight, then a
restart on the same database: every acknowledged event is there, the pending work resumes and
the cloud's own call log shows each remediation exactly once.

The moment is picked, not guessed: the emulator holds the first ``createRun`` answer back
(a scripted hang) and the test kills the process as soon as that request has arrived."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.store import actions as actions_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from engine.store.db import Database
from scripts._harness import (
    Zygote,
    adf_failure,
    make_serve,
    pipeline_of,
    post_failure,
    rerun_calls,
)
from tests.reliability.conftest import poll

STARTUP_S = 180.0  # a cold start imports every SDK; loaded machines are slow
SETTLE_S = 120.0


@pytest.fixture
def serve(tmp_path: Path, sandbox: Any) -> Iterator[Any]:
    """``remediator serve --config FILE`` (live, pollers off, 2 s leases, a rerun playbook
    without delay), forked from a process that did the slow imports once, so that the restart
    costs no second cold start (the command and code path are the same)."""
    zygote = Zygote()
    process = make_serve(tmp_path, sandbox, zygote=zygote)
    yield process
    process.stop()
    zygote.close()


def test_kill_mid_call_then_restart_loses_nothing_and_sends_nothing_twice(
        serve: Any, sandbox: Any) -> None:
    sandbox.script("adf", "adf.createRun", hang=3, times=1)
    serve.start(bound_s=STARTUP_S)
    with httpx.Client(timeout=30) as client:
        answers = [post_failure(client, serve.url, adf_failure(f"crash{n}", sandbox=sandbox))
                   for n in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    acked = [a.json()["event_id"] for a in answers]

    in_flight = poll(lambda: [c for c in rerun_calls(sandbox) if c["status"] is None],
                     bound_s=SETTLE_S, what="the first createRun reaching the emulator")
    serve.kill9()
    killed_pipeline = pipeline_of(in_flight[0])
    # The emulator finishes the call the dead process made (the cloud did act).
    poll(lambda: all(c["status"] is not None for c in rerun_calls(sandbox)), bound_s=30,
         what="the hung createRun to be answered")

    serve.start(bound_s=STARTUP_S)
    db = Database(str(serve.config.parent / "remediator.db"))
    try:
        def settled() -> bool:
            """Every event processed and every rerun started (the 15 s verification probe
            that follows is not what this test is about)."""
            events = [inbox.get(db, event_id) for event_id in acked]
            incidents = incidents_store.list_incidents(db, limit=100)
            rows = [row for i in incidents for row in actions_store.for_incident(db, i.id)]
            return (all(e is not None and e.state == "done" for e in events)
                    and len(incidents) == 3 and len(rows) == 3
                    and all(row.state == "succeeded" for row in rows))

        poll(settled, bound_s=SETTLE_S, what="every event done and every rerun started")
        pipelines = Counter(pipeline_of(c) for c in rerun_calls(sandbox))
        assert pipelines == Counter({f"pl_crash{n}": 1 for n in range(3)})
        [killed] = [i for i in incidents_store.list_incidents(db, limit=100)
                    if i.resource == killed_pipeline]
        [row] = actions_store.for_incident(db, killed.id)
        assert (row.state, row.result["outcome"]) == ("succeeded", "already_done")
    finally:
        db.close()
