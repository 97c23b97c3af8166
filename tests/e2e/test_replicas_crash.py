"""Three ``remediator serve --live`` replicas on one PostgreSQL database against the sandbox
(issue 17, item 10): webhooks spread over them, a replica killed with -9 while a cloud call is
in flight, then restarted, twice. Afterwards every acknowledged event is stored and done, the
cloud's own call log shows each remediation exactly once, and the audit log verifies.

The moments are picked, not guessed: the emulator holds ``createRun`` answers back (a scripted
hang) and a replica is killed as soon as such a call has arrived; which replica is seeded."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from engine.store.db import Database
from scripts._harness import (
    Forked,
    Zygote,
    adf_failure,
    make_serve,
    pipeline_of,
    post_failure,
    rerun_calls,
)
from tests.reliability.conftest import poll

STARTUP_S = 180.0
SETTLE_S = 180.0  # a dead replica's work moves when its heartbeat expires (10 s)
EVENTS = 12


@pytest.fixture
def replicas(tmp_path: Path, sandbox: Any, pg_url: str) -> Iterator[list[Forked]]:
    """Three replicas on the test's database, forked from one process that did the slow
    imports (not started)."""
    zygote = Zygote()
    made = [make_serve(tmp_path / f"replica{i}", sandbox, zygote=zygote, db=pg_url)
            for i in range(3)]
    yield made
    for replica in made:
        replica.stop()
    zygote.close()


def _in_flight(sandbox: Any) -> list[dict[str, Any]]:
    return [c for c in rerun_calls(sandbox) if c["status"] is None]


def test_replicas_killed_mid_call_lose_nothing_and_act_once(
        replicas: list[Forked], sandbox: Any, pg_url: str) -> None:
    rng = random.Random(17)
    for replica in replicas:
        replica.start(bound_s=STARTUP_S)
    acked: list[str] = []
    sandbox.script("adf", "adf.createRun", hang=3, times=4)
    with httpx.Client(timeout=30) as client:
        for n in range(EVENTS):
            answer = post_failure(client, replicas[n % 3].url,
                                  adf_failure(f"rep{n}", sandbox=sandbox))
            assert answer.status_code == 202, answer.text
            acked.append(answer.json()["event_id"])
            if n in (3, 8):  # a call in flight somewhere: kill a replica, start it again
                poll(lambda: _in_flight(sandbox), bound_s=SETTLE_S,
                     what="a createRun reaching the emulator")
                victim = rng.choice(replicas)
                victim.kill9()
                victim.start(bound_s=STARTUP_S)
    db = Database(pg_url)
    try:
        def settled() -> bool:
            events = [inbox.get(db, event_id) for event_id in acked]
            incidents = incidents_store.list_incidents(db, limit=100)
            rows = [row for i in incidents for row in actions_store.for_incident(db, i.id)]
            return (all(e is not None and e.state == "done" for e in events)
                    and len(incidents) == EVENTS and len(rows) == EVENTS
                    and all(row.state == "succeeded" for row in rows))

        poll(settled, bound_s=SETTLE_S, what="every event done and every rerun started")
        calls = Counter(pipeline_of(c) for c in rerun_calls(sandbox))
        assert calls == Counter({f"pl_rep{n}": 1 for n in range(EVENTS)})
        result = audit_store.verify_chain(db)
        assert (result.ok, result.reason) == (True, "")
    finally:
        db.close()
