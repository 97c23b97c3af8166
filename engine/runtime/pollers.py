"""Databricks pollers: cluster events (which Databricks cannot push) and missed job failures.

Two periodic jobs per configured workspace (``[pollers.databricks.<name>]``), registered on
the :class:`~engine.runtime.scheduler.Scheduler` by :func:`register`:

- **cluster events**: ``POST /api/2.1/clusters/events`` per cluster (the listed ids, or every
  cluster of ``clusters/list`` for ``"all"``), ``TERMINATING`` only, oldest first, from the
  cluster's checkpoint. Each page is parsed by the injected parser (the receivers' own
  ``parse_cluster_events_page``; the engine never imports the receivers) and committed to the
  inbox (endpoint ``databricks-poller``; dedup key ``dbx-cluster:<id>:<timestamp>``); only then
  does the checkpoint move past the page's last event. A crash between the two re-reads the
  page next time, and the inbox counts the repeats as duplicates.
- **missed failures**: ``jobs/runs/list`` (completed runs started since the checkpoint); every
  FAILED / TIMEDOUT / INTERNAL_ERROR run becomes the event a ``jobs.on_failure`` webhook would
  have made, under the same dedup key ``dbx:jobs.on_failure:<run_id>``. Whichever of the
  webhook and the reconciler comes second is a duplicate, never a second remediation; a run
  the in-house sender already reported (``dbx:job.failure:<run_id>``) is counted as a
  duplicate and not inserted. (Task-level notifications name the task's run, not the job's:
  jobs that send only those are reconciled under the job run's own key.) As a
  run is listed by its start time and may fail hours later, the checkpoint never moves closer
  to now than ``runs_lookback_s``.

Checkpoints are rows in the database (engine/store/state.py), never memory alone. A cloud
failure is logged and recorded in the audit log (kind ``poll``); the next tick tries again from
the same checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import structlog

from engine.clock import to_ms
from engine.cloud import poll
from engine.cloud.clients import Clients, DatabricksRoute
from engine.config import DatabricksPollSettings, Settings
from engine.deps import Deps
from engine.errors import ActionError, ConfigError, PayloadError
from engine.events import ErrorEvent
from engine.store import inbox
from engine.store import state as state_store
from engine.text.redact import redact

if TYPE_CHECKING:
    from engine.runtime.scheduler import Scheduler

__all__ = [
    "ENDPOINT",
    "DatabricksPoller",
    "PageParser",
    "PollReport",
    "missed_run_event",
    "register",
]

ENDPOINT = "databricks-poller"
"""The inbox endpoint of the events the pollers insert."""

log = structlog.get_logger("remediator.pollers")


class PageParser(Protocol):
    """``receivers.databricks.parse_cluster_events_page``, injected by the service."""

    def __call__(self, page: dict[str, Any], *, cluster_name: str = "",
                 workspace: str = "") -> list[ErrorEvent]: ...


class PollReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one poll did: new events, duplicates, and the failures (each in words)."""

    inserted: int = 0
    duplicates: int = 0
    errors: tuple[str, ...] = ()


class _Tally:
    def __init__(self) -> None:
        self.inserted = 0
        self.duplicates = 0
        self.errors: list[str] = []

    def add(self, receipts: list[inbox.Receipt]) -> None:
        self.duplicates += sum(r.duplicate for r in receipts)
        self.inserted += sum(not r.duplicate for r in receipts)

    def report(self) -> PollReport:
        return PollReport(inserted=self.inserted, duplicates=self.duplicates,
                          errors=tuple(self.errors))


def _in_house_key(run_id: str) -> str:
    """The dedup key of the in-house sender's ``job.failure`` for a job run (its parser is
    receivers.databricks; the engine does not import it)."""
    return f"dbx:job.failure:{run_id}"


def missed_run_event(run: poll.FailedRun, workspace_id: str) -> ErrorEvent:
    """The event a ``jobs.on_failure`` webhook gives for ``run`` (same dedup key, kind,
    resource and message, so the same fingerprint), marked ``detected_by: reconciler``."""
    label = run.run_name or run.job_id
    return ErrorEvent(
        source="databricks",
        kind="job_run",
        status="firing",
        dedup_key=f"dbx:jobs.on_failure:{run.run_id}",
        resource=run.run_name or f"job {run.job_id}",
        resource_id=run.job_id,
        run_id=run.run_id,
        message=f"Job {label} run {run.run_id} failed",
        occurred_at=datetime.fromtimestamp(run.end_time_ms / 1000, UTC)
        if run.end_time_ms else None,
        attributes={
            "event_type": "jobs.on_failure",
            "job_id": run.job_id,
            "workspace_id": workspace_id,
            "detected_by": "reconciler",
            "result_state": run.result_state or run.life_cycle_state,
            "state_message": run.state_message,
            "run_page_url": run.run_page_url,
        },
    ).with_fingerprint()


class DatabricksPoller:
    """The pollers of every ``[pollers.databricks.<name>]`` workspace.

    ``poll_cluster_events()`` and ``reconcile_runs()`` are plain methods (one tick each) that
    the scheduler runs periodically and tests call directly; both read the time from
    ``deps.clock`` and never raise for a cloud failure.
    """

    def __init__(self, deps: Deps, clients: Clients, settings: Settings,
                 parse_cluster_page: PageParser,
                 fence: Callable[[], tuple[str, int] | None] = lambda: None) -> None:
        self.deps = deps
        self.fence = fence
        """(owner, epoch) of the leader lease this replica polls under (engine/runtime/
        liveness.py): its checkpoint writes are refused once another leads. None: unfenced
        (a poller driven by hand)."""
        self.clients = clients
        self.settings = settings.pollers
        self.clouds = settings.clouds
        self.parse = parse_cluster_page

    def _routes(self) -> list[tuple[DatabricksRoute, DatabricksPollSettings]]:
        out = []
        for name, cfg in sorted(self.settings.databricks.items()):
            cloud = self.clouds.databricks.get(name)
            if cloud is None:
                raise ConfigError(f"pollers.databricks.{name}: no [clouds.databricks.{name}] entry")
            out.append((DatabricksRoute(name, cloud), cfg))
        return out

    def _failed(self, tally: _Tally, poller: str, where: str, exc: Exception) -> None:
        text = f"{where}: {exc}"
        tally.errors.append(text)
        log.warning("poll_failed", poller=poller, error=text)
        self.deps.audit("poll", {"poller": poller, "ok": False, "error": text},
                        resource=where)

    # -- cluster events ----------------------------------------------------------------------

    def poll_cluster_events(self) -> PollReport:
        """One tick of the cluster-events poller over every configured workspace."""
        tally = _Tally()
        for route, cfg in self._routes():
            try:
                clusters = self._clusters(route, cfg)
            except (ActionError, ConfigError) as exc:
                self._failed(tally, "cluster-events", f"databricks:{route.name}", exc)
                continue
            for cluster in clusters:
                self._poll_cluster(tally, route, cluster)
        return tally.report()

    def _clusters(self, route: DatabricksRoute,
                  cfg: DatabricksPollSettings) -> list[poll.ClusterRef]:
        if not cfg.clusters:
            return []
        listed = poll.list_clusters(self.clients, route)
        if cfg.clusters == "all":
            return listed
        names = {c.cluster_id: c.name for c in listed}
        return [poll.ClusterRef(cluster_id=i, name=names.get(i, "")) for i in cfg.clusters]

    def _poll_cluster(self, tally: _Tally, route: DatabricksRoute,
                      cluster: poll.ClusterRef) -> None:
        db = self.deps.db
        key = f"databricks-cluster-events:{route.name}:{cluster.cluster_id}"
        now = self.deps.now()
        stored = state_store.get_checkpoint(db, key)
        start = int(stored) if stored is not None else \
            to_ms(now - timedelta(seconds=self.settings.cluster_lookback_s))
        if stored is None:
            state_store.set_checkpoint(db, key, str(start), to_ms(now), fence=self.fence())
        where = f"databricks:{route.name}:cluster:{cluster.cluster_id}"
        try:
            for page in poll.cluster_event_pages(self.clients, route, cluster.cluster_id, start):
                events = self.parse(page, cluster_name=cluster.name,
                                    workspace=route.settings.workspace_id)
                if events:
                    tally.add(inbox.insert(db, [e.redacted() for e in events],
                                           _redacted_page(page), ENDPOINT))
                stamps = [e.get("timestamp") for e in page.get("events") or []
                          if isinstance(e, dict) and isinstance(e.get("timestamp"), int)]
                if stamps:  # the page is committed: move past its last event
                    start = max(start, max(stamps) + 1)
                    state_store.set_checkpoint(db, key, str(start), to_ms(self.deps.now()),
                                               fence=self.fence())
        except (ActionError, ConfigError, PayloadError) as exc:
            self._failed(tally, "cluster-events", where, exc)

    # -- missed job failures -----------------------------------------------------------------

    def reconcile_runs(self) -> PollReport:
        """One tick of the missed-failure reconciler over every configured workspace."""
        tally = _Tally()
        db = self.deps.db
        for route, cfg in self._routes():
            if not cfg.reconcile_runs:
                continue
            key = f"databricks-runs:{route.name}"
            now = self.deps.now()
            floor = to_ms(now - timedelta(seconds=self.settings.runs_lookback_s))
            stored = state_store.get_checkpoint(db, key)
            start = int(stored) if stored is not None else floor
            try:
                runs = poll.failed_runs(self.clients, route, start)
            except (ActionError, ConfigError) as exc:
                self._failed(tally, "missed-runs", f"databricks:{route.name}", exc)
                continue
            reported = inbox.existing_keys(db, [_in_house_key(r.run_id) for r in runs])
            tally.duplicates += sum(_in_house_key(r.run_id) in reported for r in runs)
            runs = [r for r in runs if _in_house_key(r.run_id) not in reported]
            events = [missed_run_event(r, route.settings.workspace_id) for r in runs]
            if events:
                raw = redact({"reconciled_runs": [msgspec.to_builtins(r) for r in runs]})
                tally.add(inbox.insert(db, [e.redacted() for e in events], raw, ENDPOINT))
            state_store.set_checkpoint(db, key, str(max(start, floor)), to_ms(now),
                                       fence=self.fence())
        return tally.report()


def _redacted_page(page: dict[str, Any]) -> dict[str, Any]:
    """The page as stored beside its events: the events only (no paging tokens), redacted."""
    return {"events": redact(page.get("events") or [])}


def register(scheduler: Scheduler, deps: Deps, clients: Clients, settings: Settings,
             parse_cluster_page: Callable[..., list[ErrorEvent]],
             fence: Callable[[], tuple[str, int] | None] = lambda: None) -> None:
    """Add the Databricks pollers of ``settings.pollers`` to ``scheduler`` (before it starts),
    as the leader's jobs, their checkpoints fenced by ``fence`` (see :class:`DatabricksPoller`).

    Nothing is added when the pollers are disabled or no workspace is configured; the
    reconciler only when some workspace has ``reconcile_runs``.
    """
    cfg = settings.pollers
    if not cfg.enabled or not cfg.databricks:
        return
    poller = DatabricksPoller(deps, clients, settings, parse_cluster_page, fence)
    if any(w.clusters for w in cfg.databricks.values()):
        scheduler.add_periodic("databricks-cluster-events",
                               _until_fenced(poller.poll_cluster_events),
                               cfg.cluster_events_every_s, leader_only=True)
    if any(w.reconcile_runs for w in cfg.databricks.values()):
        scheduler.add_periodic("databricks-missed-runs", _until_fenced(poller.reconcile_runs),
                               cfg.runs_every_s, leader_only=True)


def _until_fenced(tick: Callable[[], PollReport]) -> Callable[[], PollReport | None]:
    """The tick, ended (not crashed) when a checkpoint write finds another replica leading:
    the new leader polls on from the checkpoint it holds."""
    def run() -> PollReport | None:
        try:
            return tick()
        except state_store.NotLeader as exc:
            log.warning("poll_fenced", error=str(exc))
            return None

    return run
