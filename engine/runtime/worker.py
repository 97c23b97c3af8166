"""The worker: claims inbox events with a lease and takes each through the pipeline.

SDK calls never run on the receivers' event loop: the worker has its own small thread pool.
A crash mid-event loses nothing: the event's lease runs out and it is claimed again; the
action rows' idempotency keys keep a second pass from repeating a call. An event that never
finishes is parked after ``max_claims`` claims (engine/runtime/deadletter.py), never claimed
forever.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import structlog

from engine.actions.base import ActionSpec
from engine.actions.context import ActionContext
from engine.clock import Clock, SystemClock, to_ms
from engine.config import EngineSettings, Settings
from engine.deps import Deps, Enrich, Playbooks, Rca
from engine.errors import RemediatorError, StorageError, TransactionConflict
from engine.runtime import deadletter, pipeline
from engine.runtime.scheduler import Scheduler
from engine.store import inbox
from engine.store.db import Database

__all__ = ["Worker"]

log = structlog.get_logger("remediator.worker")

CONFLICT_RETRIES = 3
"""Runs of an event whose transaction lost a deadlock before it is left to its lease."""


class Worker:
    """Process inbox events: ``start()``/``stop()`` for the service (a claim loop plus the
    scheduler), ``drain()`` to process what is claimable now and return (the demo and the
    tests drive the engine step by step with it, through the same claims and lanes).

    The claim loop keeps up to ``options.batch`` events claimed and unfinished: it claims
    again as soon as one finishes, or when ``wake()`` says the inbox has news, else every
    ``poll_s`` (``fallback_poll_s`` once ``wake()`` has been called: then polling only
    catches what other processes wrote). Events of one target run one after another, in
    claim order, on one thread at a time ("lanes"); different targets run in parallel.

    ``playbooks.current`` gives the loaded playbook set; ``actions`` is the registry's table;
    ``ctx`` the ActionContext with the cloud clients; ``rca(event, history) -> dict`` answers
    for firing events no rule matches; ``enrich(event)`` returns an EnrichResult.
    ``options`` default to ``settings.engine``; leases are taken on ``clock``'s time.
    """

    def __init__(self, db: Database, playbooks: Playbooks, actions: Mapping[str, ActionSpec],
                 ctx: ActionContext, settings: Settings, clock: Clock | None = None,
                 rca: Rca | None = None, *, enrich: Enrich | None = None,
                 options: EngineSettings | None = None, poll_s: float = 1.0,
                 fallback_poll_s: float | None = None, owner: str | None = None,
                 may_call: Callable[[], bool] | None = None) -> None:
        self.deps = Deps(db=db, playbooks=playbooks, actions=actions, ctx=ctx,
                         live=settings.live, clock=clock or SystemClock(), rca=rca,
                         enrich=enrich, options=options or settings.engine,
                         **({"owner": owner} if owner else {}),
                         **({"may_call": may_call} if may_call else {}))
        # Several replicas (PostgreSQL): a dead one's calls in flight are looked for often,
        # so that they are reconciled soon after its heartbeat expires.
        self.scheduler = Scheduler(
            self.deps, reconcile_every_s=5 if db.dialect.name == "postgresql" else 60)
        self._pool = ThreadPoolExecutor(self.deps.options.threads,
                                        thread_name_prefix="remediator-worker")
        self._poll_s = poll_s
        self._fallback_poll_s = poll_s if fallback_poll_s is None else fallback_poll_s
        self._woken = False  # wake() was called: someone tells us about new events
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lanes: dict[str, deque[inbox.StoredEvent]] = {}
        self._lanes_lock = threading.Lock()
        self._held = 0  # claimed by the loop and not finished yet
        self._in_flight: set[str] = set()  # their event ids
        self._waiting: dict[str, int] = {}  # those not started yet: id -> lease end (ms)
        self._idle = threading.Condition(self._lanes_lock)  # notified when one finishes
        self._bugs: list[Exception] | None = None  # while draining: what crashed a lane

    def wake(self) -> None:
        """New events are in the inbox: the idle claim loop claims now (thread-safe, cheap;
        any thread may call it, e.g. the intake's writer after each commit)."""
        self._woken = True
        self._wake.set()

    def drain(self) -> int:
        """Claim and process until the inbox has nothing claimable now; returns how many
        events were claimed. The claims and lanes are the claim loop's own (:meth:`_claim`):
        it claims a batch, waits until every claimed event finished, and claims again while
        a batch came full. A bug that crashed an event's stages (the lanes log it and go on)
        is raised here once every claimed event finished; its event stays claimed, back when
        its lease runs out."""
        total, bugs = 0, []
        self._bugs = bugs
        # On PostgreSQL a claim takes one event per lane: a short batch may leave the next
        # event of a lane that was busy, claimable once it finished.
        one_per_lane = self.deps.db.dialect.name == "postgresql"
        try:
            while True:
                claimed = self._claim(self.deps.options.batch)
                total += claimed
                with self._idle:
                    self._idle.wait_for(lambda: self._held == 0)
                if claimed == 0 or (claimed < self.deps.options.batch and (
                        not one_per_lane or inbox.count_pending(self.deps.db) == 0)):
                    break
        finally:
            self._bugs = None
        if bugs:
            raise bugs[0]
        return total

    def _process(self, stored: inbox.StoredEvent) -> None:
        """Take one claimed event through the pipeline. An error a retry would repeat parks it
        at once; after any other failure it stays claimed and comes back when its lease runs
        out (its claims are counted: the claim after the last one parks it)."""
        try:
            self._process_once(stored)
        except StorageError as exc:
            log.warning("event_deferred", event_id=stored.event.id, reason="storage")
            self._note_error(stored, deadletter.describe(exc))
        except RemediatorError as exc:
            error = deadletter.describe(exc)
            if getattr(exc, "retryable", False):
                log.warning("event_deferred", event_id=stored.event.id, error=error)
                self._note_error(stored, error)
                return
            log.warning("event_parked", event_id=stored.event.id, error=error)
            deadletter.park(self.deps, stored, error)
        except Exception as exc:  # a bug: recorded, and the lane's caller logs it
            self._note_error(stored, deadletter.describe(exc, with_type=True))
            raise

    def _process_once(self, stored: inbox.StoredEvent) -> None:
        """The pipeline for one event, run again from its start (up to
        :data:`CONFLICT_RETRIES` times) when the server rolled its transaction back to break a
        deadlock with another replica's: what it wrote since its last call out is gone, and
        its stages are written to be run again (as after a crash)."""
        for tries in range(CONFLICT_RETRIES):
            try:
                pipeline.process(self.deps, stored)
                return
            except TransactionConflict as exc:
                if tries + 1 == CONFLICT_RETRIES:
                    raise
                log.info("event_retried", event_id=stored.event.id, reason=str(exc))

    def _note_error(self, stored: inbox.StoredEvent, error: str) -> None:
        """Keep the error for the reason of a later park (the database may be what fails)."""
        try:
            inbox.note_error(self.deps.db, stored.event.id, error)
        except StorageError:
            log.warning("event_error_not_recorded", event_id=stored.event.id)

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
            self._wake.clear()  # before claiming: a wake-up from now on is not lost
            room = self.deps.options.batch - self._held
            claimed = 0
            try:
                self._renew_waiting()
                if room > 0:
                    claimed = self._claim(room)
            except StorageError as exc:
                # The database is locked or full: nothing was claimed; try again later.
                log.warning("claim_failed", error=str(exc))
            if room > 0 and claimed == room:
                continue  # the inbox may hold more and there is room: claim again
            # Full (a finishing event wakes us) or the inbox is empty (intake wakes us).
            self._wake.wait(self._fallback_poll_s if self._woken else self._poll_s)

    def _claim(self, limit: int) -> int:
        """Claim up to ``limit`` events and queue each behind its target's lane.

        An event still on a thread here whose lease ran out (its stage stalls) is claimed
        again, so the stall counts toward its parking, but it is not queued a second time."""
        lease_end = to_ms(self.deps.now()) + self.deps.options.event_lease_s * 1000
        claimed = deadletter.claim(self.deps, limit)
        for stored in claimed:
            target = pipeline.target_of(stored.event)
            with self._lanes_lock:
                if stored.event.id in self._in_flight:
                    log.warning("event_stalled", event_id=stored.event.id,
                                claims=stored.attempts)
                    continue
                self._in_flight.add(stored.event.id)
                self._waiting[stored.event.id] = lease_end
                self._held += 1
                lane = self._lanes.get(target)
                if lane is not None:  # a thread is on this target: it takes this one next
                    lane.append(stored)
                    continue
                self._lanes[target] = deque()
            self._pool.submit(self._run_lane, target, stored)
        return len(claimed)

    def _renew_waiting(self) -> None:
        """Keep the leases of the claimed events that still wait for a thread (behind their
        target's lane or for a free one): waiting is not stalling, and a lease that ran out
        would count a claim toward parking them."""
        lease_ms = self.deps.options.event_lease_s * 1000
        now = to_ms(self.deps.now())
        with self._lanes_lock:
            due = [i for i, end in self._waiting.items() if end - now < lease_ms * 3 // 4]
        if not due:
            return
        inbox.renew(self.deps.db, due, lease_until_ms=now + lease_ms)
        with self._lanes_lock:
            for event_id in due:
                if event_id in self._waiting:
                    self._waiting[event_id] = now + lease_ms

    def _run_lane(self, target: str, stored: inbox.StoredEvent | None) -> None:
        """Process ``stored``, then whatever was queued behind it for ``target``."""
        while stored is not None:
            with self._lanes_lock:
                self._waiting.pop(stored.event.id, None)
            try:
                self._process(stored)
            except Exception as exc:  # a bug must not stop the lane: the lease brings it back
                log.exception("event_crashed", event_id=stored.event.id)
                if self._bugs is not None:
                    self._bugs.append(exc)
            with self._lanes_lock:
                self._held -= 1
                self._idle.notify_all()
                self._in_flight.discard(stored.event.id)
                lane = self._lanes[target]
                if lane:
                    stored = lane.popleft()
                else:
                    del self._lanes[target]
                    stored = None
            self._wake.set()  # room for one more

    def stop(self) -> None:
        """Stop polling and ticking; in-flight events finish first."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.scheduler.shutdown()
        self._pool.shutdown(wait=True)
