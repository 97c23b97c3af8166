"""The scheduler: periodic interval jobs only (nothing pickled), ticks callable directly."""

from __future__ import annotations

from engine.clock import FakeClock
from engine.runtime.scheduler import TickReport
from tests.engine.actions.conftest import adf_event
from tests.engine.test_worker import DELAYED, reruns
from tests.fixtures.engine import EngineRig


def test_start_registers_interval_jobs_in_memory_only(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(DELAYED)
    scheduler = worker.scheduler
    scheduler.add_periodic("retention", lambda: None, 3600)
    scheduler.start()
    try:
        jobs = {job.id: job for job in scheduler._aps.get_jobs()}  # type: ignore[union-attr]
        assert sorted(jobs) == ["actions", "probes", "reconcile", "retention"]
        assert all(type(job.trigger).__name__ == "IntervalTrigger" for job in jobs.values())
        assert all(job._jobstore_alias == "default" for job in jobs.values())
        assert type(scheduler._aps._jobstores["default"]).__name__ == "MemoryJobStore"
    finally:
        scheduler.shutdown()


def test_tick_at_an_explicit_time(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(DELAYED, live=True)
    engine_rig.deliver(adf_event())
    worker.drain()
    start = engine_rig.clock.now()
    assert worker.scheduler.tick(start) == TickReport()
    later = FakeClock(start)
    later.advance(minutes=15)
    assert worker.scheduler.tick(later.now()) == TickReport(ran=1)
    assert len(reruns(engine_rig.sandbox)) == 1
