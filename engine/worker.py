"""The worker: claims inbox events with a lease and takes each through the pipeline.

SDK calls never run on the receivers' event loop: the worker has its own small thread pool.
A crash mid-event loses nothing: the event's lease runs out and it is claimed again; the
action rows' idempotency keys keep a second pass from repeating a call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from engine import pipeline
from engine.actions.base import ActionSpec
from engine.clock import Clock, SystemClock, to_ms
from engine.config import Settings
from engine.errors import RemediatorError, StorageError
from engine.events import ErrorEvent
from engine.execute import Deps, EngineOptions, Rca
from engine.scheduler import Scheduler
from engine.store import Database, inbox

__all__ = ["Worker"]

log = structlog.get_logger("remediator.worker")


class Worker:
    """Process inbox events: ``run_once()`` for what is claimable now (tests drive it step by
    step), ``start()``/``stop()`` for the service (a polling thread plus the scheduler).

    ``playbooks.current`` gives the loaded playbook set; ``actions`` is the registry's table;
    ``ctx`` the ActionContext with the cloud clients; ``rca(event, history) -> dict`` answers
    for firing events no rule matches; ``enrich(event)`` returns an EnrichResult.
    ``options`` default to ``settings.engine``; leases are taken on ``clock``'s time.
    """

    def __init__(
        self,
        db: Database,
        playbooks: Any,
        actions: Mapping[str, ActionSpec],
        ctx: Any,
        settings: Settings,
        clock: Clock | None = None,
        rca: Rca | None = None,
        *,
        enrich: Callable[[ErrorEvent], Any] | None = None,
        options: EngineOptions | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.deps = Deps(db=db, playbooks=playbooks, actions=actions, ctx=ctx,
                         live=settings.live, clock=clock or SystemClock(), rca=rca,
                         enrich=enrich, options=options or settings.engine)
        self.scheduler = Scheduler(self.deps)
        self._pool = ThreadPoolExecutor(self.deps.options.threads,
                                        thread_name_prefix="remediator-worker")
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Claim what is claimable now and process it on the pool; returns how many."""
        claimed = inbox.claim(self.deps.db, limit=self.deps.options.batch,
                              lease_ms=self.deps.options.event_lease_s * 1000,
                              now_ms=to_ms(self.deps.now()))
        # Events of one target run one after another, so that each sees what the one before it
        # recorded (its incident, attempt and lock); different targets run in parallel.
        groups: dict[str, list[inbox.StoredEvent]] = {}
        for stored in claimed:
            groups.setdefault(pipeline.target_of(stored.event), []).append(stored)
        list(self._pool.map(self._process_in_order, groups.values()))
        return len(claimed)

    def _process_in_order(self, group: list[inbox.StoredEvent]) -> None:
        for stored in group:
            self._process(stored)

    def _process(self, stored: inbox.StoredEvent) -> None:
        try:
            pipeline.process(self.deps, stored)
        except StorageError:
            # Left claimed: it comes back when its lease runs out.
            log.warning("event_deferred", event_id=stored.event.id, reason="storage")
        except RemediatorError as exc:  # e.g. a template that fails for this event
            log.warning("event_failed", event_id=stored.event.id, error=str(exc))
            self.deps.audit("action_failed", {"error": str(exc)}, event_id=stored.event.id,
                            resource=stored.event.resource)
            inbox.finish(self.deps.db, stored.event.id, state="failed", error=str(exc))

    def start(self) -> None:
        """Reconcile what a previous process left half-done, then poll and tick."""
        self.scheduler.reconcile()
        self.scheduler.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="remediator-intake",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self.run_once()
            except StorageError as exc:
                # The database is locked or full: nothing was claimed; try again next poll.
                log.warning("claim_failed", error=str(exc))
                claimed = 0
            if claimed == 0:
                self._stop.wait(self._poll_s)

    def stop(self) -> None:
        """Stop polling and ticking; in-flight events finish first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.scheduler.shutdown()
        self._pool.shutdown(wait=True)
