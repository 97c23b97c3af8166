"""A replica whose heartbeat expired while its call was out finds the row another replica's
(issue 17, item 3): its outcome write is refused (``NotOwner``), and whatever met it (the
startup reconcile, a tick, an event's run) logs it, records and audits nothing of that row and
goes on; being fenced, it takes no other row over and starts nothing more."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.actions.context import ActionContext
from engine.cloud.clients import Clients
from engine.runtime.liveness import Liveness
from engine.runtime.worker import Worker
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import replicas
from tests.engine.actions.conftest import adf_event, cloud_settings
from tests.engine.test_worker import only_incident
from tests.fixtures.engine import EngineRig

# Two rows of one incident, due in 10 minutes: a rerun (its reconcile and pre-check read the
# run first) and a note.
DELAYED = """\
name: engine
rules:
  - {id: adf-copy-failed, match: {source: adf, error_code: "2200"},
     actions: [{action: adf.rerun_pipeline, delay: 10m}, {action: noop, delay: 10m}]}
"""

HANG_S = 3.0
"""How long the sandbox holds a run read back: the window in which this replica is fenced and
a third one takes the row over (the clients wait longer: :func:`patient`)."""


@pytest.fixture
def patient(engine_rig: EngineRig) -> Iterator[EngineRig]:
    """The rig with clients that wait out :data:`HANG_S` (the rig's own time out first)."""
    clients = Clients(cloud_settings(engine_rig.sandbox, timeout=HANG_S * 10))
    engine_rig.ctx = ActionContext(clients=clients)
    yield engine_rig
    clients.close()


def _planned(rig: EngineRig, **more: Any) -> tuple[Worker, str, str, str]:
    """A live worker that planned the two rows: it, the incident's id, the rows' ids."""
    worker = rig.worker(DELAYED, live=True, **more)
    rig.deliver(adf_event())
    worker.drain()
    incident = only_incident(rig)
    rerun, note = actions_store.for_incident(rig.db, incident.id)
    return worker, incident.id, rerun.id, note.id


def _fenced_during_the_read(rig: EngineRig, worker: Worker, rerun_id: str, *,
                            registered: bool = False) -> list[bool]:
    """Once the sandbox holds the next run read back, the worker's heartbeat expires and a
    third replica takes the rerun over; the list gets whether it did. ``registered``: the
    worker's heartbeat is already in the table."""
    me = worker.deps.owner
    if not registered:
        replicas.register(rig.db, me)
    replicas.register(rig.db, "proc_third")
    rig.sandbox.script("adf", "adf.getPipelineRun", hang=HANG_S)
    took: list[bool] = []

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(c["path"].split("/")[-2] == "pipelineruns" and c["status"] is None
                   for c in rig.sandbox.calls("adf")):
                replicas.resign(rig.db, me)
                took.append(actions_store.take_over(rig.db, rerun_id, from_owner=me,
                                                    owner="proc_third"))
                return
            threading.Event().wait(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return took


def _states(rig: EngineRig, incident_id: str) -> dict[str, tuple[str, str]]:
    return {r.id: (r.state, r.owner) for r in actions_store.for_incident(rig.db, incident_id)}


def test_a_row_taken_over_during_the_startup_reconcile_does_not_stop_the_start(
    patient: EngineRig,
) -> None:
    rig = patient
    worker, incident_id, rerun, note = _planned(rig)
    # A dead replica (no heartbeat) had started both rows before it died.
    assert actions_store.start(rig.db, rerun, owner="proc_dead", now_ms=1)
    assert actions_store.start(rig.db, note, owner="proc_dead", now_ms=2)
    audited = audit_store.list_records(rig.db, incident_id=incident_id, limit=1000)
    took = _fenced_during_the_read(rig, worker, rerun)  # the reconcile's read

    worker.start()  # reconciles first: its reschedule of the rerun is refused, not raised

    assert took == [True]
    assert _states(rig, incident_id) == {
        rerun: ("started", "proc_third"),  # the third replica's to reconcile
        note: ("started", "proc_dead")}  # a fenced replica takes no other row over
    assert audit_store.list_records(rig.db, incident_id=incident_id, limit=1000) == audited
    assert worker.scheduler.reconcile() == 0  # the ticks after it take nothing either


def test_a_row_taken_over_during_its_call_ends_the_run_not_the_event(
    patient: EngineRig,
) -> None:
    """The same refusal met by a row's own run (a tick's due row): the row is the new owner's
    to reconcile and settle; nothing of it is audited here after its start."""
    rig = patient
    worker, incident_id, rerun, note = _planned(rig)
    took = _fenced_during_the_read(rig, worker, rerun)  # the pre-check's read
    rig.clock.advance(minutes=10)

    assert worker.scheduler.run_due() == 2

    assert took == [True]
    assert _states(rig, incident_id) == {
        rerun: ("started", "proc_third"),
        note: ("scheduled", "")}  # fenced: its next row is not started
    kinds = [r.kind for r in audit_store.list_records(rig.db, incident_id=incident_id,
                                                      limit=1000)]
    assert kinds.count("action_started") == 1
    assert "action_succeeded" not in kinds and "action_failed" not in kinds


def test_a_replica_paused_between_its_pre_check_and_its_call_does_not_call(
    patient: EngineRig,
) -> None:
    """The pre-check read the run (held back: the replica as good as paused) while its
    heartbeat expired and a third replica took the row over, which reconciles and reruns it:
    this replica asks its heartbeat before calling, finds it expired, and calls nothing."""
    rig = patient
    # Beats rarer than the heartbeat's life: this process never counts it fresh by its own
    # clock, so only a renewal at the call can say whether it still lives (here: resigned).
    liveness = Liveness(rig.db, "proc_paused", ttl_s=30, beat_s=60)
    worker, incident_id, rerun, _ = _planned(rig, owner=liveness.owner,
                                             may_call=liveness.may_call)
    liveness.start()
    try:
        took = _fenced_during_the_read(rig, worker, rerun, registered=True)
        rig.clock.advance(minutes=10)
        worker.scheduler.run_due()
    finally:
        liveness.stop()

    assert took == [True]
    assert [c for c in rig.sandbox.calls("adf") if c["path"].endswith("/createRun")] == []
    assert liveness.fenced
    assert _states(rig, incident_id)[rerun] == ("started", "proc_third")
