"""Which attributes an event of each source and kind carries: the one declaration.

``event.attributes`` holds what a sender's payload says beyond the normalized fields
(docs/SENDERS.md). This module says, per ``(source, kind)``, every top-level attribute that
the receivers' parsers set on arrival, that enrichment adds (``engine/cloud/enrich.py``)
or that a poller sets (``engine/runtime/pollers.py``), what it holds and who sets it. The event
reference of docs/SENDERS.md is generated from it, the tests check every parser's output on
every sample and every enrichment against it, and a playbook check can read it (without
importing the receivers) to tell a misspelled ``attributes.pipline`` from a real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, NamedTuple

from engine.events import KINDS, SOURCES

__all__ = [
    "ATTRIBUTES",
    "ORIGINS",
    "Attribute",
    "Origin",
    "attributes_of",
    "known_names",
]

Origin = Literal["receiver", "enrichment", "poller"]
ORIGINS: Final[tuple[Origin, ...]] = ("receiver", "enrichment", "poller")


class Attribute(NamedTuple):
    """One attribute: its name, what it holds (a sentence) and who sets it."""

    name: str
    meaning: str
    origin: Origin = "receiver"


def _group(*items: tuple[str, str] | tuple[str, str, Origin]) -> tuple[Attribute, ...]:
    return tuple(Attribute(*item) for item in items)


# --- Azure Monitor (receivers/azure_monitor.py, receivers/azure_noncommon.py) ----------------

_AZURE_TARGET = _group(
    ("subscription", "the target's subscription id"),
    ("resource_group", "the target's resource group"),
    ("resource_type", "the target's ARM type, lower case (`microsoft.datafactory/factories`)"),
)
_LOG_WORKSPACE = _group(
    ("log_workspace_id", "the Log Analytics workspace a log alert ran in, when no other target "
                         "is named (never taken for the factory, workspace or app)"),
)
_AZURE_ALERT = _group(
    ("alert_rule", "the alert rule's name"),
    ("alert_id", "Azure Monitor's alert id: the same on Fired and Resolved"),
    ("origin_alert_id", "the monitoring service's own alert id"),
    ("signal_type", "`Metric`, `Log`, `Activity Log`"),
    ("monitoring_service", "`Platform`, `Log Alerts V2`, `Log Analytics`, `Activity Log - ...`,"
                           " `ServiceHealth`, `Resource Health`, `SmartDetector`, `CostAlerts`"),
    ("monitor_condition", "`Fired` or `Resolved` as sent"),
    ("description", "the alert rule's description"),
    ("target_ids", "`alertTargetIDs` as sent"),
    ("configuration_items", "`configurationItems` as sent"),
    ("fired_at", "`firedDateTime` as sent"),
    ("resolved_at", "`resolvedDateTime` as sent"),
    ("condition_type", "the criteria's type (`SingleResourceMultipleMetricCriteria`, ...)"),
    ("window_size", "the evaluation window (`PT5M`)"),
    ("window_start", "the window's start as sent"),
    ("window_end", "the window's end as sent"),
    ("metric_name", "the first criterion's metric"),
    ("metric_namespace", "the first criterion's metric namespace"),
    ("metric_value", "the first criterion's value (a number)"),
    ("operator", "the first criterion's operator as sent"),
    ("threshold", "the first criterion's threshold as sent"),
    ("time_aggregation", "the first criterion's aggregation"),
    ("search_query", "a log search alert's query"),
    ("search_results_api", "the link to the (filtered) search results API"),
    ("dimensions", "the split dimensions, name to value (text)"),
    ("row", "the first result row of a Simple Log Alert or log search alert V1, column to text"),
    ("custom_properties", "the custom properties (and, for activity log alerts, the event's "
                          "`properties`: Service Health `title`, `stage`, `trackingId`, Resource "
                          "Health `currentHealthStatus`, ...)"),
    ("legacy_status", "the legacy metric schema's `status` (`Activated`, `Deactivated`)"),
    ("timestamp", "the legacy metric schema's `context.timestamp`"),
    ("portal_link", "the legacy metric schema's link to the resource"),
)
_ACTIVITY_LOG = _group(
    ("operation_name", "the activity log event's operation"),
    ("caller", "who did it"),
    ("status", "the operation's status (`Succeeded`, `Active`, `Resolved`, ...)"),
    ("sub_status", "the operation's sub-status"),
    ("correlation_id", "the activity log correlation id"),
    ("level", "the event's level as text (`Informational`, or a number as sent)"),
    ("event_timestamp", "the event's time as sent"),
)
_PIPELINE = _group(
    ("pipeline", "the pipeline's name"),
    ("activity", "the failed activity (`ActivityName`, `Error.target`, or the innermost "
                 "`Operation on target <activity> failed`); enrichment: the failed activity"),
    ("activity_type", "the activity's type (`Copy`, ...)"),
    ("activity_run_id", "the activity run id"),
    ("trigger", "the trigger's name"),
    ("pipeline_status", "the pipeline run's status", "enrichment"),
    ("run_group_id", "the pipeline run's group id", "enrichment"),
    ("run_message", "the pipeline run's own message", "enrichment"),
    ("failed_activities", "every failed activity of the run", "enrichment"),
    ("expanded_from", "the metric alert's dedup key this run was found for", "enrichment"),
    ("factory_resolved_by", "how enrichment found the factory of an alert that named none "
                            "(`configured`: the only configured factory or the one that knows "
                            "the run or pipeline)", "enrichment"),
)
_FUNCTIONS = _group(
    ("app_insights", "the Application Insights component (target)"),
    ("function_app", "the function app (`cloud_RoleName`, or the `microsoft.web/sites` target)"),
    ("function", "the function (`operation_Name`)"),
    ("problem_id", "Application Insights' problem id"),
    ("exception_type", "the exception's type"),
    ("outer_message", "the outer exception's message"),
    ("innermost_message", "the innermost exception's message"),
)
_GENERIC = _group(
    ("resource_name", "the target's name"),
    ("budget", "a budget notice's budget name"),
)

# --- Databricks (receivers/databricks.py, engine/runtime/pollers.py, enrichment) ---------

_DBX_RUN = _group(
    ("event_type", "the notification (`jobs.on_failure`, ...) or `job.failure` (in-house)"),
    ("job_id", "the job id (text)"),
    ("workspace_id", "the workspace id (text)"),
    ("run_name", "the in-house `job.failure`'s run name"),
    ("life_cycle_state", "the in-house `job.failure`'s life cycle state"),
    ("result_state", "`FAILED`, `TIMEDOUT`, ... (in-house, reconciler, enrichment)"),
    ("detected_by", "`reconciler`: a failed run found by polling, not by its webhook", "poller"),
    ("state_message", "the polled run's state message", "poller"),
    ("run_page_url", "the run's page", "poller"),
    ("failed_tasks", "the failed tasks' keys", "enrichment"),
    ("repair_count", "how many repairs the run had", "enrichment"),
    ("repair_history", "the repair ids", "enrichment"),
    ("error_trace", "the head of the failed task's error trace", "enrichment"),
    ("cluster_id", "the run's cluster", "enrichment"),
    ("job_cluster_key", "the failed task's job cluster key", "enrichment"),
    ("node_type_id", "the job cluster's node type", "enrichment"),
    ("cluster_termination_code", "the cluster's termination code when the run died with it",
     "enrichment"),
    ("termination_parameters", "the cluster's termination parameters", "enrichment"),
    ("failed_libraries", "the libraries that failed to install, with their messages (a run's: "
                         "its cluster's, after a LIBRARY_INSTALLATION_ERROR)", "enrichment"),
)
_DBX_TASK = _group(
    ("task_key", "the task's key"),
    ("parent_run_id", "the job run of the task's run (enrichment fills it when missing)"),
)
_DBX_CLUSTER = _group(
    ("event_type", "`cluster.terminated`, `cluster.failed_to_start` (in-house) or `TERMINATING`"),
    ("state", "the in-house event's cluster state"),
    ("workspace", "the poller's workspace name", "poller"),
    ("cluster_id", "the cluster id"),
    ("termination_parameters", "the termination reason's parameters"),
    ("cluster_state", "the cluster's state", "enrichment"),
    ("cluster_tags", "the cluster's custom tags (`keep-alive`, ...)", "enrichment"),
    ("node_type_id", "the cluster's node type", "enrichment"),
    ("failed_libraries", "the libraries that failed to install, with their messages",
     "enrichment"),
)


def _table() -> dict[tuple[str, str], tuple[Attribute, ...]]:
    azure = _AZURE_TARGET + _AZURE_ALERT
    table: dict[tuple[str, str], tuple[Attribute, ...]] = {}
    for source, owner in (("adf", ("factory", "the data factory")),
                          ("synapse", ("workspace", "the Synapse workspace"))):
        common = azure + _LOG_WORKSPACE + (Attribute(*owner),) + _PIPELINE
        for kind in ("pipeline_run", "activity_run"):
            table[(source, kind)] = common
        table[(source, "alert")] = common + _ACTIVITY_LOG
    table[("functions", "function")] = azure + _LOG_WORKSPACE + _FUNCTIONS
    table[("functions", "alert")] = azure + _LOG_WORKSPACE + _FUNCTIONS + _ACTIVITY_LOG
    table[("generic", "alert")] = azure + _GENERIC + _ACTIVITY_LOG
    table[("databricks", "job_run")] = _DBX_RUN
    table[("databricks", "task_run")] = _DBX_RUN + _DBX_TASK
    table[("databricks", "cluster")] = _DBX_CLUSTER
    table[("databricks", "library")] = _DBX_CLUSTER
    return table


ATTRIBUTES: Final[Mapping[tuple[str, str], Mapping[str, Attribute]]] = MappingProxyType({
    key: MappingProxyType({a.name: a for a in group}) for key, group in _table().items()
})
"""``(source, kind)`` -> attribute name -> :class:`Attribute`; a pair absent here carries
none (no sender makes a ``generic`` ``job_run``)."""


def attributes_of(source: str, kind: str) -> Mapping[str, Attribute]:
    """The attributes an event of ``source`` and ``kind`` may carry (empty if none)."""
    if source not in SOURCES or kind not in KINDS:
        raise ValueError(f"unknown source or kind: {source!r}, {kind!r}")
    return ATTRIBUTES.get((source, kind), MappingProxyType({}))


def known_names() -> frozenset[str]:
    """Every attribute name of any source and kind (for a did-you-mean)."""
    return frozenset(name for group in ATTRIBUTES.values() for name in group)
