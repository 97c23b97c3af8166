"""The Databricks look-ups of the pollers: cluster lists, raw cluster-event pages, failed runs.

What Databricks cannot push is fetched here, through ``databricks-sdk`` (this package is the
only one that imports SDKs). Every call maps the SDK's errors to ours, chained:
:class:`~engine.errors.RetryableActionError` (429, 5xx, timeouts) or
:class:`~engine.errors.PermanentActionError`; the poller logs and records them and the next
tick tries again. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from engine.cloud.clients import Clients, DatabricksRoute
from engine.cloud.errors import cloud_call

__all__ = [
    "CLUSTER_EVENTS_PATH",
    "ClusterRef",
    "FailedRun",
    "cluster_event_pages",
    "failed_runs",
    "list_clusters",
]

CLUSTER_EVENTS_PATH = "/api/2.1/clusters/events"
_PAGE_LIMIT = 100
_MAX_PAGES = 100  # 10,000 events per cluster and tick; the checkpoint resumes the rest
_FAILED_RESULTS = frozenset({"FAILED", "TIMEDOUT"})  # jobs.RunResultState values



class ClusterRef(msgspec.Struct, frozen=True, kw_only=True):
    """A cluster to poll: its id and name (the events API gives only the id)."""

    cluster_id: str
    name: str = ""


class FailedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A completed job run that failed, as ``jobs/runs/list`` shows it (times in ms)."""

    run_id: str
    job_id: str
    run_name: str
    result_state: str
    life_cycle_state: str
    state_message: str
    start_time_ms: int
    end_time_ms: int
    run_page_url: str = ""


def list_clusters(clients: Clients, route: DatabricksRoute) -> list[ClusterRef]:
    """Every cluster of the workspace (``clusters/list``), with its name."""
    w = clients.databricks(route)
    with cloud_call(f"databricks clusters.list [workspace={route.name}]"):
        return [ClusterRef(cluster_id=c.cluster_id, name=c.cluster_name or "")
                for c in w.clusters.list() if c.cluster_id]


def cluster_event_pages(
    clients: Clients, route: DatabricksRoute, cluster_id: str, start_ms: int
) -> Iterator[dict[str, Any]]:
    """Raw pages of ``POST /api/2.1/clusters/events`` for ``cluster_id``: ``TERMINATING``
    events from ``start_ms`` on, oldest first, following ``next_page_token`` or ``next_page``.

    Pages are yielded as the API returns them, so that the caller can store one page and
    advance its checkpoint before asking for the next.
    """
    w = clients.databricks(route)
    body: dict[str, Any] | None = {
        "cluster_id": cluster_id, "start_time": start_ms, "order": "ASC",
        "event_types": ["TERMINATING"], "limit": _PAGE_LIMIT,
    }
    where = f"databricks clusters.events [cluster_id={cluster_id}]"
    for _ in range(_MAX_PAGES):
        if body is None:
            return
        with cloud_call(where):
            page = w.api_client.do("POST", CLUSTER_EVENTS_PATH, body=body)
        if not isinstance(page, dict):
            return
        yield page
        token, following = page.get("next_page_token"), page.get("next_page")
        if token:
            body = {**body, "page_token": token}
            body.pop("offset", None)
        elif isinstance(following, dict) and following:
            body = dict(following)
        else:
            body = None


def failed_runs(clients: Clients, route: DatabricksRoute, start_ms: int) -> list[FailedRun]:
    """Completed runs started at ``start_ms`` or later (``jobs/runs/list``, every page) whose
    result is FAILED or TIMEDOUT, or that ended in INTERNAL_ERROR."""
    w = clients.databricks(route)
    out: list[FailedRun] = []
    with cloud_call(f"databricks jobs.list_runs [workspace={route.name}]"):
        for run in w.jobs.list_runs(completed_only=True, start_time_from=start_ms,
                                    expand_tasks=False):
            state = run.state
            result = state.result_state if state is not None else None
            life = state.life_cycle_state if state is not None else None
            result_value = result.value if result is not None else None
            life_value = life.value if life is not None else None
            if result_value not in _FAILED_RESULTS and life_value != "INTERNAL_ERROR":
                continue
            if run.run_id is None or run.job_id is None:
                continue
            out.append(FailedRun(
                run_id=str(run.run_id), job_id=str(run.job_id), run_name=run.run_name or "",
                result_state=result.value if result is not None else "",
                life_cycle_state=life.value if life is not None else "",
                state_message=(state.state_message or "") if state is not None else "",
                start_time_ms=run.start_time or 0, end_time_ms=run.end_time or 0,
                run_page_url=run.run_page_url or "",
            ))
    return out
