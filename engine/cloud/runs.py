"""Pipeline-run queries of Data Factory and Synapse, following their continuation tokens: what
the rerun actions (their run groups) and enrichment (the failed runs behind an alert) both
ask. SDKs load where a call is made, never at import."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.mgmt.datafactory import DataFactoryManagementClient
    from azure.mgmt.datafactory.models import PipelineRun, RunQueryFilter
    from azure.synapse.artifacts import ArtifactsClient
    from azure.synapse.artifacts.models import PipelineRun as SynapseRun
    from azure.synapse.artifacts.models import RunQueryFilter as SynapseFilter

__all__ = ["adf_runs", "follow_pages", "synapse_runs"]


def adf_runs(
    client: DataFactoryManagementClient, rg: str, factory: str, after: datetime,
    before: datetime, filters: list[RunQueryFilter], limit: int = 20,
) -> list[PipelineRun]:
    """``pipeline_runs.query_by_factory``, following continuation tokens (at most ``limit``
    pages: the SDK does not follow them for us)."""
    from azure.mgmt.datafactory.models import RunFilterParameters

    return follow_pages(
        lambda token: client.pipeline_runs.query_by_factory(
            rg, factory,
            RunFilterParameters(last_updated_after=after, last_updated_before=before,
                                filters=filters, continuation_token=token),
        ),
        limit,
    )


def synapse_runs(client: ArtifactsClient, after: datetime, before: datetime,
                 filters: list[SynapseFilter], limit: int = 20) -> list[SynapseRun]:
    """``query_pipeline_runs_by_workspace``, following continuation tokens (``limit`` pages)."""
    from azure.synapse.artifacts.models import RunFilterParameters

    return follow_pages(
        lambda token: client.pipeline_run.query_pipeline_runs_by_workspace(RunFilterParameters(
            last_updated_after=after, last_updated_before=before, filters=filters,
            continuation_token=token,
        )),
        limit,
    )


def follow_pages(fetch: Callable[[str | None], Any], limit: int) -> list[Any]:
    """The ``value`` of every page that ``fetch(continuation_token)`` returns, at most
    ``limit`` pages (the ADF and Synapse SDKs return one page and a token, not an iterator)."""
    items: list[Any] = []
    token: str | None = None
    for _ in range(limit):
        page = fetch(token)
        items.extend(page.value or [])
        token = page.continuation_token
        if not token:
            break
    return items
