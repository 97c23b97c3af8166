"""Periodic ticks: due delayed actions, approval expiry, verification probes, reconciliation.

APScheduler 3 runs interval jobs only; all durable state is in the database (a delayed action
is a row with a due time), never in pickled jobs, so a restart loses nothing and a renamed
function breaks nothing. Each tick is a plain method that tests call directly with a
:class:`~engine.clock.FakeClock`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import msgspec
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import SchedulerNotRunningError

from engine.clock import to_ms
from engine.deps import Deps
from engine.remediation import run, settle
from engine.remediation.precheck import check_dry_runs
from engine.remediation.probe import poll_probe
from engine.remediation.reconcile import reconcile_row
from engine.store import actions as actions_store
from engine.store import incidents as incidents_store

__all__ = ["Scheduler", "TickReport"]


class TickReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one tick did."""

    reconciled: int = 0
    expired: int = 0
    ran: int = 0
    probed: int = 0


@dataclass(frozen=True)
class _At:
    moment: datetime

    def now(self) -> datetime:
        return self.moment


PROBE_LEASE_MS = 120_000
"""How long a probe (or an expired approval) taken by one replica is its own to handle (the
calls' timeouts are less)."""


class Scheduler:
    """The engine's periodic jobs; ``add_periodic`` adds others (pollers, retention)."""

    def __init__(self, deps: Deps, *, action_every_s: float = 5, probe_every_s: float = 15,
                 reconcile_every_s: float = 60) -> None:
        self.deps = deps
        self._every = {"actions": action_every_s, "probes": probe_every_s,
                       "reconcile": reconcile_every_s}
        self._extra: list[tuple[str, Callable[[], object], float]] = []
        self._leader_only: set[str] = set()
        self.is_leader: Callable[[], bool] = lambda: True
        """Whether this replica leads (the service sets it: engine/runtime/liveness.py)."""
        self.leader_ticked: Callable[[], object] = lambda: None
        """Called as a leader-only job begins (the service records it on the lease)."""
        self._aps: BackgroundScheduler | None = None

    def _at(self, now: datetime | None) -> Deps:
        return self.deps if now is None else replace(self.deps, clock=_At(now))

    def tick(self, now: datetime | None = None) -> TickReport:
        """Everything once, in order: reconcile, expire approvals, run due actions, probe."""
        return TickReport(reconciled=self.reconcile(now), expired=self.expire_approvals(now),
                          ran=self.run_due(now), probed=self.poll_probes(now))

    def reconcile(self, now: datetime | None = None) -> int:
        """Actions left ``started`` by a crash (or stuck past their lease): reconciled from
        the cloud, never re-sent blindly; returns how many this replica reconciled (a row
        another replica took over meanwhile is its own: engine/remediation/outcome.py)."""
        deps = self._at(now)
        rows = actions_store.interrupted(deps.db, owner=deps.owner, now_ms=to_ms(deps.now()),
                                         lease_ms=deps.options.action_lease_s * 1000)
        reconciled = 0
        for row in rows:
            # Another replica may reconcile the same row: only the one that takes it does.
            if actions_store.take_over(deps.db, row.id, from_owner=row.owner, owner=deps.owner):
                reconciled += reconcile_row(deps, msgspec.structs.replace(row, owner=deps.owner))
        return reconciled

    def expire_approvals(self, now: datetime | None = None) -> int:
        """Incidents whose approval was not given in time go to ``on_failure``."""
        deps = self._at(now)
        now_ms = to_ms(deps.now())
        expired = [i for i in incidents_store.list_incidents(deps.db, state="waiting_approval",
                                                             limit=500)
                   if 0 < i.approval_due_ms <= now_ms]
        handled = 0
        for incident in expired:
            if not incidents_store.claim_expiry(deps.db, incident.id,
                                                due_ms=incident.approval_due_ms,
                                                until_ms=now_ms + PROBE_LEASE_MS):
                continue  # another replica expires it
            handled += 1
            deps.audit("approval", {"decision": "expired"}, incident_id=incident.id,
                       resource=incident.resource)
            rule = deps.playbooks.current.rule(incident.rule_id)
            if settle.escalate(deps, incident, rule, "approval expired"):
                run.run_due(deps, incident_id=incident.id)  # on_failure
        return handled

    def run_due(self, now: datetime | None = None) -> int:
        """Run the scheduled actions whose due time has come (none while paused), and the
        read-only pre-checks of the dry-run actions whose time has come."""
        deps = self._at(now)
        ran = run.run_due(deps)
        check_dry_runs(deps)
        return ran

    def poll_probes(self, now: datetime | None = None) -> int:
        """Poll the verification probes that are due."""
        deps = self._at(now)
        now_ms = to_ms(deps.now())
        rows = actions_store.probes_due(deps.db, now_ms)
        polled = 0
        for row in rows:
            # Several replicas tick: the one that takes the row polls it.
            if actions_store.claim_probe(deps.db, row.id, due_ms=row.probe_due_ms,
                                         until_ms=now_ms + PROBE_LEASE_MS):
                poll_probe(deps, row)
                polled += 1
        return polled

    def add_periodic(self, name: str, func: Callable[[], object], every_s: float, *,
                     leader_only: bool = False) -> None:
        """Another periodic job (a poller, retention); call before :meth:`start`. A
        ``leader_only`` job runs only while :attr:`is_leader` says this replica leads (what
        must run once across replicas); the others' periodic ticks claim their own work."""
        self._extra.append((name, func, every_s))
        if leader_only:
            self._leader_only.add(name)

    def start(self) -> None:
        """Start the interval jobs in a background thread (in memory; nothing is pickled)."""
        aps = BackgroundScheduler(timezone="UTC")
        jobs = [("actions", lambda: (self.expire_approvals(), self.run_due())),
                ("probes", self.poll_probes), ("reconcile", self.reconcile)]
        for name, func in jobs:
            aps.add_job(func, "interval", seconds=self._every[name], id=name,
                        max_instances=1, coalesce=True)
        for name, func, every in self._extra:
            run = self._if_leader(func) if name in self._leader_only else func
            aps.add_job(run, "interval", seconds=every, id=name, max_instances=1,
                        coalesce=True)
        aps.start()
        self._aps = aps

    def _if_leader(self, func: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            if not self.is_leader():
                return None
            self.leader_ticked()
            return func()

        return run

    def lead_now(self) -> None:
        """This replica just became the leader: its leader-only jobs run now, not at their
        next interval (what a dead leader left waits no longer than the election)."""
        aps = self._aps
        if aps is None:
            return
        now = datetime.now(UTC)
        for name in self._leader_only:
            with contextlib.suppress(JobLookupError, SchedulerNotRunningError):
                aps.modify_job(name, next_run_time=now)

    def shutdown(self) -> None:
        """Stop the interval jobs, waiting for a running one."""
        if self._aps is not None:
            self._aps.shutdown(wait=True)
            self._aps = None
