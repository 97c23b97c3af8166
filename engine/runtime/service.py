"""The engine as one running service: settings in, a started worker and scheduler out.

``Service`` composes what the engine is made of (the action table, the cloud clients, the
playbooks in force, the worker with enrichment and the RCA hook) so that ``remediator serve``,
``remediator demo`` and the tests build it the same way. It imports nothing of the web stack:
what the engine may not import (the receivers' Databricks page parser) is handed in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from engine.actions.context import ActionContext
from engine.actions.registry import action_table
from engine.analysis.service import make_rca
from engine.clock import Clock, SystemClock, to_ms
from engine.cloud import enrich
from engine.cloud.clients import Clients
from engine.config import EngineSettings, Settings
from engine.deps import Rca
from engine.rules.active import ActivePlaybooks
from engine.runtime import chainer, notifications, pollers, retention
from engine.runtime.liveness import Liveness
from engine.runtime.scheduler import Scheduler
from engine.runtime.worker import Worker
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store import state as state_store
from engine.store.db import Database
from engine.store.ids import new_id
from engine.text import secret_values

__all__ = ["Service", "Status"]

RELOADS = "playbooks:reloads"
"""The state counter of broadcast playbook reloads (several replicas on PostgreSQL)."""

log = structlog.get_logger("remediator.service")


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /api/status`` answers."""

    mode: str
    live: bool
    paused: bool
    paused_by: str
    queue_depth: int
    playbooks_generation: int
    rules: int


class Service:
    """The worker, scheduler and playbooks of one process over ``db``.

    ``parse_cluster_page``: the receivers' parser of a Databricks cluster-events page, for the
    cluster poller (None: no poller). ``clock``: the time source (a WarpClock in the demo).
    ``rca``: the root-cause hook; by default :func:`engine.analysis.service.make_rca` (the LLM
    of ``[llm]``, else the offline catalog). The pollers (``[pollers]``, given a parser), the
    notification outbox (``[notifications]``) and retention join the scheduler here.
    Raises PlaybookError if the playbooks do not load: a service must not start on them.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        parse_cluster_page: Callable[..., Any] | None = None,
        clock: Clock | None = None,
        rca: Rca | None = None,
        options: EngineSettings | None = None,
        poll_s: float = 0.05,  # an idle worker's wait until wake() is first called
        fallback_poll_s: float = 1.0,  # then: only for what other processes write
    ) -> None:
        secret_values.use(settings)  # masked by value from here on (engine/text/redact.py)
        self.settings = settings
        self.db = db
        self.clock = clock or SystemClock()
        self.actions = action_table()
        self.playbooks = ActivePlaybooks([settings.playbooks], self.actions)
        self.clients = Clients(settings.clouds)
        self.ctx = ActionContext(clients=self.clients)
        self.parse_cluster_page = parse_cluster_page
        clients = self.clients
        owner = new_id("proc")
        self.liveness = Liveness(db, owner)
        self.worker = Worker(
            db, self.playbooks, self.actions, self.ctx, settings, self.clock,
            rca if rca is not None else make_rca(settings, db, self.actions, clock=self.clock),
            enrich=lambda event: enrich.enrich(
                event, clients, now=self.clock.now(),
                max_age_s=(options or settings.engine).max_alert_age_s),
            options=options, poll_s=poll_s, fallback_poll_s=fallback_poll_s,
            owner=owner, may_call=self.liveness.may_call,
        )
        deps = self.worker.deps
        if parse_cluster_page is not None:
            # Epoch 0 is never a lease's: a replica that does not lead writes no checkpoint.
            pollers.register(self.scheduler, deps, clients, settings, parse_cluster_page,
                             fence=lambda: (deps.owner, self.liveness.epoch or 0))
        self.notifier = notifications.register(self.scheduler, deps, settings)
        retention.register(self.scheduler, db, settings, self.clock)
        chainer.register(self.scheduler, db, lambda: (deps.owner, self.liveness.epoch or 0))
        self.scheduler.is_leader = self.liveness.is_leader
        self.scheduler.leader_ticked = self.liveness.ticked
        self.liveness.on_elected = self.scheduler.lead_now
        self._listen_stop = threading.Event()
        self._reloads_seen = 0
        if db.dialect.name == "postgresql":
            self._reloads_seen = state_store.counter(db, RELOADS)
            self.scheduler.add_periodic("reloads", self.follow_reloads, 2.0)
        self._listener: threading.Thread | None = None
        self._started = False

    @property
    def scheduler(self) -> Scheduler:
        """The worker's scheduler (``tick(now)`` drives it by hand)."""
        return self.worker.scheduler

    def start(self) -> None:
        """Reconcile actions a previous process left half-done, then start polling the inbox
        and ticking, each in its own thread (nothing runs on the caller's event loop)."""
        if self._started:
            return
        self.liveness.start()  # before any claim: the others must see this replica alive
        self.worker.start()
        self._listen_stop.clear()
        self._listener = threading.Thread(
            target=self.db.listen, args=(inbox.WAKE_CHANNEL, self._notified, self._listen_stop),
            name="remediator-listen", daemon=True)
        self._listener.start()
        self._started = True
        log.info("service_started", mode=self.status().mode,
                 playbooks_generation=self.playbooks.generation)

    def _notified(self, payload: str) -> None:
        """A NOTIFY of new events (any replica's intake committed some): claim now."""
        del payload
        self.worker.wake()

    def wake(self) -> None:
        """New events were committed to the inbox: the idle worker claims them now instead of
        at its next poll. Thread-safe and cheap; call it after each intake commit. Once called,
        the worker polls only every ``fallback_poll_s`` (for other processes' writes)."""
        self.worker.wake()

    def stop(self) -> None:
        """Stop the worker and scheduler (in-flight events finish) and close the clients."""
        if self._started:
            self._listen_stop.set()
            if self._listener is not None:
                self._listener.join(timeout=5)
            self.worker.stop()
            self.liveness.stop()
            self._started = False
        self.clients.close()

    def reload(self, who: str = "system") -> list[str]:
        """Load the playbooks again; the new set is in force only if it has no problem.
        Returns the problems (empty on success); either way the outcome is audited. On
        PostgreSQL a reload that succeeded is broadcast: every other replica reloads at its
        next :meth:`follow_reloads` (every 2 s)."""
        problems = self._reload(who)
        if not problems and self.db.dialect.name == "postgresql":
            self._reloads_seen = state_store.bump(self.db, RELOADS, to_ms(self.clock.now()))
        return problems

    def follow_reloads(self) -> bool:
        """Reload if another replica broadcast a reload since this one last looked; whether
        it did."""
        latest = state_store.counter(self.db, RELOADS)
        if latest <= self._reloads_seen:
            return False
        self._reloads_seen = latest
        self._reload("broadcast")
        return True

    def _reload(self, who: str) -> list[str]:
        problems = self.playbooks.reload()
        generation = self.playbooks.generation
        audit_store.append(self.db, "playbooks_reload", ts=self.clock.now(), actor=who,
                           data={"ok": not problems, "generation": generation,
                                 "problems": problems})
        if problems:
            log.warning("playbooks_reload_refused", problems=len(problems),
                        generation=generation, first=problems[0])
        else:
            log.info("playbooks_reloaded", generation=generation)
        return problems

    def status(self) -> Status:
        """The mode (DRY-RUN, LIVE or PAUSED), the queue depth and the playbooks in force."""
        pause = state_store.pause_state(self.db)
        mode = "PAUSED" if pause.paused else ("LIVE" if self.settings.live else "DRY-RUN")
        return Status(mode=mode, live=self.settings.live, paused=pause.paused,
                      paused_by=pause.who if pause.paused else "",
                      queue_depth=inbox.count_pending(self.db),
                      playbooks_generation=self.playbooks.generation,
                      rules=len(self.playbooks.current.rules))
