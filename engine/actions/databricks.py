"""Databricks actions through ``databricks-sdk``: repair or run a job, start, restart or
re-size a cluster.

Never ``.result()`` or ``*_and_wait``: they sleep for up to 20 minutes. An action makes one
call and returns; the worker's probe polls ``runs/get`` or ``clusters/get`` until terminal.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import TYPE_CHECKING, Any

from engine.actions.base import Params, params_key
from engine.actions.context import ActionContext, ActionResult, Precheck, ProbeResult
from engine.cloud import names
from engine.cloud.clients import Clients, DatabricksRoute
from engine.cloud.errors import cloud_call
from engine.cloud.targets import attr, drop_empty
from engine.errors import PermanentActionError, RetryableActionError
from engine.events import ErrorEvent

if TYPE_CHECKING:
    # SDKs load where a call is made, never at import (fast CLI start: see clients.py).
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.compute import ClusterDetails
    from databricks.sdk.service.jobs import Run

__all__ = [
    "TRIED_TAG",
    "ClusterParams",
    "NodeTypeParams",
    "RepairParams",
    "RunJobParams",
    "cluster_target",
    "job_target",
    "node_type_target",
    "precheck_node_type",
    "precheck_repair",
    "precheck_restart",
    "precheck_run_job",
    "precheck_start",
    "repair_run",
    "restart_cluster",
    "run_job",
    "run_target",
    "set_node_type",
    "start_cluster",
]

TRIED_TAG = "remediator_tried_node_types"
"""Custom tag on the cluster spec that remembers which node types were already tried, so that
walking the fallback list survives restarts and never loops."""

# The SDK's enum values (RunLifeCycleState, compute.State), compared by value: naming the
# enums would import the SDK with this module.
_RUNNING_LIFE = frozenset({"PENDING", "QUEUED", "RUNNING", "TERMINATING", "BLOCKED",
                           "WAITING_FOR_RETRY"})
_CLUSTER_BUSY = frozenset({"PENDING", "RESTARTING", "RESIZING"})
_CLUSTER_DOWN = frozenset({"TERMINATED", "ERROR"})
_FAILED_RESULTS = frozenset({"FAILED", "TIMEDOUT", "MAXIMUM_CONCURRENT_RUNS_REACHED"})
"""``jobs.RunResultState`` values of a run that failed (and that a repair or rerun may fix)."""


def _value(state: Any) -> str | None:
    """An SDK enum member's value (None stays None)."""
    return None if state is None else str(state.value)


class _Workspace(Params, kw_only=True):
    workspace_id: str = ""

    def __post_init__(self) -> None:
        names.check("workspace_id", "workspace_id", self.workspace_id, optional=True)


class RepairParams(_Workspace, kw_only=True):
    """Repair run ``run_id`` (the job's run: for a task event, its parent run).

    ``rerun_all_failed_tasks`` (the default) or the named ``rerun_tasks`` (with
    ``rerun_dependent_tasks`` to rerun what depends on them).
    """

    run_id: int
    job_id: int | None = None
    rerun_all_failed_tasks: bool = True
    rerun_tasks: tuple[str, ...] = ()
    rerun_dependent_tasks: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        names.check_id("run_id", self.run_id)
        names.check_id("job_id", self.job_id)
        for key in self.rerun_tasks:
            names.check("rerun_tasks", "task_key", key)
        if self.rerun_tasks and self.rerun_all_failed_tasks:
            raise ValueError("rerun_tasks and rerun_all_failed_tasks exclude each other; "
                             "set rerun_all_failed_tasks: false to name the tasks")
        if not self.rerun_tasks and not self.rerun_all_failed_tasks:
            raise ValueError("nothing to repair: set rerun_all_failed_tasks or rerun_tasks")
        if self.rerun_dependent_tasks and not self.rerun_tasks:
            raise ValueError("rerun_dependent_tasks needs rerun_tasks")


class RunJobParams(_Workspace, kw_only=True):
    """Start job ``job_id`` now, with ``job_parameters`` and only the tasks ``only``."""

    job_id: int
    job_parameters: dict[str, str] | None = None
    only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        names.check_id("job_id", self.job_id)
        for key in self.only:
            names.check("only", "task_key", key)


class ClusterParams(_Workspace, kw_only=True):
    """One all-purpose cluster."""

    cluster_id: str

    def __post_init__(self) -> None:
        super().__post_init__()
        names.check("cluster_id", "cluster_id", self.cluster_id)


class NodeTypeParams(_Workspace, kw_only=True):
    """Move a cluster to the first node type of ``fallbacks`` it has not had yet.

    An all-purpose cluster by ``cluster_id`` (``clusters.edit`` with its full spec), or a job
    cluster by ``job_id`` and ``job_cluster_key`` (``jobs.update`` of ``job_clusters``); the
    job cluster wins when both are known, since a job cluster's id changes with every run.
    """

    fallbacks: tuple[str, ...]
    cluster_id: str = ""
    job_id: int | None = None
    job_cluster_key: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        names.check("cluster_id", "cluster_id", self.cluster_id, optional=True)
        names.check_id("job_id", self.job_id)
        names.check("job_cluster_key", "task_key", self.job_cluster_key, optional=True)
        if not self.fallbacks:
            raise ValueError("fallbacks: name at least one node type")
        if not self.cluster_id and not (self.job_id and self.job_cluster_key):
            raise ValueError("name cluster_id, or job_id and job_cluster_key")


# -- targets -------------------------------------------------------------------------------


def run_target(event: ErrorEvent) -> dict[str, Any]:
    """The job run to repair: the parent run of a task event, else the event's run."""
    return drop_empty({
        "run_id": attr(event, "parent_run_id") or event.run_id,
        "job_id": attr(event, "job_id") or (event.resource_id if event.kind != "cluster" else ""),
        "workspace_id": attr(event, "workspace_id"),
    })


def job_target(event: ErrorEvent) -> dict[str, Any]:
    """The job of a job or task event."""
    return drop_empty({"job_id": attr(event, "job_id"),
                       "workspace_id": attr(event, "workspace_id")})


def cluster_target(event: ErrorEvent) -> dict[str, Any]:
    """The cluster of a cluster event (or the cluster a run ran on, from enrichment)."""
    return drop_empty({
        "cluster_id": attr(event, "cluster_id")
        or (event.resource_id if event.kind == "cluster" else ""),
        "workspace_id": attr(event, "workspace_id"),
    })


def node_type_target(event: ErrorEvent) -> dict[str, Any]:
    """The cluster to re-size: the job cluster of a run (from enrichment), else the cluster."""
    out = cluster_target(event)
    if attr(event, "job_cluster_key") and attr(event, "job_id"):
        out.update(job_id=attr(event, "job_id"), job_cluster_key=attr(event, "job_cluster_key"))
        out.pop("cluster_id", None)
    return out


# -- helpers -------------------------------------------------------------------------------


def _client(clients: Clients, workspace_id: str) -> tuple[DatabricksRoute, WorkspaceClient]:
    route = clients.databricks_route(workspace_id)
    return route, clients.databricks(route)


def _by_name(clients: Clients, name: str) -> WorkspaceClient:
    try:
        cfg = clients.clouds.databricks[name]
    except KeyError as exc:
        raise PermanentActionError(
            f"databricks probe: the settings no longer have [clouds.databricks.{name}]"
        ) from exc
    return clients.databricks(DatabricksRoute(name, cfg))


def run_probe_state(run: Run, what: str) -> ProbeResult:
    """A run's (or its latest repair's) state as a probe result."""
    state = run.state
    life = state.life_cycle_state if state else None
    result = state.result_state if state else None
    if life is None or _value(life) in _RUNNING_LIFE:
        return ProbeResult(state="running", detail=f"{what} is {life.value if life else 'new'}")
    if _value(result) == "SUCCESS":
        return ProbeResult(state="succeeded", detail=f"{what} succeeded")
    message = state.state_message if state and state.state_message else ""
    tail = f": {message}" if message else ""
    label = result.value if result else life.value
    return ProbeResult(state="failed", detail=f"{what} ended {label}{tail}")


def _repairs(run: Run) -> list[int]:
    return [int(item.id) for item in run.repair_history or []
            if item.id is not None and item.type is not None and item.type.value == "REPAIR"]


# -- repair_run ----------------------------------------------------------------------------


def describe_repair(params: RepairParams, event: ErrorEvent) -> str:
    """``would repair run R of job J (rerun all failed tasks)``."""
    job = f" of job {event.resource or params.job_id}" if (event.resource or params.job_id) else ""
    what = ("rerun all failed tasks" if params.rerun_all_failed_tasks
            else "rerun " + ", ".join(params.rerun_tasks)
            + (" and their dependents" if params.rerun_dependent_tasks else ""))
    return f"would repair run {params.run_id}{job} ({what})"


def repair_key(params: RepairParams, event: ErrorEvent) -> str:
    """A repair keeps the run id, so the key also counts the repairs seen at the failure."""
    return params_key("databricks.repair_run", params,
                      str(event.attributes.get("repair_count", 0)))


def repair_run(params: RepairParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """``jobs.repair_run``, with ``latest_repair_id`` from ``runs/get`` on later repairs."""
    where = f"databricks.repair_run[run={params.run_id}]"
    route, w = _client(ctx.clients, params.workspace_id)
    with cloud_call(where):
        run = w.jobs.get_run(params.run_id, include_history=True)
        repairs = _repairs(run)
        waiter = w.jobs.repair_run(
            params.run_id,
            rerun_all_failed_tasks=params.rerun_all_failed_tasks or None,
            rerun_tasks=list(params.rerun_tasks) or None,
            rerun_dependent_tasks=params.rerun_dependent_tasks or None,
            latest_repair_id=repairs[-1] if repairs else None,
        )
    repair_id = str(waiter.response.repair_id)
    return ActionResult(
        outcome="started",
        detail=f"repair {repair_id} of run {params.run_id} started",
        ref={"cloud": route.name, "run_id": str(params.run_id), "repair_id": repair_id},
    )


def probe_repair(result: ActionResult, ctx: ActionContext) -> ProbeResult:
    """``runs/get``: the run's state reflects its latest repair."""
    w = _by_name(ctx.clients, result.ref["cloud"])
    run_id = int(result.ref["run_id"])
    with cloud_call(f"databricks.probe[run={run_id}]"):
        run = w.jobs.get_run(run_id, include_history=True)
    from databricks.sdk.service.jobs import Run

    for item in run.repair_history or []:
        if str(item.id) == result.ref.get("repair_id") and item.state is not None:
            return run_probe_state(Run(state=item.state),
                                   f"repair {item.id} of run {run_id}")
    return run_probe_state(run, f"run {run_id}")


def reconcile_repair(
    params: RepairParams, event: ErrorEvent, ctx: ActionContext
) -> ActionResult | None:
    """A repair newer than the ones the event saw (``repair_count``) is ours, already made."""
    route, w = _client(ctx.clients, params.workspace_id)
    with cloud_call(f"databricks.repair_run[run={params.run_id}]"):
        run = w.jobs.get_run(params.run_id, include_history=True)
    repairs = _repairs(run)
    seen = int(event.attributes.get("repair_count", 0) or 0)
    if len(repairs) <= seen:
        return None
    return ActionResult(
        outcome="already_done",
        detail=f"repair {repairs[-1]} of run {params.run_id} was already made",
        ref={"cloud": route.name, "run_id": str(params.run_id), "repair_id": str(repairs[-1])},
    )


def run_needs_repair(run: Run, run_id: int) -> Precheck:
    """Whether job run ``run`` (its state reflects its latest repair) still failed.

    A run (or its latest repair) still running needs nothing yet; one that succeeded or was
    cancelled needs nothing; FAILED, TIMEDOUT and the like do, also after a repair of an
    earlier attempt that failed again.
    """
    state = run.state
    life = _value(state.life_cycle_state) if state else None
    result = _value(state.result_state) if state else None
    seen: dict[str, Any] = {"run_id": run_id, "life_cycle_state": life or "",
                            "result_state": result or "", "repairs": len(_repairs(run))}
    if life is None or life in _RUNNING_LIFE:
        return Precheck(act=False, seen=seen, reason=(
            f"nothing to do: run {run_id} is {life or 'not started'}: a retry or repair of it "
            "is under way"))
    if result in _FAILED_RESULTS or (life == "INTERNAL_ERROR" and result != "SUCCESS"):
        latest = " (after its latest repair)" if seen["repairs"] else ""
        return Precheck(act=True, seen=seen,
                        reason=f"run {run_id} ended {result or life}{latest}")
    return Precheck(act=False, seen=seen, reason=(
        f"nothing to do: run {run_id} ended {result or life}, not failed"))


def _other_job(run: Run, run_id: int, job_id: int | str | None) -> Precheck | None:
    """A refusal when run ``run_id`` is not a run of job ``job_id`` (the job the action or
    the event names; None or "": no job named, nothing to compare): a forged alert would
    otherwise need only one failed run id to act on another job's run."""
    if job_id in (None, "") or str(run.job_id) == str(job_id):
        return None
    return Precheck(act=False, refuse=True, seen={"run_id": run_id, "job_id": run.job_id},
                    reason=f"run {run_id} belongs to job {run.job_id}, not {job_id}: the "
                           "alert does not describe this run; nothing was called")


def precheck_repair(params: RepairParams, event: ErrorEvent, ctx: ActionContext) -> Precheck:
    """``runs/get``: repair only a run of the named job that ended failed (and was not
    repaired since with a repair that is running or succeeded)."""
    _, w = _client(ctx.clients, params.workspace_id)
    with cloud_call(f"databricks.repair_run[run={params.run_id}] precheck"):
        run = w.jobs.get_run(params.run_id, include_history=True)
    return (_other_job(run, params.run_id, params.job_id)
            or run_needs_repair(run, params.run_id))


# -- run_job -------------------------------------------------------------------------------


def describe_run_job(params: RunJobParams, event: ErrorEvent) -> str:
    """``would run job J now``."""
    only = f" (only {', '.join(params.only)})" if params.only else ""
    return f"would run job {params.job_id} now{only}"


def run_job(params: RunJobParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """``jobs.run_now`` with the idempotency key as ``idempotency_token``: Databricks answers
    a resend with the run it already started, so a crashed worker may safely send again."""
    route, w = _client(ctx.clients, params.workspace_id)
    token = params_key("databricks.run_job", params, event.dedup_key)[-32:]
    with cloud_call(f"databricks.run_job[job={params.job_id}]"):
        waiter = w.jobs.run_now(params.job_id, idempotency_token=token,
                                job_parameters=params.job_parameters,
                                only=list(params.only) or None)
    run_id = str(waiter.response.run_id)
    return ActionResult(outcome="started", detail=f"run {run_id} of job {params.job_id} started",
                        ref={"cloud": route.name, "run_id": run_id})


def _event_run_id(event: ErrorEvent) -> int | None:
    """The job run an event is about (the parent run of a task event), if it names one."""
    text = attr(event, "parent_run_id") or event.run_id
    return int(text) if text.isdigit() and 0 < int(text) < 2**63 else None


def precheck_run_job(params: RunJobParams, event: ErrorEvent, ctx: ActionContext) -> Precheck:
    """The run the event is about must be a run of the job the event names and have ended
    failed (never started, skipped for concurrency, failed): a run that is running or
    succeeded needs no new run. An event that names no run: the job must exist
    (``jobs/get``)."""
    where = f"databricks.run_job[job={params.job_id}] precheck"
    _, w = _client(ctx.clients, params.workspace_id)
    run_id = _event_run_id(event)
    with cloud_call(where):
        if run_id is None:
            job = w.jobs.get(params.job_id)
            name = job.settings.name if job.settings and job.settings.name else ""
            return Precheck(act=True, seen={"job_id": params.job_id, "job": name},
                            reason=f"job {params.job_id} exists; the event names no run to "
                                   "check")
        run = w.jobs.get_run(run_id)
    other = _other_job(run, run_id, attr(event, "job_id"))
    if other is not None:
        return other
    check = run_needs_repair(run, run_id)
    check.seen["job_id"] = run.job_id
    life = check.seen.get("life_cycle_state")
    if not check.act and life in ("SKIPPED", "INTERNAL_ERROR"):
        return Precheck(act=True, seen=check.seen, reason=f"run {run_id} was {life}")
    return check


def probe_job_run(result: ActionResult, ctx: ActionContext) -> ProbeResult:
    """``runs/get`` of the run that ``run_now`` started."""
    w = _by_name(ctx.clients, result.ref["cloud"])
    run_id = int(result.ref["run_id"])
    with cloud_call(f"databricks.probe[run={run_id}]"):
        run = w.jobs.get_run(run_id)
    return run_probe_state(run, f"run {run_id}")


# -- clusters ------------------------------------------------------------------------------


def _cluster_state(details: ClusterDetails, what: str) -> ProbeResult:
    state = details.state
    if _value(state) == "RUNNING":
        return ProbeResult(state="succeeded", detail=f"{what} is running")
    if state is None or _value(state) in _CLUSTER_BUSY:
        return ProbeResult(state="running", detail=f"{what} is {state.value if state else 'new'}")
    reason = details.termination_reason
    why = f" ({reason.code.value if reason.code else ''})" if reason and reason.code else ""
    message = f": {details.state_message}" if details.state_message else ""
    return ProbeResult(state="failed", detail=f"{what} is {state.value}{why}{message}")


def probe_cluster(result: ActionResult, ctx: ActionContext) -> ProbeResult:
    """``clusters/get`` until RUNNING (succeeded) or TERMINATED/ERROR (failed)."""
    w = _by_name(ctx.clients, result.ref["cloud"])
    cluster_id = result.ref["cluster_id"]
    with cloud_call(f"databricks.probe[cluster={cluster_id}]"):
        details = w.clusters.get(cluster_id)
    return _cluster_state(details, f"cluster {cluster_id}")


def _cluster_verb(params: ClusterParams, ctx: ActionContext, verb: str) -> ActionResult:
    """``clusters.<verb>`` (start or restart), without waiting; the probe follows it."""
    route, w = _client(ctx.clients, params.workspace_id)
    with cloud_call(f"databricks.{verb}_cluster[cluster={params.cluster_id}]"):
        getattr(w.clusters, verb)(params.cluster_id)
    return ActionResult(outcome="started", detail=f"cluster {params.cluster_id} {verb}ing",
                        ref={"cloud": route.name, "cluster_id": params.cluster_id})


def start_cluster(params: ClusterParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """``clusters.start`` (without waiting)."""
    return _cluster_verb(params, ctx, "start")


def reconcile_start(
    params: ClusterParams, event: ErrorEvent, ctx: ActionContext
) -> ActionResult | None:
    """A cluster already PENDING or RUNNING needs no start (a second one would be refused)."""
    ref, details = _cluster_now(params, ctx, "start")
    if _value(details.state) not in _CLUSTER_BUSY | {"RUNNING"}:
        return None
    return ActionResult(outcome="already_done",
                        detail=f"cluster {params.cluster_id} is already {details.state.value}",
                        ref=ref)


def restart_cluster(params: ClusterParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """``clusters.restart`` (a terminated cluster is started instead, by Databricks)."""
    return _cluster_verb(params, ctx, "restart")


def reconcile_restart(
    params: ClusterParams, event: ErrorEvent, ctx: ActionContext
) -> ActionResult | None:
    """Restarted already if it is restarting, or was (re)started after the failure."""
    ref, details = _cluster_now(params, ctx, "restart")
    since = int(event.occurred_at.timestamp() * 1000) if event.occurred_at else None
    restarted = max(details.last_restarted_time or 0, details.start_time or 0)
    if _value(details.state) in _CLUSTER_BUSY or (since is not None and restarted > since):
        return ActionResult(outcome="already_done",
                            detail=f"cluster {params.cluster_id} was already restarted",
                            ref=ref)
    return None


def cluster_needs_start(details: ClusterDetails, cluster_id: str, where: str) -> Precheck:
    """Whether a cluster is down (TERMINATED or ERROR), so that a start or restart of it is
    what its failure still calls for.

    A cluster that is RUNNING (or already starting) needs neither: a forged or stale
    termination alert must not restart a working cluster. A cluster still TERMINATING, or in
    a state the check does not know, cannot be judged yet: :class:`RetryableActionError`
    (checked again later; escalated when the retries are spent).
    """
    state = _value(details.state) or ""
    reason = details.termination_reason
    code = reason.code.value if reason is not None and reason.code is not None else ""
    seen: dict[str, Any] = {"cluster_id": cluster_id, "state": state}
    if code:
        seen["termination_code"] = code
    if state in _CLUSTER_DOWN:
        why = f" ({code})" if code else ""
        return Precheck(act=True, seen=seen, reason=f"cluster {cluster_id} is {state}{why}")
    if state == "RUNNING" or state in _CLUSTER_BUSY:
        return Precheck(act=False, seen=seen,
                        reason=f"nothing to do: cluster {cluster_id} is {state}")
    raise RetryableActionError(
        f"{where}: cluster {cluster_id} is {state or 'in no known state'}; checked again later")


def _precheck_cluster(params: ClusterParams, ctx: ActionContext, verb: str) -> Precheck:
    where = f"databricks.{verb}_cluster[cluster={params.cluster_id}] precheck"
    _, w = _client(ctx.clients, params.workspace_id)
    with cloud_call(where):
        details = w.clusters.get(params.cluster_id)
    return cluster_needs_start(details, params.cluster_id, where)


def precheck_start(params: ClusterParams, event: ErrorEvent, ctx: ActionContext) -> Precheck:
    """``clusters/get``: start only a cluster that is down."""
    return _precheck_cluster(params, ctx, "start")


def precheck_restart(params: ClusterParams, event: ErrorEvent, ctx: ActionContext) -> Precheck:
    """``clusters/get``: restart only a cluster that is down; a RUNNING cluster is left alone
    whatever the alert says (a forged DRIVER_UNREACHABLE restarts nothing)."""
    return _precheck_cluster(params, ctx, "restart")


def _cluster_now(params: ClusterParams, ctx: ActionContext,
                 verb: str) -> tuple[dict[str, str], Any]:
    """The ref that a ``verb`` of the cluster records, and the cluster's details now."""
    route, w = _client(ctx.clients, params.workspace_id)
    with cloud_call(f"databricks.{verb}_cluster[cluster={params.cluster_id}]"):
        details = w.clusters.get(params.cluster_id)
    return {"cloud": route.name, "cluster_id": params.cluster_id}, details


# -- set_node_type -------------------------------------------------------------------------


def _next_node_type(current: str, tags: dict[str, str], fallbacks: tuple[str, ...],
                    where: str) -> tuple[str, dict[str, str]]:
    tried = [t for t in (tags.get(TRIED_TAG) or "").split(";") if t]
    if current and current not in tried:
        tried.append(current)
    for node in fallbacks:
        if node != current and node not in tried:
            return node, {**tags, TRIED_TAG: ";".join([*tried, node])}
    raise PermanentActionError(
        f"{where}: every fallback node type has been tried ({', '.join(fallbacks)}); "
        f"current is {current or 'unknown'}"
    )


@cache
def _edit_fields() -> tuple[str, ...]:
    """The fields ``clusters.edit`` takes besides the id and Spark version (read from the SDK
    on first use, then kept: the SDK does not change while the process runs)."""
    from databricks.sdk.service.compute import ClustersAPI

    return tuple(
        name for name in inspect.signature(ClustersAPI.edit).parameters
        if name not in ("self", "cluster_id", "spark_version")
    )


def describe_node_type(params: NodeTypeParams, event: ErrorEvent) -> str:
    """``would move cluster C from node type N to the first untried of [A, B]``."""
    what = (f"job cluster {params.job_cluster_key} of job {params.job_id}"
            if params.job_id and params.job_cluster_key else f"cluster {params.cluster_id}")
    current = attr(event, "node_type_id")
    frm = f" from node type {current}" if current else ""
    return f"would move {what}{frm} to the first untried of [{', '.join(params.fallbacks)}]"


def node_type_key(params: NodeTypeParams, event: ErrorEvent) -> str:
    """The node type that failed is part of "the same failure"."""
    return params_key("databricks.set_node_type", params, attr(event, "node_type_id"))


def set_node_type(params: NodeTypeParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """Edit the cluster (or the job's cluster spec) to the next fallback node type."""
    route, w = _client(ctx.clients, params.workspace_id)
    if params.job_id and params.job_cluster_key:
        where = (f"databricks.set_node_type[job={params.job_id} "
                 f"job_cluster={params.job_cluster_key}]")
        with cloud_call(where):
            job = w.jobs.get(params.job_id)
            clusters = list(job.settings.job_clusters or []) if job.settings else []
            spec = next((c for c in clusters if c.job_cluster_key == params.job_cluster_key), None)
            if spec is None or spec.new_cluster is None:
                raise PermanentActionError(
                    f"{where}: job {params.job_id} has no job cluster {params.job_cluster_key!r}"
                )
            current = spec.new_cluster.node_type_id or ""
            node, tags = _next_node_type(current, dict(spec.new_cluster.custom_tags or {}),
                                         params.fallbacks, where)
            spec.new_cluster.node_type_id = node
            if spec.new_cluster.driver_node_type_id == current:
                spec.new_cluster.driver_node_type_id = node
            spec.new_cluster.custom_tags = tags
            from databricks.sdk.service.jobs import JobSettings

            w.jobs.update(params.job_id, new_settings=JobSettings(job_clusters=clusters))
        ref = {"cloud": route.name, "job_id": str(params.job_id),
               "job_cluster_key": params.job_cluster_key, "node_type_id": node}
        return ActionResult(
            outcome="done",
            detail=f"job cluster {params.job_cluster_key} of job {params.job_id}: node type "
                   f"{current} -> {node}",
            ref=ref, data={"previous_node_type_id": current})
    where = f"databricks.set_node_type[cluster={params.cluster_id}]"
    with cloud_call(where):
        details = w.clusters.get(params.cluster_id)
        current = details.node_type_id or ""
        node, tags = _next_node_type(current, dict(details.custom_tags or {}), params.fallbacks,
                                     where)
        spec: dict[str, Any] = {
            name: getattr(details, name) for name in _edit_fields()
            if getattr(details, name, None) is not None
        }
        spec["node_type_id"] = node
        if details.driver_node_type_id in (None, current):
            spec["driver_node_type_id"] = node
        spec["custom_tags"] = tags
        w.clusters.edit(params.cluster_id, details.spark_version or "", **spec)
    return ActionResult(
        outcome="done",
        detail=f"cluster {params.cluster_id}: node type {current} -> {node}",
        ref={"cloud": route.name, "cluster_id": params.cluster_id, "node_type_id": node},
        data={"previous_node_type_id": current},
    )


def _node_type_needed(current: str, tags: dict[str, str], failed: str, what: str,
                      seen: dict[str, Any]) -> Precheck:
    """Whether ``what`` still has the node type that failed: the one the event names, or one
    Remediator moved it to before (an earlier attempt's fallback that failed again). A node
    type that someone else chose since is left alone."""
    ours = [t for t in (tags.get(TRIED_TAG) or "").split(";") if t]
    seen.update(node_type_id=current, failed_node_type_id=failed, tried=ours)
    if not failed or current == failed or current in ours:
        return Precheck(act=True, seen=seen, reason=f"{what} uses node type {current or '?'}"
                        + (", which failed" if current == failed and failed else ""))
    return Precheck(act=False, seen=seen, reason=(
        f"nothing to do: {what} already uses node type {current}, not {failed}"))


def precheck_node_type(params: NodeTypeParams, event: ErrorEvent,
                       ctx: ActionContext) -> Precheck:
    """A job cluster: its run must be a run of that job and have failed, and its spec still
    hold the failed node type.
    An all-purpose cluster: it must be down and still have the failed node type."""
    failed = attr(event, "node_type_id")
    _, w = _client(ctx.clients, params.workspace_id)
    if params.job_id and params.job_cluster_key:
        where = (f"databricks.set_node_type[job={params.job_id} "
                 f"job_cluster={params.job_cluster_key}] precheck")
        run_id = _event_run_id(event)
        with cloud_call(where):
            if run_id is not None:
                run = w.jobs.get_run(run_id, include_history=True)
                run_check = _other_job(run, run_id, params.job_id) or run_needs_repair(
                    run, run_id)
                if not run_check.act:
                    return run_check
            job = w.jobs.get(params.job_id)
        clusters = list(job.settings.job_clusters or []) if job.settings else []
        spec = next((c.new_cluster for c in clusters
                     if c.job_cluster_key == params.job_cluster_key), None)
        if spec is None:
            raise PermanentActionError(
                f"{where}: job {params.job_id} has no job cluster {params.job_cluster_key!r}")
        return _node_type_needed(
            spec.node_type_id or "", dict(spec.custom_tags or {}), failed,
            f"job cluster {params.job_cluster_key} of job {params.job_id}",
            {"job_id": params.job_id, "job_cluster_key": params.job_cluster_key})
    where = f"databricks.set_node_type[cluster={params.cluster_id}] precheck"
    with cloud_call(where):
        details = w.clusters.get(params.cluster_id)
    down = cluster_needs_start(details, params.cluster_id, where)
    if not down.act:
        return down
    return _node_type_needed(details.node_type_id or "", dict(details.custom_tags or {}),
                             failed, f"cluster {params.cluster_id}", dict(down.seen))


def reconcile_node_type(
    params: NodeTypeParams, event: ErrorEvent, ctx: ActionContext
) -> ActionResult | None:
    """Already moved if the node type is no longer the one that failed and is a fallback."""
    failed = attr(event, "node_type_id")
    if not failed:
        return None
    route, w = _client(ctx.clients, params.workspace_id)
    with cloud_call(f"databricks.set_node_type[cluster={params.cluster_id or params.job_id}]"):
        if params.job_id and params.job_cluster_key:
            job = w.jobs.get(params.job_id)
            spec = next((c.new_cluster for c in (job.settings.job_clusters or [])
                         if c.job_cluster_key == params.job_cluster_key), None)
            current = (spec.node_type_id or "") if spec else ""
        else:
            current = w.clusters.get(params.cluster_id).node_type_id or ""
    if current == failed or current not in params.fallbacks:
        return None
    return ActionResult(outcome="already_done", detail=f"node type is already {current}",
                        ref=drop_empty({"cloud": route.name, "cluster_id": params.cluster_id,
                                        "node_type_id": current}))
