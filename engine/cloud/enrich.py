"""The look-ups that find the real error behind a notification that does not carry it.

``enrich(event, clients)`` calls the cloud and returns the enriched event(s) with a note per
look-up (what was called; ok, or the error). It touches no database; the worker stores what
it returns. It never raises for a cloud failure: a look-up that times out or answers 403,
404 or 5xx is noted and the event goes on with what it has.

- Databricks job or task failure: ``jobs.get_run`` (the parent run of a task event), then
  ``jobs.get_run_output`` for each failed *task* run (the parent answers 400); a run that died
  with its cluster: ``clusters.get`` (its termination code); a run that failed installing its
  libraries: ``libraries.cluster_status`` (the failed libraries and their messages).
- Databricks cluster: ``clusters.get`` (state, node type, ``custom_tags`` as
  ``attributes.cluster_tags``); library failures: ``libraries.cluster_status``.
- ADF / Synapse with a run id: the pipeline run and its activity runs; the failed activity's
  error, a ``2200`` unwrapped by :func:`engine.text.errorcodes.unwrap_adf_error`.
- ADF / Synapse metric alerts without a run id: the failed runs of the pipeline in the
  alert window, one event per run (``dedup_key`` ``<original>:<run id>``), each then enriched.
  The window is the alert's, cut to at most :data:`WINDOW_LIMIT` before its end and to no
  older than ``max_age_s``; at most :data:`MAX_EXPANDED` runs (a note says what was cut).
- ADF alerts that name no factory (a log alert scoped to the Log Analytics workspace without
  the ``_ResourceId`` dimension): the factory is looked for among the factories that
  ``[clouds.adf]`` names, before anything else; a note says which, or why it stays unknown
  (then nothing is looked up: a workspace is never taken for a factory).

Every returned event has its fingerprint recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from engine.cloud import names
from engine.cloud.clients import AdfRoute, Clients
from engine.cloud.errors import foreign, map_error
from engine.cloud.runs import adf_runs, synapse_runs
from engine.cloud.targets import arm_parts, attr
from engine.errors import ActionError, ConfigError
from engine.events import ErrorEvent
from engine.text.errorcodes import unwrap_adf_error
from engine.text.patterns import clip

if TYPE_CHECKING:
    # SDKs load where a call is made, never at import (fast CLI start: see clients.py).
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import Run

__all__ = ["MAX_EXPANDED", "TRACE_LIMIT", "WINDOW_LIMIT", "EnrichResult", "LookupNote", "enrich"]

WINDOW_LIMIT = timedelta(hours=24)
"""The widest alert window searched for failed runs: Azure's metric alerts look back at most a
day, and a window the alert sets wider (or years back) would be queried as given."""
MAX_EXPANDED = 50
"""Failed runs of one metric alert that become events (each is enriched and may be rerun)."""

TRACE_LIMIT = 2048
"""How much of a Databricks ``error_trace`` is kept (its head: the exception comes first)."""

_FAILED_RESULTS = frozenset({"FAILED", "TIMEDOUT", "MAXIMUM_CONCURRENT_RUNS_REACHED"})
"""``jobs.RunResultState`` values of a failed task (by value: no SDK import at start)."""
T = TypeVar("T")


class LookupNote(msgspec.Struct, frozen=True, kw_only=True):
    """One cloud call made for enrichment: ``call`` (e.g. ``databricks jobs.get_run 447120398``),
    whether it worked, and what it found or why it failed (no secret)."""

    call: str
    ok: bool
    detail: str = ""


class EnrichResult(msgspec.Struct, frozen=True, kw_only=True):
    """The event(s) after enrichment (one, or one per failed run of a metric alert)."""

    events: list[ErrorEvent]
    notes: list[LookupNote] = msgspec.field(default_factory=list)


class _Notes:
    def __init__(self) -> None:
        self.items: list[LookupNote] = []
        self.now = datetime.now(UTC)
        self.max_age_s = 0

    def call(self, call: str, fn: Callable[[], T]) -> T | None:
        """Run one look-up; on a cloud or routing failure note it and return None."""
        try:
            value = fn()
        except foreign() as exc:
            self.items.append(LookupNote(call=call, ok=False, detail=str(map_error(exc, call))))
            return None
        except (ActionError, ConfigError) as exc:
            self.items.append(LookupNote(call=call, ok=False, detail=str(exc)))
            return None
        self.items.append(LookupNote(call=call, ok=True))
        return value


def enrich(event: ErrorEvent, clients: Clients, *, now: datetime | None = None,
           max_age_s: int = 0) -> EnrichResult:
    """Look up the real error of ``event``; see the module docstring for what is called.
    ``now`` is the engine's time (default: the system's); ``max_age_s`` (0: none) how far
    back a metric alert's window may reach."""
    notes = _Notes()
    notes.now, notes.max_age_s = now or datetime.now(UTC), max_age_s
    events = [event]
    try:
        _check_names(event)
    except names.InvalidName as exc:
        notes.items.append(LookupNote(call=f"{event.source} look-ups", ok=False,
                                      detail=f"not called: {exc}"))
        return EnrichResult(events=[event.with_fingerprint()], notes=notes.items)
    if event.status == "firing":
        if event.source == "databricks" and event.kind in ("job_run", "task_run"):
            events = [_databricks_run(event, clients, notes)]
        elif event.source == "databricks" and event.kind in ("cluster", "library"):
            events = [_databricks_cluster(event, clients, notes)]
        elif event.source == "adf" and not _factory_known(event):
            found = _resolve_factory(event, clients, notes)
            if found is not None:
                events = _adf_enriched(found, clients, notes)
        elif event.source in ("adf", "synapse"):
            events = _adf_enriched(event, clients, notes)
    return EnrichResult(events=[e.with_fingerprint() for e in events], notes=notes.items)


def _check_names(event: ErrorEvent) -> None:
    """Every name of ``event`` that a look-up would put into a URL, by the cloud's rules
    (:mod:`engine.cloud.names`): a name like ``..`` is refused before anything is called."""
    if event.source in ("adf", "synapse"):
        arm = arm_parts(event.resource_id)
        if event.source == "adf":
            names.check("factory", "factory", attr(event, "factory") or arm.get("name", ""),
                        optional=True)
            names.check("subscription", "subscription",
                        attr(event, "subscription") or arm.get("subscription", ""),
                        optional=True)
            names.check("resource_group", "resource_group",
                        attr(event, "resource_group") or arm.get("resource_group", ""),
                        optional=True)
        else:
            names.check("workspace", "synapse_workspace",
                        attr(event, "workspace") or arm.get("name", ""), optional=True)
        names.check("pipeline", f"{event.source}_pipeline", _pipeline(event), optional=True)
        names.check("run_id", "pipeline_run_id", event.run_id, optional=True)
    elif event.source == "databricks":
        names.check("workspace_id", "workspace_id", attr(event, "workspace_id"), optional=True)
        cluster = attr(event, "cluster_id") or (event.resource_id if event.kind == "cluster"
                                                 else "")
        names.check("cluster_id", "cluster_id", cluster, optional=True)


def _merge_codes(code: str, codes: tuple[str, ...], event: ErrorEvent) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in (*codes, code, *event.error_codes) if c))


def _replace(event: ErrorEvent, attributes: dict[str, Any], **fields: Any) -> ErrorEvent:
    return msgspec.structs.replace(event, attributes={**event.attributes, **attributes},
                                   **{k: v for k, v in fields.items() if v not in (None, "")})


# -- Databricks ----------------------------------------------------------------------------


def _workspace(event: ErrorEvent, clients: Clients) -> WorkspaceClient:
    return clients.databricks(clients.databricks_route(attr(event, "workspace_id")))


def _databricks_run(event: ErrorEvent, clients: Clients, notes: _Notes) -> ErrorEvent:
    run_id = attr(event, "parent_run_id") or event.run_id
    if not run_id.isdigit():
        return event
    w = notes.call("databricks workspace", lambda: _workspace(event, clients))
    if w is None:
        return event
    run = notes.call(f"databricks jobs.get_run {run_id}",
                     lambda: w.jobs.get_run(int(run_id), include_history=True))
    if run is None:
        return event
    task_key = attr(event, "task_key")
    failed = [t for t in run.tasks or []
              if t.state is not None and t.state.result_state is not None
              and t.state.result_state.value in _FAILED_RESULTS]
    failed.sort(key=lambda t: t.task_key != task_key)  # the event's own task first
    outputs = []
    for task in failed:
        if task.run_id is not None:
            out = notes.call(f"databricks jobs.get_run_output {task.run_id}",
                             lambda r=task.run_id: w.jobs.get_run_output(r))
            outputs.append((task, out))
    if not run.tasks and run.run_id is not None:  # a single-task run of the older shape
        outputs.append((run, notes.call(f"databricks jobs.get_run_output {run.run_id}",
                                        lambda: w.jobs.get_run_output(int(run_id)))))
    return _run_libraries(_cluster_cause(_run_event(event, run, outputs, task_key), w, notes),
                          w, notes)


_CLUSTER_CAUSED = frozenset({"", "CLUSTER_ERROR", "CLOUD_FAILURE", "DRIVER_ERROR"})
"""Run termination codes that mean "the cluster under the run failed" ("" is a code the SDK
does not know): the cluster's own TerminationReason names what happened."""
_NORMAL_TERMINATIONS = frozenset({"INACTIVITY", "USER_REQUEST", "JOB_FINISHED"})


def _cluster_cause(event: ErrorEvent, w: WorkspaceClient, notes: _Notes) -> ErrorEvent:
    """A run that died with its cluster gets the cluster's termination code.

    Runs only ever report CLUSTER_ERROR, CLOUD_FAILURE or DRIVER_ERROR; the cause (an
    unreachable instance, a node type out of stock) is the cluster's ``termination_reason``,
    which ``clusters/get`` keeps after the cluster is gone. The cluster code becomes
    ``error_code`` (the run's stays in ``error_codes``), so that the playbooks' rules on
    INSTANCE_UNREACHABLE or CLOUD_PROVIDER_RESOURCE_STOCKOUT for runs can match.
    """
    cluster_id = attr(event, "cluster_id")
    if event.error_code not in _CLUSTER_CAUSED or not cluster_id:
        return event
    details = notes.call(f"databricks clusters.get {cluster_id}",
                         lambda: w.clusters.get(cluster_id))
    reason = details.termination_reason if details is not None else None
    code = reason.code.value if reason is not None and reason.code is not None else ""
    if not code or code in _NORMAL_TERMINATIONS:
        return event
    attributes: dict[str, Any] = {"cluster_termination_code": code,
                                  "termination_parameters": dict(reason.parameters or {})}
    if details is not None and details.node_type_id and not attr(event, "node_type_id"):
        attributes["node_type_id"] = details.node_type_id
    return _replace(event, attributes, error_code=code,
                    error_codes=tuple(dict.fromkeys(c for c in (code, *event.error_codes) if c)),
                    failure_type=reason.type.value if reason.type else "")


def _details(run: Any) -> tuple[str, str, str]:
    details = run.status.termination_details if run.status is not None else None
    if details is None:
        return "", "", ""
    return (details.code.value if details.code else "",
            details.type.value if details.type else "", details.message or "")


def _run_event(event: ErrorEvent, run: Run, outputs: list[tuple[Any, Any]],
               task_key: str) -> ErrorEvent:
    code, kind, message = _details(run)
    error, trace, first = "", "", None
    for task, out in outputs:
        first = first or task
        if out is not None and out.error and not error:
            error, trace = out.error, out.error_trace or ""
    if first is not None:
        t_code, t_kind, t_message = _details(first)
        code, kind = t_code or code, t_kind or kind
        state_message = first.state.state_message if first.state else ""
        message = error or t_message or state_message or message
    else:
        message = error or (run.state.state_message if run.state else "") or message
    repairs = [int(i.id) for i in run.repair_history or []
               if i.id is not None and i.type is not None and i.type.value == "REPAIR"]
    cluster_key = (getattr(first, "job_cluster_key", None) or "") if first else ""
    node_type = ""
    for jc in run.job_clusters or []:
        if jc.job_cluster_key == cluster_key and jc.new_cluster is not None:
            node_type = jc.new_cluster.node_type_id or ""
    instance = (first.cluster_instance if first is not None else None) or run.cluster_instance
    attributes: dict[str, Any] = {
        "failed_tasks": [t.task_key for t, _ in outputs if getattr(t, "task_key", None)],
        "repair_count": len(repairs),
        "repair_history": repairs,
        "result_state": run.state.result_state.value if run.state and run.state.result_state
        else "",
    }
    if trace:
        attributes["error_trace"] = trace[:TRACE_LIMIT]
    if instance is not None and instance.cluster_id:
        attributes["cluster_id"] = instance.cluster_id
    if cluster_key:
        attributes["job_cluster_key"] = cluster_key
    if node_type:
        attributes["node_type_id"] = node_type
    if run.run_page_url:
        attributes["run_page_url"] = run.run_page_url
    if task_key and not attr(event, "parent_run_id") and run.run_id is not None:
        attributes["parent_run_id"] = str(run.run_id)
    return _replace(event, attributes, error_code=code,
                    error_codes=_merge_codes(code, (), event), message=message,
                    failure_type=kind)


def _databricks_cluster(event: ErrorEvent, clients: Clients, notes: _Notes) -> ErrorEvent:
    cluster_id = attr(event, "cluster_id") or event.resource_id
    if not cluster_id:
        return event
    w = notes.call("databricks workspace", lambda: _workspace(event, clients))
    if w is None:
        return event
    attributes: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    details = notes.call(f"databricks clusters.get {cluster_id}",
                         lambda: w.clusters.get(cluster_id))
    if details is not None:
        attributes["cluster_state"] = details.state.value if details.state else ""
        # The playbooks read keep-alive tags here (attributes.cluster_tags.keep-alive).
        attributes["cluster_tags"] = dict(details.custom_tags or {})
        if details.node_type_id:
            attributes["node_type_id"] = details.node_type_id
        reason = details.termination_reason
        if reason is not None and reason.code is not None and not event.error_code:
            fields["error_code"] = reason.code.value
            fields["failure_type"] = reason.type.value if reason.type else ""
            fields["message"] = details.state_message or ""
            attributes["termination_parameters"] = dict(reason.parameters or {})
    if event.kind == "library" or "LIBRARY_INSTALLATION_ERROR" in (event.error_code,
                                                                   *event.error_codes):
        failed = _failed_libraries(w, cluster_id, notes)
        if failed:
            attributes["failed_libraries"] = failed
            first = failed[0]["messages"]
            if first and event.kind == "library":
                fields["message"] = first[0]
    code = fields.get("error_code", "")
    if code:
        fields["error_codes"] = _merge_codes(code, (), event)
    return _replace(event, attributes, **fields)


def _failed_libraries(w: WorkspaceClient, cluster_id: str,
                      notes: _Notes) -> list[dict[str, Any]]:
    """The cluster's libraries that failed to install, each ``{library, messages}``."""
    status = notes.call(f"databricks libraries.cluster_status {cluster_id}",
                        lambda: list(w.libraries.cluster_status(cluster_id)))
    return [{"library": s.library.as_dict() if s.library else {},
             "messages": list(s.messages or [])}
            for s in status or [] if s.status is not None and s.status.value == "FAILED"]


def _run_libraries(event: ErrorEvent, w: WorkspaceClient, notes: _Notes) -> ErrorEvent:
    """A run that failed installing its libraries gets its cluster's failed libraries and
    their messages (``attributes.failed_libraries``), as a library event does."""
    cluster_id = attr(event, "cluster_id")
    if event.error_code != "LIBRARY_INSTALLATION_ERROR" or not cluster_id:
        return event
    failed = _failed_libraries(w, cluster_id, notes)
    return _replace(event, {"failed_libraries": failed}) if failed else event


# -- ADF and Synapse -----------------------------------------------------------------------


def _pipeline(event: ErrorEvent) -> str:
    return attr(event, "pipeline") or (event.resource if event.kind == "pipeline_run" else "")


def _adf_enriched(event: ErrorEvent, clients: Clients, notes: _Notes) -> list[ErrorEvent]:
    """An ADF/Synapse run's error; a metric alert's failed runs; else the event as it is."""
    if event.run_id:
        return [_pipeline_run(event, clients, notes)]
    if _pipeline(event):
        return _expand(event, clients, notes)
    return [event]


def _factory_known(event: ErrorEvent) -> bool:
    return bool(attr(event, "factory") or arm_parts(event.resource_id).get("name"))


def _resolve_factory(event: ErrorEvent, clients: Clients, notes: _Notes) -> ErrorEvent | None:
    """The factory of an ADF alert that names none, among the configured factories.

    The only factory that ``[clouds.adf]`` names is it; of several, the one that knows the
    run (or, without a run id, the pipeline). None, with a note saying why, when none is
    named (``*`` only), none or several know it, or there is no pipeline to look for.
    """
    pipeline = _pipeline(event)
    call = f"adf factory of pipeline {pipeline or '?'}"
    named = [(name, cfg, factory) for name, cfg in clients.clouds.adf.items()
             for factory in dict.fromkeys(cfg.factories) if factory != "*"]

    def unknown(why: str) -> None:
        notes.items.append(LookupNote(call=call, ok=False, detail=(
            "the alert names no factory (a log alert without the _ResourceId dimension); "
            f"{why}; left unknown")))

    if not pipeline and not event.run_id:
        return unknown("it names no pipeline or run to look for either")
    if not named:
        return unknown("[clouds.adf] names no factory to look in")
    if len(named) == 1:
        found, how = named, "the only factory that [clouds.adf] names"
    else:
        what = f"run {event.run_id}" if event.run_id else f"pipeline {pipeline}"
        found = []
        for name, cfg, factory in named:
            client = notes.call(f"adf client {name}", lambda n=name, c=cfg: clients.adf(
                AdfRoute(n, c)))
            if client is None:
                continue
            lookup = (
                (lambda c=client, g=cfg.resource_group, f=factory: c.pipeline_runs.get(
                    g, f, event.run_id)) if event.run_id
                else (lambda c=client, g=cfg.resource_group, f=factory: c.pipelines.get(
                    g, f, pipeline))
            )
            if notes.call(f"adf {what} in {factory}", lookup) is not None:
                found.append((name, cfg, factory))
        names = ", ".join(f for _, _, f in named)
        if not found:
            return unknown(f"no configured factory ({names}) knows {what}")
        if len(found) > 1:
            return unknown(f"{what} is in several configured factories "
                           f"({', '.join(f for _, _, f in found)})")
        how = f"the configured factory that knows {what}"
    _, cfg, factory = found[0]
    notes.items.append(LookupNote(call=call, ok=True, detail=f"{factory}: {how}"))
    arm_id = (f"/subscriptions/{cfg.subscription_id}/resourceGroups/{cfg.resource_group}"
              f"/providers/Microsoft.DataFactory/factories/{factory}")
    return msgspec.structs.replace(event, resource_id=arm_id, attributes={
        **event.attributes, "factory": factory, "subscription": cfg.subscription_id,
        "resource_group": cfg.resource_group, "factory_resolved_by": "configured"})


def _window(event: ErrorEvent, notes: _Notes) -> tuple[datetime, datetime]:
    """The alert's window (an hour before its time if it gives none), bounded: at most
    :data:`WINDOW_LIMIT` long, no older than ``max_age_s`` before now; a note when cut."""
    def aware(moment: datetime | None) -> datetime | None:
        return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)

    def parse(value: str) -> datetime | None:
        try:
            return aware(datetime.fromisoformat(value.replace("Z", "+00:00"))) if value else None
        except ValueError:
            return None

    given_end = parse(attr(event, "window_end")) or aware(event.occurred_at) or notes.now
    given_start = parse(attr(event, "window_start")) or given_end - timedelta(hours=1)
    end = given_end
    floor = end - WINDOW_LIMIT
    if notes.max_age_s:
        floor = max(floor, notes.now - timedelta(seconds=notes.max_age_s))
    start = max(given_start, floor)
    if (start, end) != (given_start, given_end):
        given = f"the alert's window {given_start.isoformat()} to {given_end.isoformat()}"
        bound = (f"at most {int(WINDOW_LIMIT.total_seconds()) // 3600} h"
                 + (f", not older than max_alert_age_s ({notes.max_age_s} s)"
                    if notes.max_age_s else ""))
        notes.items.append(LookupNote(
            call=f"{event.source} alert window", ok=True,
            detail=(f"{given} was cut to {start.isoformat()} to {end.isoformat()} ({bound})"
                    if start < end else f"{given} lies outside the bound ({bound}): no "
                    "failed runs looked up")))
    return start, end


def _activity_error(event: ErrorEvent, activities: list[Any], run: Any) -> ErrorEvent:
    failed = [a for a in activities if str(a.status or "") == "Failed"]
    named = attr(event, "activity")
    failed.sort(key=lambda a: (a.activity_name != named, str(a.activity_run_start or "")))
    attributes: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    if run is not None:
        attributes["pipeline_status"] = str(run.status or "")
        if run.run_group_id:
            attributes["run_group_id"] = run.run_group_id
        if run.message:
            attributes["run_message"] = clip(run.message)
            fields["message"] = run.message
    if failed:
        first = failed[0]
        error = first.error if isinstance(first.error, dict) else {}
        raw_code = str(error.get("errorCode") or "")
        # The cloud's own words, as long as the service made them: bounded before anything
        # reads them (the event would cut its message the same way).
        message = clip(str(error.get("message") or ""))
        code, codes = unwrap_adf_error(raw_code, message)
        attributes.update(activity=first.activity_name, activity_type=first.activity_type,
                          activity_run_id=first.activity_run_id,
                          failed_activities=[a.activity_name for a in failed])
        fields.update(error_code=code, error_codes=_merge_codes(code, codes, event),
                      message=message or fields.get("message", ""),
                      failure_type=str(error.get("failureType") or ""))
    return _replace(event, attributes, **fields)


def _adf_route(event: ErrorEvent, clients: Clients) -> tuple[Any, str, str]:
    arm = arm_parts(event.resource_id)
    factory = attr(event, "factory") or arm.get("name", "")
    route = clients.adf_route(factory, attr(event, "subscription") or arm.get("subscription", ""),
                              attr(event, "resource_group") or arm.get("resource_group", ""))
    rg = attr(event, "resource_group") or route.settings.resource_group
    return clients.adf(route), rg, factory


def _synapse_client(event: ErrorEvent, clients: Clients) -> Any:
    workspace = attr(event, "workspace") or arm_parts(event.resource_id).get("name", "")
    return clients.synapse(clients.synapse_route(workspace))


def _pipeline_run(event: ErrorEvent, clients: Clients, notes: _Notes) -> ErrorEvent:
    run_id = event.run_id
    if event.source == "adf":
        from azure.mgmt.datafactory.models import RunFilterParameters as AdfFilter

        found = notes.call("adf client", lambda: _adf_route(event, clients))
        if found is None:
            return event
        client, rg, factory = found
        run = notes.call(f"adf pipeline_runs.get {run_id}",
                         lambda: client.pipeline_runs.get(rg, factory, run_id))
        after, before = _run_window(run, event)

        def activities() -> list[Any]:
            out, token = [], None
            for _ in range(20):
                page = client.activity_runs.query_by_pipeline_run(
                    rg, factory, run_id, AdfFilter(last_updated_after=after,
                                                   last_updated_before=before,
                                                   continuation_token=token))
                out.extend(page.value or [])
                token = page.continuation_token
                if not token:
                    return out
            return out

        acts = notes.call(f"adf activity_runs.query_by_pipeline_run {run_id}", activities)
    else:
        from azure.synapse.artifacts.models import RunFilterParameters as SynFilter

        client = notes.call("synapse client", lambda: _synapse_client(event, clients))
        if client is None:
            return event
        run = notes.call(f"synapse pipeline_run.get_pipeline_run {run_id}",
                         lambda: client.pipeline_run.get_pipeline_run(run_id))
        after, before = _run_window(run, event)
        pipeline = (run.pipeline_name if run is not None else "") or _pipeline(event)
        acts = notes.call(
            f"synapse pipeline_run.query_activity_runs {run_id}",
            lambda: list(client.pipeline_run.query_activity_runs(
                pipeline, run_id, SynFilter(last_updated_after=after,
                                            last_updated_before=before)).value or []),
        )
    if run is None and acts is None:
        return event
    return _activity_error(event, acts or [], run)


def _run_window(run: Any, event: ErrorEvent) -> tuple[datetime, datetime]:
    start = getattr(run, "run_start", None) or event.occurred_at or datetime.now(UTC)
    end = getattr(run, "run_end", None) or datetime.now(UTC)
    return start - timedelta(minutes=5), end + timedelta(hours=1)


def _expand(event: ErrorEvent, clients: Clients, notes: _Notes) -> list[ErrorEvent]:
    """A metric alert names a pipeline and a window: one event per failed run in it."""
    pipeline = _pipeline(event)
    start, end = _window(event, notes)
    if start >= end:
        return [event]  # nothing left of the window to look in (the note says why)
    if event.source == "adf":
        from azure.mgmt.datafactory.models import RunQueryFilter as AdfQueryFilter

        found = notes.call("adf client", lambda: _adf_route(event, clients))
        if found is None:
            return [event]
        client, rg, factory = found
        filters = [AdfQueryFilter(operand="PipelineName", operator="Equals",
                                  values_property=[pipeline]),
                   AdfQueryFilter(operand="Status", operator="Equals", values_property=["Failed"])]
        runs = notes.call(f"adf pipeline_runs.query_by_factory {pipeline}",
                          lambda: adf_runs(client, rg, factory, start, end, filters))
    else:
        from azure.synapse.artifacts.models import RunQueryFilter as SynQueryFilter

        client = notes.call("synapse client", lambda: _synapse_client(event, clients))
        if client is None:
            return [event]
        filters = [SynQueryFilter(operand="PipelineName", operator="Equals", values=[pipeline]),
                   SynQueryFilter(operand="Status", operator="Equals", values=["Failed"])]
        runs = notes.call(f"synapse query_pipeline_runs_by_workspace {pipeline}",
                          lambda: synapse_runs(client, start, end, filters))
    if not runs:
        if runs is not None:
            notes.items.append(LookupNote(
                call=f"{event.source} failed runs of {pipeline}", ok=True,
                detail=f"no failed run between {start.isoformat()} and {end.isoformat()}"))
        return [event]
    if len(runs) > MAX_EXPANDED:
        notes.items.append(LookupNote(
            call=f"{event.source} failed runs of {pipeline}", ok=True,
            detail=f"{len(runs)} failed runs; the first {MAX_EXPANDED} become events"))
        runs = runs[:MAX_EXPANDED]
    out = []
    for run in runs:
        one = msgspec.structs.replace(
            event, run_id=str(run.run_id), dedup_key=f"{event.dedup_key}:{run.run_id}",
            kind="pipeline_run",
            attributes={**event.attributes, "expanded_from": event.dedup_key},
        )
        out.append(_pipeline_run(one, clients, notes))
    return out
