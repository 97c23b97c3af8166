"""Storms: one pipeline failing 1,000 times in a minute is one incident with actions within
its budget; 100 pipelines failing at once are all handled, none starved."""

from __future__ import annotations

from collections import Counter

from engine.config import EngineSettings
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from tests.engine.actions.conftest import adf_event
from tests.engine.test_worker import RERUN, reruns
from tests.fixtures.engine import EngineRig


def _drain(worker: object) -> int:
    total = 0
    while (n := worker.drain()):  # type: ignore[attr-defined]
        total += n
    return total


def _storm(engine_rig: EngineRig, threads: int | None = None,
           ) -> tuple[incidents_store.Incident, list[actions_store.ActionRow]]:
    options = EngineSettings(threads=threads) if threads else None
    worker = engine_rig.worker(RERUN, live=True, options=options)
    for n in range(1000):
        # Distinct alert ids (the sender fired again), the same failure (same fingerprint).
        engine_rig.deliver(adf_event(dedup_key=f"azmon:/subscriptions/x/alerts/{n:04d}:Fired"))
        if n % 200 == 199:
            engine_rig.clock.advance(12)  # 1,000 alerts over one minute
    assert _drain(worker) == 1000
    [incident] = incidents_store.list_incidents(engine_rig.db, limit=10)
    return incident, actions_store.for_incident(engine_rig.db, incident.id)


def test_a_thousand_alerts_of_one_failure_are_one_incident(engine_rig: EngineRig) -> None:
    # One worker thread: the storm itself, without the race of the xfail test below.
    incident, rows = _storm(engine_rig, threads=1)
    assert (incident.events, incident.state) == (1000, "verifying")
    assert [(r.action, r.state) for r in rows] == [("adf.rerun_pipeline", "succeeded")]
    assert len(reruns(engine_rig.sandbox)) == 1
    # The incident was opened once; every later alert joined it.
    records = audit_store.list_records(engine_rig.db, incident_id=incident.id, limit=10_000)
    joins = Counter(r.data["created"] for r in records if r.kind == "incident")
    assert joins == Counter({True: 1, False: 999})


# Events of one target are processed in order (engine/runtime/worker.py), so a storm of one failure
# on the whole pool still starts one rerun.
def test_a_storm_starts_one_rerun_and_never_exceeds_the_budget(engine_rig: EngineRig) -> None:
    _, rows = _storm(engine_rig)
    assert len(reruns(engine_rig.sandbox)) == 1
    assert [r.attempt for r in rows] == [1]


def test_a_hundred_pipelines_failing_at_once_are_all_remediated(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    for n in range(100):
        engine_rig.sandbox.failure("adf", "given-run",
                                   run_id=f"00000000-0000-0000-0000-{n:012d}",
                                   pipeline=f"pl_{n:03d}")
        engine_rig.deliver(adf_event(
            dedup_key=f"azmon:/subscriptions/x/alerts/p{n:03d}:Fired", resource=f"pl_{n:03d}",
            run_id=f"00000000-0000-0000-0000-{n:012d}",
            attributes={"factory": "adf-contoso-prod", "pipeline": f"pl_{n:03d}",
                        "activity": "Copy"}))
    assert _drain(worker) == 100
    incidents = incidents_store.list_incidents(engine_rig.db, limit=1000)
    assert len(incidents) == 100
    assert Counter(i.state for i in incidents) == Counter({"verifying": 100})
    per_pipeline = Counter(c["path"].rsplit("/pipelines/", 1)[1].split("/")[0]
                           for c in reruns(engine_rig.sandbox))
    assert per_pipeline == Counter({f"pl_{n:03d}": 1 for n in range(100)})
