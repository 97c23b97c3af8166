"""Databricks notification destinations and job webhook settings, for ``remediator setup``.

Connecting a workspace is two steps: one generic-webhook notification destination that points at
Remediator's ``/databricks-monitor`` (basic auth: a destination carries only a URL, a user name
and a password), then that destination's id in each chosen job's
``webhook_notifications.on_failure`` (and ``on_success``). :func:`plan` only reads; :func:`apply`
changes what the plan says and nothing else:

- the destination is found by its display name (the API never returns a destination's URL), so
  running twice reuses it rather than creating a second one;
- a job is changed with ``jobs/update`` and only its ``webhook_notifications`` field, carried
  over whole with every event's other destinations: ``jobs/reset`` would drop all settings
  not sent;
- Databricks takes at most three destinations per event: a job already at three is refused,
  before anything is changed, with the job and the event named.

Every SDK failure comes back as an :class:`~engine.errors.ActionError` (see
:mod:`engine.cloud.errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from engine.cloud.errors import cloud_call
from engine.config import Secret
from engine.errors import PermanentActionError

if TYPE_CHECKING:
    # The SDK loads where a call is made, never at import (fast CLI start: see clients.py).
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import jobs as dbx_jobs

__all__ = [
    "MAX_PER_EVENT",
    "ClusterView",
    "DestinationPlan",
    "JobChange",
    "SetupPlan",
    "apply",
    "display_name_for",
    "list_clusters",
    "plan",
]

MAX_PER_EVENT = 3
"""Databricks accepts at most three webhook destinations per job event."""


def display_name_for(url: str) -> str:
    """The destination's display name: fixed per Remediator host, so a rerun finds it again."""
    parts = urlsplit(url)
    return f"Remediator ({parts.hostname or url}{parts.path.rstrip('/')})"


@dataclass(frozen=True)
class DestinationPlan:
    """The notification destination: an existing one (``id`` set) or one to create."""

    display_name: str
    url: str
    username: str
    id: str | None

    @property
    def exists(self) -> bool:
        """True when the destination is already in the workspace."""
        return self.id is not None


@dataclass(frozen=True)
class JobChange:
    """One job's webhook events before and after (destination ids per event)."""

    job_id: int
    name: str
    events: tuple[str, ...]
    before: dbx_jobs.WebhookNotifications
    missing: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when the destination is absent from at least one chosen event."""
        return bool(self.missing)


@dataclass(frozen=True)
class SetupPlan:
    """Everything :func:`apply` would do, for printing or applying."""

    destination: DestinationPlan
    jobs: tuple[JobChange, ...]


def _find_destination(w: WorkspaceClient, display_name: str) -> str | None:
    with cloud_call("databricks.notification_destinations.list"):
        for item in w.notification_destinations.list():
            if item.display_name == display_name:
                return item.id
    return None


def _job_ids(w: WorkspaceClient, jobs: Sequence[int] | None) -> Iterable[int]:
    if jobs is not None:
        return jobs
    with cloud_call("databricks.jobs.list"):
        return [job.job_id for job in w.jobs.list() if job.job_id is not None]


def _ids(hooks: list[dbx_jobs.Webhook] | None) -> list[str]:
    return [hook.id for hook in hooks or []]


def plan(
    w: WorkspaceClient,
    url: str,
    username: str,
    *,
    jobs: Sequence[int] | None,
    on_success: bool = False,
) -> SetupPlan:
    """What connecting ``jobs`` (None: every job) to ``url`` would change; reads only.

    Raises PermanentActionError when a job already has :data:`MAX_PER_EVENT` other destinations
    on an event (naming the job and the event), or an ActionError from the SDK.
    """
    from databricks.sdk.service import jobs as dbx_jobs

    name = display_name_for(url)
    destination = DestinationPlan(name, url, username, _find_destination(w, name))
    events = ("on_failure", "on_success") if on_success else ("on_failure",)
    changes = []
    for job_id in _job_ids(w, jobs):
        with cloud_call(f"databricks.jobs.get[job_id={job_id}]"):
            job = w.jobs.get(job_id)
        job_settings = job.settings or dbx_jobs.JobSettings()
        before = job_settings.webhook_notifications or dbx_jobs.WebhookNotifications()
        missing = []
        for event in events:
            ids = _ids(getattr(before, event))
            if destination.id is not None and destination.id in ids:
                continue
            if len(ids) >= MAX_PER_EVENT:
                raise PermanentActionError(
                    f"job {job_id} ({job_settings.name}): webhook_notifications.{event} already "
                    f"has {len(ids)} destinations and Databricks allows at most {MAX_PER_EVENT}; "
                    "remove one from the job or leave the job out (--jobs)"
                )
            missing.append(event)
        changes.append(JobChange(job_id, job_settings.name or "", events, before, tuple(missing)))
    return SetupPlan(destination, tuple(changes))


def apply(w: WorkspaceClient, setup: SetupPlan, password: Secret) -> str:
    """Create (or refresh) the destination, then add it to every job the plan changes.

    Returns the destination id. A reused destination gets the current URL and credentials
    (a rotated password takes effect). Each job gets one ``jobs/update`` with its whole
    ``webhook_notifications``: every other destination and event is kept.
    """
    from databricks.sdk.service import jobs as dbx_jobs
    from databricks.sdk.service import settings as dbx_settings

    dest = setup.destination
    config = dbx_settings.Config(generic_webhook=dbx_settings.GenericWebhookConfig(
        url=dest.url, username=dest.username, password=password.reveal()))
    if dest.id is None:
        with cloud_call("databricks.notification_destinations.create"):
            created = w.notification_destinations.create(display_name=dest.display_name,
                                                         config=config)
        dest_id = created.id
        if dest_id is None:
            raise PermanentActionError(
                "databricks.notification_destinations.create: the answer has no id")
    else:
        dest_id = dest.id
        with cloud_call(f"databricks.notification_destinations.update[id={dest_id}]"):
            w.notification_destinations.update(dest_id, display_name=dest.display_name,
                                               config=config)
    for change in setup.jobs:
        if not change.changed:
            continue
        after = dbx_jobs.WebhookNotifications.from_dict(change.before.as_dict())
        for event in change.missing:
            hooks = list(getattr(after, event) or [])
            if dest_id not in _ids(hooks):
                hooks.append(dbx_jobs.Webhook(id=dest_id))
            setattr(after, event, hooks)
        with cloud_call(f"databricks.jobs.update[job_id={change.job_id}]"):
            w.jobs.update(change.job_id,
                          new_settings=dbx_jobs.JobSettings(webhook_notifications=after))
    return dest_id


@dataclass(frozen=True)
class ClusterView:
    """A cluster whose events the poller reads."""

    cluster_id: str
    name: str
    state: str
    source: str


def list_clusters(w: WorkspaceClient) -> list[ClusterView]:
    """Every cluster of the workspace (``clusters/list``): the cluster-events poller's set."""
    with cloud_call("databricks.clusters.list"):
        return [
            ClusterView(
                c.cluster_id or "", c.cluster_name or "",
                c.state.value if c.state is not None else "",
                c.cluster_source.value if c.cluster_source is not None else "",
            )
            for c in w.clusters.list()
        ]
