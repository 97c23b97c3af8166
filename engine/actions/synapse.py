"""Synapse pipeline actions through ``azure-synapse-artifacts`` (the workspace data plane).

Synapse has no ``startFromFailure``: a rerun "from the failed activity" names that activity
(``start_activity_name``, taken from the event's ``activity`` attribute by default). Like ADF,
a recovery run joins the original's run group, which :func:`reconcile_rerun` looks for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.actions import adf
from engine.actions.base import Params
from engine.actions.context import ActionContext, ActionResult, Precheck, ProbeResult
from engine.cloud import names
from engine.cloud.clients import Clients, SynapseRoute
from engine.cloud.errors import cloud_call
from engine.cloud.runs import synapse_runs
from engine.cloud.targets import arm_parts, attr, drop_empty, short_id
from engine.errors import PermanentActionError
from engine.events import ErrorEvent

if TYPE_CHECKING:
    # SDKs load where a call is made, never at import (fast CLI start: see clients.py).
    from azure.synapse.artifacts import ArtifactsClient
    from azure.synapse.artifacts.models import PipelineRun

__all__ = [
    "RerunParams",
    "describe_rerun",
    "precheck_rerun",
    "probe_run",
    "reconcile_rerun",
    "rerun_pipeline",
    "target",
]

class RerunParams(Params, kw_only=True):
    """Rerun ``pipeline`` of Synapse ``workspace`` as a recovery of ``run_id``.

    From ``start_activity_name`` when set, else the whole pipeline; ``parameters`` replace
    the original run's.
    """

    workspace: str
    pipeline: str
    run_id: str
    start_activity_name: str = ""
    parameters: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # The pipeline and run id go into the workspace endpoint's URL path.
        names.check("workspace", "synapse_workspace", self.workspace)
        names.check("pipeline", "synapse_pipeline", self.pipeline)
        names.check("run_id", "pipeline_run_id", self.run_id)
        names.check("start_activity_name", "activity", self.start_activity_name, optional=True)


def target(event: ErrorEvent) -> dict[str, Any]:
    """Workspace, pipeline, run id and failed activity of a Synapse event."""
    return drop_empty({
        "workspace": attr(event, "workspace") or arm_parts(event.resource_id).get("name", ""),
        "pipeline": attr(event, "pipeline") or event.resource,
        "run_id": event.run_id,
        "start_activity_name": attr(event, "activity"),
    })


def _client(clients: Clients, workspace: str) -> tuple[SynapseRoute, ArtifactsClient]:
    route = clients.synapse_route(workspace)
    return route, clients.synapse(route)


def describe_rerun(params: RerunParams, event: ErrorEvent) -> str:
    """``would rerun pipeline P in Synapse workspace W from activity A (recovery of run R)``."""
    start = (f"from activity {params.start_activity_name}" if params.start_activity_name
             else "in full")
    return (f"would rerun pipeline {params.pipeline} in Synapse workspace {params.workspace} "
            f"{start} (recovery of run {short_id(params.run_id)})")


def _ref(route: SynapseRoute, params: RerunParams, run_id: str) -> dict[str, str]:
    return {"cloud": route.name, "workspace": params.workspace, "pipeline": params.pipeline,
            "run_id": run_id, "original_run_id": params.run_id}


def rerun_pipeline(params: RerunParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """``pipeline.create_pipeline_run`` as a recovery of ``run_id``."""
    route, client = _client(ctx.clients, params.workspace)
    where = f"synapse.rerun_pipeline[workspace={params.workspace} pipeline={params.pipeline}]"
    with cloud_call(where):
        response = client.pipeline.create_pipeline_run(
            params.pipeline, reference_pipeline_run_id=params.run_id, is_recovery=True,
            start_activity_name=params.start_activity_name or None,
            parameters=params.parameters,
        )
    new_run = str(response.run_id)
    return ActionResult(
        outcome="started",
        detail=f"rerun {new_run} of pipeline {params.pipeline} started "
               f"(recovery of run {params.run_id})",
        ref=_ref(route, params, new_run),
    )


def probe_run(result: ActionResult, ctx: ActionContext) -> ProbeResult:
    """``pipeline_run.get_pipeline_run`` of the rerun."""
    ref = result.ref
    cfg = ctx.clients.clouds.synapse.get(ref["cloud"])
    if cfg is None:
        raise PermanentActionError(
            f"synapse probe: the settings no longer have [clouds.synapse.{ref['cloud']}]"
        )
    client = ctx.clients.synapse(SynapseRoute(ref["cloud"], cfg))
    with cloud_call(f"synapse.probe[workspace={ref['workspace']} run={ref['run_id']}]"):
        run = client.pipeline_run.get_pipeline_run(ref["run_id"])
    return adf.run_state(run)  # same statuses as ADF


def _run_group(params: RerunParams, ctx: ActionContext,
               where: str) -> tuple[SynapseRoute, Any, datetime, list[PipelineRun]]:
    """The route, the original run, its start and the runs of its run group since then."""
    from azure.synapse.artifacts.models import RunQueryFilter

    route, client = _client(ctx.clients, params.workspace)
    with cloud_call(where):
        original = client.pipeline_run.get_pipeline_run(params.run_id)
        started = original.run_start or datetime.now(UTC) - timedelta(days=30)
        runs = synapse_runs(client, started, datetime.now(UTC) + timedelta(hours=1), [
            RunQueryFilter(operand="RunGroupId", operator="Equals",
                           values=[original.run_group_id or params.run_id]),
            RunQueryFilter(operand="PipelineName", operator="Equals", values=[params.pipeline]),
        ])
    return route, original, started, runs


def reconcile_rerun(
    params: RerunParams, event: ErrorEvent, ctx: ActionContext
) -> ActionResult | None:
    """A later run in the original's run group is the rerun already made."""
    where = f"synapse.rerun_pipeline[workspace={params.workspace} pipeline={params.pipeline}]"
    route, _, started, runs = _run_group(params, ctx, where)
    return adf.already_rerun(runs, params.run_id, params.pipeline, started,
                             lambda rerun_id: _ref(route, params, rerun_id))


def precheck_rerun(params: RerunParams, event: ErrorEvent, ctx: ActionContext) -> Precheck:
    """As for Data Factory (:func:`engine.actions.adf.rerun_needed`): only a Failed run that
    no running or succeeded rerun follows."""
    where = (f"synapse.rerun_pipeline[workspace={params.workspace} pipeline={params.pipeline} "
             f"run={params.run_id}]")
    _, original, started, runs = _run_group(params, ctx, where)
    return adf.rerun_needed(original, adf.later_runs(runs, params.run_id, started),
                            params.pipeline, f"{where} precheck")
