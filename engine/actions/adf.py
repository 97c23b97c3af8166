"""Azure Data Factory actions through ``azure-mgmt-datafactory``: rerun and cancel a run.

A rerun is a *recovery* run (``isRecovery``, ``referencePipelineRunId``): ADF puts it in the
original run's run group, which is how :func:`reconcile_rerun` finds it after a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.actions.base import Params
from engine.actions.context import ActionContext, ActionResult, Precheck, ProbeResult
from engine.cloud import names
from engine.cloud.clients import AdfRoute, Clients
from engine.cloud.errors import cloud_call
from engine.cloud.runs import adf_runs
from engine.cloud.targets import arm_parts, attr, drop_empty, short_id
from engine.errors import PermanentActionError
from engine.events import ErrorEvent

if TYPE_CHECKING:
    # SDKs load where a call is made, never at import (fast CLI start: see clients.py).
    from azure.mgmt.datafactory import DataFactoryManagementClient
    from azure.mgmt.datafactory.models import PipelineRun

__all__ = [
    "CancelParams",
    "RerunParams",
    "already_rerun",
    "cancel_run",
    "describe_cancel",
    "describe_rerun",
    "later_runs",
    "precheck_rerun",
    "probe_run",
    "reconcile_rerun",
    "rerun_needed",
    "rerun_pipeline",
    "run_state",
    "target",
]

RUNNING = frozenset({"Queued", "InProgress", "Canceling"})


class RerunParams(Params, kw_only=True):
    """Rerun ``pipeline`` of ``factory`` as a recovery of ``run_id``.

    From the failed activity (``start_from_failure``, the default), from a named activity
    (``start_activity_name``) or, with both off, the whole pipeline. ``parameters`` replace
    the original run's parameters (which ADF reuses when none are given).
    """

    factory: str
    pipeline: str
    run_id: str
    subscription: str = ""
    resource_group: str = ""
    start_from_failure: bool = True
    start_activity_name: str = ""
    parameters: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _check_names(self)
        names.check("start_activity_name", "activity", self.start_activity_name, optional=True)
        if self.start_activity_name and self.start_from_failure:
            raise ValueError(
                "start_activity_name and start_from_failure exclude each other; "
                "set start_from_failure: false to start from a named activity"
            )


class CancelParams(Params, kw_only=True):
    """Cancel run ``run_id`` of ``factory`` (and, ``recursive``, the runs it started)."""

    factory: str
    run_id: str
    pipeline: str = ""
    subscription: str = ""
    resource_group: str = ""
    recursive: bool = True

    def __post_init__(self) -> None:
        _check_names(self)


def _check_names(params: RerunParams | CancelParams) -> None:
    """Every name that goes into the ARM URL, by Data Factory's own rules (engine.cloud.names):
    a pipeline ``..`` would otherwise turn ``.../pipelines/../createRun`` into another call."""
    # "" is rendered for alerts that name no factory (playbooks/adf.yaml); :func:`_client`
    # refuses it before any call.
    names.check("factory", "factory", params.factory, optional=True)
    names.check("pipeline", "adf_pipeline", params.pipeline, optional=isinstance(params,
                                                                                CancelParams))
    names.check("run_id", "pipeline_run_id", params.run_id)
    names.check("subscription", "subscription", params.subscription, optional=True)
    names.check("resource_group", "resource_group", params.resource_group, optional=True)


def target(event: ErrorEvent) -> dict[str, Any]:
    """Factory, pipeline, run id, subscription and resource group of an ADF event."""
    arm = arm_parts(event.resource_id)
    return drop_empty({
        "factory": attr(event, "factory") or arm.get("name", ""),
        "pipeline": attr(event, "pipeline") or event.resource,
        "run_id": event.run_id,
        "subscription": attr(event, "subscription") or arm.get("subscription", ""),
        "resource_group": attr(event, "resource_group") or arm.get("resource_group", ""),
    })


def _where(action: str, factory: str, pipeline: str = "", run_id: str = "") -> str:
    parts = [f"factory={factory}"]
    if pipeline:
        parts.append(f"pipeline={pipeline}")
    if run_id:
        parts.append(f"run={run_id}")
    return f"{action}[{' '.join(parts)}]"


def _client(
    clients: Clients, factory: str, subscription: str, resource_group: str
) -> tuple[AdfRoute, str, DataFactoryManagementClient]:
    if not factory:
        raise PermanentActionError(
            "adf: the event names no factory (no factory attribute, no factory ARM id): "
            "Data Factory's calls need one; nothing was called")
    route = clients.adf_route(factory, subscription, resource_group)
    return route, resource_group or route.settings.resource_group, clients.adf(route)


def describe_rerun(params: RerunParams, event: ErrorEvent) -> str:
    """``would rerun pipeline P in factory F from the failed activity (recovery of run R)``."""
    if params.start_activity_name:
        start = f"from activity {params.start_activity_name}"
    elif params.start_from_failure:
        start = "from the failed activity"
    else:
        start = "in full"
    with_params = " with new parameters" if params.parameters else ""
    return (f"would rerun pipeline {params.pipeline} in factory {params.factory} {start}"
            f"{with_params} (recovery of run {short_id(params.run_id)})")


def rerun_pipeline(params: RerunParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """``pipelines.create_run`` as a recovery of ``run_id``; the new run is probed."""
    where = _where("adf.rerun_pipeline", params.factory, params.pipeline)
    route, rg, client = _client(ctx.clients, params.factory, params.subscription,
                                params.resource_group)
    with cloud_call(where):
        response = client.pipelines.create_run(
            rg, params.factory, params.pipeline, params.parameters,
            reference_pipeline_run_id=params.run_id, is_recovery=True,
            start_from_failure=params.start_from_failure or None,
            start_activity_name=params.start_activity_name or None,
        )
    new_run = str(response.run_id)
    return ActionResult(
        outcome="started",
        detail=f"rerun {new_run} of pipeline {params.pipeline} started "
               f"(recovery of run {params.run_id})",
        ref=_ref(route, rg, params.factory, params.pipeline, new_run, params.run_id),
    )


def _ref(route: AdfRoute, rg: str, factory: str, pipeline: str, run_id: str,
         original: str) -> dict[str, str]:
    return {"cloud": route.name, "resource_group": rg, "factory": factory,
            "pipeline": pipeline, "run_id": run_id, "original_run_id": original}


def run_state(run: Any) -> ProbeResult:
    """A pipeline run's status (ADF or Synapse ``PipelineRun``: same fields and statuses)."""
    status = str(run.status or "")
    name = f"run {run.run_id} of pipeline {run.pipeline_name}"
    if status in RUNNING:
        return ProbeResult(state="running", detail=f"{name} is {status}")
    if status == "Succeeded":
        return ProbeResult(state="succeeded", detail=f"{name} succeeded")
    message = f": {run.message}" if run.message else ""
    return ProbeResult(state="failed", detail=f"{name} ended {status or 'unknown'}{message}")


def probe_run(result: ActionResult, ctx: ActionContext) -> ProbeResult:
    """``pipeline_runs.get`` of the run that the rerun started."""
    ref = result.ref
    try:
        cfg = ctx.clients.clouds.adf[ref["cloud"]]
    except KeyError as exc:
        raise PermanentActionError(
            f"adf probe: the settings no longer have [clouds.adf.{ref.get('cloud')}]"
        ) from exc
    client = ctx.clients.adf(AdfRoute(ref["cloud"], cfg))
    with cloud_call(_where("adf.probe", ref["factory"], ref["pipeline"], ref["run_id"])):
        run = client.pipeline_runs.get(ref["resource_group"], ref["factory"], ref["run_id"])
    return run_state(run)


def _run_group(params: RerunParams, ctx: ActionContext,
               where: str) -> tuple[AdfRoute, str, Any, datetime, list[PipelineRun]]:
    """The route, resource group, the original run, its start and the runs of its run group
    (the recoveries ADF puts there) since it started."""
    from azure.mgmt.datafactory.models import RunQueryFilter

    route, rg, client = _client(ctx.clients, params.factory, params.subscription,
                                params.resource_group)
    with cloud_call(where):
        original = client.pipeline_runs.get(rg, params.factory, params.run_id)
        started = original.run_start or datetime.now(UTC) - timedelta(days=30)
        group = original.run_group_id or params.run_id
        runs = adf_runs(
            client, rg, params.factory, started, datetime.now(UTC) + timedelta(hours=1),
            [RunQueryFilter(operand="RunGroupId", operator="Equals", values_property=[group]),
             RunQueryFilter(operand="PipelineName", operator="Equals",
                            values_property=[params.pipeline])],
        )
    return route, rg, original, started, runs


def reconcile_rerun(
    params: RerunParams, event: ErrorEvent, ctx: ActionContext
) -> ActionResult | None:
    """Find a recovery run of ``run_id`` already started: same run group, started later."""
    where = _where("adf.rerun_pipeline", params.factory, params.pipeline)
    route, rg, _, started, runs = _run_group(params, ctx, where)
    return already_rerun(
        runs, params.run_id, params.pipeline, started,
        lambda rerun_id: _ref(route, rg, params.factory, params.pipeline, rerun_id, params.run_id),
    )


def precheck_rerun(params: RerunParams, event: ErrorEvent, ctx: ActionContext) -> Precheck:
    """The run still needs a rerun: it failed, and no rerun of it is running or succeeded."""
    where = _where("adf.rerun_pipeline", params.factory, params.pipeline, params.run_id)
    _, _, original, started, runs = _run_group(params, ctx, where)
    return rerun_needed(original, later_runs(runs, params.run_id, started), params.pipeline,
                        f"{where} precheck")


def later_runs(runs: list[Any], run_id: str, started: datetime) -> list[Any]:
    """The runs of a run group other than ``run_id`` that started after it (its reruns)."""
    return [r for r in runs if r.run_id != run_id
            and (r.run_start is None or r.run_start > started)]


_FINISHED_NOT_FAILED = frozenset({"Succeeded", "Cancelled"})


def rerun_needed(original: Any, later: list[Any], pipeline: str, where: str) -> Precheck:
    """Whether pipeline run ``original`` (ADF or Synapse) still needs a rerun.

    A run of another pipeline than ``pipeline`` is refused (the alert does not describe it:
    one failed run id would otherwise let a forged alert rerun any pipeline). Only a Failed
    run is rerun; one that is still running, succeeded or was cancelled is not.
    A later run of its run group is a rerun already made: when the latest one failed too (an
    earlier attempt's rerun) the run needs another, else (running, succeeded, cancelled) not.
    A status the check does not know: :class:`PermanentActionError` (a person looks).
    """
    run_id = str(original.run_id)
    status = str(original.status or "")
    owner = str(original.pipeline_name or "")
    seen: dict[str, Any] = {"run_id": run_id, "pipeline": owner, "status": status}
    if owner.casefold() != pipeline.casefold():  # pipeline names are case-insensitive
        return Precheck(act=False, refuse=True, seen=seen, reason=(
            f"run {run_id} belongs to pipeline {owner or '(none)'}, not {pipeline}: the alert "
            "does not describe this run; nothing was called"))
    if status in RUNNING or status in _FINISHED_NOT_FAILED:
        return Precheck(act=False, seen=seen, reason=f"nothing to do: run {run_id} of "
                        f"pipeline {pipeline} is {status}, not Failed")
    if status != "Failed":
        raise PermanentActionError(
            f"{where}: run {run_id} of pipeline {pipeline} has status {status or 'none'!r}, "
            "which the check does not know; nothing was called")
    if later:
        latest = max(later, key=lambda r: r.run_start or datetime.min.replace(tzinfo=UTC))
        latest_status = str(latest.status or "")
        seen["latest_rerun"] = {"run_id": str(latest.run_id), "status": latest_status}
        if latest_status != "Failed":
            return Precheck(act=False, seen=seen, reason=(
                f"nothing to do: run {run_id} of pipeline {pipeline} was already rerun: "
                f"run {latest.run_id} is {latest_status or 'unknown'}"))
        return Precheck(act=True, seen=seen, reason=(
            f"run {run_id} of pipeline {pipeline} failed and its latest rerun "
            f"{latest.run_id} failed too"))
    return Precheck(act=True, seen=seen,
                    reason=f"run {run_id} of pipeline {pipeline} failed and was not rerun")


def already_rerun(runs: list[Any], run_id: str, pipeline: str, started: datetime,
                  ref: Callable[[str], dict[str, str]]) -> ActionResult | None:
    """The latest of ``runs`` (an ADF or Synapse run group) other than ``run_id`` that started
    after it, as the rerun already made; ``ref`` makes its ref from its run id."""
    later = later_runs(runs, run_id, started)
    if not later:
        return None
    found = max(later, key=lambda r: r.run_start or started)
    return ActionResult(
        outcome="already_done",
        detail=f"rerun {found.run_id} of pipeline {pipeline} was already started "
               f"(recovery of run {run_id})",
        ref=ref(str(found.run_id)),
    )


def describe_cancel(params: CancelParams, event: ErrorEvent) -> str:
    """``would cancel run R of pipeline P in factory F``."""
    of = f" of pipeline {params.pipeline}" if params.pipeline else ""
    return f"would cancel run {short_id(params.run_id)}{of} in factory {params.factory}"


def cancel_run(params: CancelParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """``pipeline_runs.cancel``; cancelling a finished run changes nothing."""
    where = _where("adf.cancel_run", params.factory, params.pipeline, params.run_id)
    _, rg, client = _client(ctx.clients, params.factory, params.subscription,
                            params.resource_group)
    with cloud_call(where):
        client.pipeline_runs.cancel(rg, params.factory, params.run_id,
                                    is_recursive=params.recursive)
    return ActionResult(outcome="done",
                        detail=f"cancel of run {params.run_id} in factory {params.factory} sent")
