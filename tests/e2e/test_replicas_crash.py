"""Three ``remediator serve --live`` replicas on one PostgreSQL database against the sandbox
(issue 17, item 10): webhooks spread over them at random, replicas killed with -9 at random
points while a cloud call is in flight and started again. Afterwards every acknowledged event
is stored and done, the cloud's own call log shows each remediation (its idempotency key: the
failed run it reruns) exactly once, no lane ran two events at once, the audit log verifies,
and the notification channel (a loopback webhook sink) got no message twice.

The run is seeded (``REMEDIATOR_CRASH_SEED``, default 17; the seed is in every failure
message): which replica gets each webhook, which replica dies, and when within its call. The
emulator holds every ``createRun`` answer back for :data:`HANG_S` (longer than any other
replica's reconcile period, shorter than the action lease): a replica that took over a live
replica's call in flight would find no run in the cloud yet and make the call again, which the
call log shows."""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.drive import Sink
from engine.store import audit as audit_store
from engine.store import inbox
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

SEED = int(os.environ.get("REMEDIATOR_CRASH_SEED", "17"))
STARTUP_S = 180.0
SETTLE_S = 180.0  # a dead replica's work moves when its heartbeat expires (10 s)
PIPELINES = 16
SECOND_ALERTS = 6  # pipelines that fail twice: two events in one lane
KILLS = 6
HANG_S = 4.0  # > the 5 s reconcile period's chance to miss it; < LEASE_S
LEASE_S = 6  # the action lease: a replica's own call in flight is never its own to reconcile
STAGE_KINDS = ("received", "matched", "incident")  # written only while an event is processed


@pytest.fixture
def sink() -> Iterator[Sink]:
    served = Sink()
    yield served
    served.close()


@pytest.fixture
def replicas(tmp_path: Path, sandbox: Any, pg_url: str, sink: Sink) -> Iterator[list[Forked]]:
    """Three replicas on the test's database, each announcing every incident state change to
    the sink, forked from one process that did the slow imports (not started)."""
    notify = f"""
[clouds.channels.oncall]
url = "{sink.url}/oncall"
format = "json"

[notifications]
channels = ["oncall"]
every_s = 1.0
"""
    zygote = Zygote()
    made = [make_serve(tmp_path / f"replica{i}", sandbox, zygote=zygote, db=pg_url,
                       lease_s=LEASE_S, extra=notify) for i in range(3)]
    yield made
    for replica in made:
        replica.stop()
    zygote.close()


def _calling(db: Database, replicas: list[Forked]) -> list[Forked]:
    """The replicas with a call in flight (an action ``started`` by their live owner)."""
    rows = db.query("SELECT DISTINCT r.pid FROM actions a JOIN replicas r ON r.owner = a.owner "
                    "WHERE a.state = 'started'")
    pids = {row["pid"] for row in rows}
    return [r for r in replicas if r.pid in pids]


def _lane_overlaps(db: Database) -> list[str]:
    """Pairs of events of one lane whose processing overlapped in time: each event's span runs
    from its first to its last record written by its stages (every claim of it: a claim
    that died is taken over only once its replica is dead, and the lane waits meanwhile)."""
    lanes = {row["id"]: row["lane"] for row in db.query("SELECT id, lane FROM events")}
    spans: dict[str, list[int]] = {}
    kinds = ", ".join(f"'{k}'" for k in STAGE_KINDS)
    for row in db.query(f"SELECT event_id, ts_ms FROM audit WHERE kind IN ({kinds}) "
                        "AND event_id IS NOT NULL"):
        span = spans.setdefault(row["event_id"], [row["ts_ms"], row["ts_ms"]])
        span[0], span[1] = min(span[0], row["ts_ms"]), max(span[1], row["ts_ms"])
    by_lane: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for event_id, (start, end) in spans.items():
        by_lane[lanes[event_id]].append((start, end, event_id))
    overlaps = []
    for lane, events in by_lane.items():
        events.sort()
        overlaps += [f"{lane}: {a} [{s0}, {e0}] and {b} [{s1}, {e1}]"
                     for (s0, e0, a), (s1, e1, b) in itertools.pairwise(events)
                     if s1 <= e0]
    return overlaps


def test_replicas_killed_mid_call_lose_nothing_and_act_once(
        replicas: list[Forked], sandbox: Any, pg_url: str, sink: Sink) -> None:
    rng = random.Random(SEED)
    seed = f"(REMEDIATOR_CRASH_SEED={SEED})"
    for replica in replicas:
        replica.start(bound_s=STARTUP_S)
    twice = set(rng.sample(range(PIPELINES), SECOND_ALERTS))
    alerts = [f"rep{n}" for n in range(PIPELINES)] + [f"rep{n}" for n in sorted(twice)]
    rng.shuffle(alerts)
    kill_after = set(rng.sample(range(len(alerts)), KILLS))
    sandbox.script("adf", "adf.createRun", hang=HANG_S, times=10**6)
    db = Database(pg_url)
    acked: list[str] = []
    kills: list[str] = []
    try:
        with httpx.Client(timeout=30) as client:
            for n, tag in enumerate(alerts):
                answer = post_failure(client, rng.choice(replicas).url,
                                      adf_failure(f"{tag}-{n}", pipeline=f"pl_{tag}",
                                                  sandbox=sandbox))
                assert answer.status_code == 202, answer.text
                acked.append(answer.json()["event_id"])
                if n in kill_after:  # a random moment of some replica's call in flight
                    calling = poll(lambda: _calling(db, replicas), bound_s=SETTLE_S,
                                   what=f"a replica calling createRun {seed}")
                    victim = rng.choice(calling)
                    time.sleep(rng.uniform(0, HANG_S))
                    victim.kill9()
                    kills.append(f"after alert {n}: replica{replicas.index(victim)}")
                    victim.start(bound_s=STARTUP_S)

        def settled() -> bool:
            events = [inbox.get(db, event_id) for event_id in acked]
            open_rows = db.query("SELECT count(*) AS n FROM actions "
                                 "WHERE state IN ('scheduled', 'started')")[0]["n"]
            unsent = db.query("SELECT count(*) AS n FROM incidents "
                              "WHERE notified_state != state")[0]["n"]
            return (all(e is not None and e.state == "done" for e in events)
                    and open_rows == 0 and unsent == 0
                    and audit_store.lag(db).entries == 0)  # the leader linked every record

        poll(settled, bound_s=SETTLE_S, every_s=0.2,
             what=f"every event done, every action and notification settled, every audit "
                  f"record linked {seed}")
        # Exactly once: every remediation the database recorded is one createRun in the
        # cloud's call log, keyed by the failed run it reruns; no key twice, none missing.
        rows = db.query("SELECT params FROM actions WHERE phase = 'remediate' "
                        "AND action = 'adf.rerun_pipeline' AND state = 'succeeded'")
        recorded = Counter(json.loads(row["params"])["run_id"] for row in rows)
        called = Counter(c["query"]["referencePipelineRunId"] for c in rerun_calls(sandbox))
        doubled = {k: n for k, n in called.items() if n > 1}
        assert doubled == {}, f"createRun made twice {seed}, kills {kills}: " + str(
            {k: [pipeline_of(c) for c in rerun_calls(sandbox)
                 if c["query"]["referencePipelineRunId"] == k] for k in doubled})
        assert called == recorded, f"{seed}, kills {kills}"
        assert {pipeline_of(c) for c in rerun_calls(sandbox)} == {
            f"pl_rep{n}" for n in range(PIPELINES)}
        assert _lane_overlaps(db) == [], f"{seed}, kills {kills}"
        result = audit_store.verify_chain(db)
        assert (result.ok, result.reason) == (True, ""), seed
        sent = Counter(r["headers"].get("Idempotency-Key") for r in sink.received)
        assert {k: n for k, n in sent.items() if n > 1} == {}, f"notified twice {seed}"
        assert len(sent) >= PIPELINES  # every incident announced at least once
    finally:
        db.close()
