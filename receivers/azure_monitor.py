"""Azure Monitor action-group payloads to ``ErrorEvent`` values: a pure function, no HTTP.

Every schema an action group posts is accepted on every Azure endpoint (docs/SENDERS.md):

- the common alert schema (``azureMonitorCommonAlertSchema``): metric alerts
  (``Platform``), log search alerts (``Log Alerts V2``, ``Simple Log Alert`` with its row in
  ``allOf[].event``, V1 ``Log Analytics``/``Application Insights`` with ``Dimensions`` and
  ``SearchResults``), activity log alerts (Service and Resource Health with their own
  status), smart detection, Prometheus, budgets, and the in-house shapes whose
  ``alertContext.properties`` carry ``PipelineName``, ``ErrorMessage`` and an ``Error``;
- the legacy metric schema (``AzureMonitorMetricAlert``), and the other schemas of action
  groups without the common one, moved into it by :mod:`receivers.azure_noncommon`.

The target resource type (a ``_ResourceId`` dimension, ``alertTargetIDs``, the legacy
``resourceId``) decides the source. Where the payload names no target, or only the Log
Analytics workspace its query ran in, the source is a data platform only on evidence (the
pipeline or function fields, an ADF/Synapse metric, a query of their log tables) and then
the endpoint says which (``ENDPOINT_SOURCES``); without evidence it is ``generic``, as is
any alert about another resource (kind ``alert``).

Parsing is lenient about what is missing (any field may be null or absent) and about fields
it does not use (their type is not checked), and strict about what it uses: a field of the
wrong type raises ``UnknownSchema`` with its JSON path. Nothing but ``PayloadError``
subclasses ever escapes, whatever the body.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeVar

import msgspec

from engine.errors import MalformedPayload, UnknownSchema
from engine.events import ErrorEvent, Kind, Source, Status, parse_severity
from engine.text import patterns
from engine.text.errorcodes import innermost_target_failure, unwrap_adf_error
from engine.text.redact import redact
from receivers import azure_noncommon as noncommon
from receivers import azure_text as text
from receivers._json import decode_bytes, kind_of

__all__ = ["ENDPOINT_SOURCES", "parse"]

ENDPOINT_SOURCES: Final[Mapping[str, Source]] = MappingProxyType({
    "azure-monitor": "adf",
    "synapse-monitor": "synapse",
    "azure-functions-monitor": "functions",
})

COMMON_SCHEMA: Final = "azureMonitorCommonAlertSchema"
LEGACY_METRIC_SCHEMA: Final = "AzureMonitorMetricAlert"

# ARM resource types (lower case) that name a source we know.
_TYPE_SOURCES: Final[Mapping[str, Source]] = MappingProxyType({
    "microsoft.datafactory/factories": "adf",
    "microsoft.synapse/workspaces": "synapse",
    "microsoft.insights/components": "functions",
    "microsoft.web/sites": "functions",
})
# Where a log query runs, not what failed: such a target names no source by itself.
_CONTAINER_TYPES: Final = frozenset({"microsoft.operationalinsights/workspaces"})
# Named values that only ADF/Synapse pipelines or Application Insights (Functions) alerts
# carry: the evidence that an alert without such a target is about a data platform.
_PLATFORM_FIELDS: Final = (
    "PipelineName", "PipelineRunId", "ActivityName", "ActivityRunId", "TriggerName",
    "cloud_RoleName", "AppRoleName", "operation_Name", "OperationName", "problemId",
    "ProblemId", "ExceptionType", "outerMessage", "OuterMessage", "innermostMessage",
    "InnermostMessage",
)
# Log tables of the same platforms (KQL table names are case-sensitive): these names, and
# ADF*Run(s) and SynapseIntegration*Runs (ADFActivityRun, SynapseIntegrationPipelineRuns).
_PLATFORM_TABLES: Final = frozenset({
    "SynapseRbacOperations", "exceptions", "AppExceptions", "requests", "AppRequests",
    "traces", "AppTraces", "FunctionAppLogs",
})
_WORD: Final = patterns.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUERY_SCAN: Final = 20_000  # the head of a query, where its tables are named
# The attribute that names the top-level resource of each source.
_OWNER_ATTRIBUTE: Final[Mapping[str, str]] = MappingProxyType({
    "adf": "factory",
    "synapse": "workspace",
    "functions": "app_insights",
})


class _MetricShape(NamedTuple):
    """How one pipeline metric's dimensions map to our fields."""

    kind: Kind
    status: Status  # when the alert fires: a metric of successes is news, not a failure
    name: str  # the dimension that holds the pipeline, activity or trigger name
    pipeline: str  # the dimension that holds the pipeline name of an activity metric


_ADF_PIPELINE: Final = _MetricShape("pipeline_run", "firing", "Name", "")
_ADF_ACTIVITY: Final = _MetricShape("activity_run", "firing", "Name", "PipelineName")
_ADF_TRIGGER: Final = _MetricShape("alert", "firing", "Name", "")
_METRICS: Final[Mapping[str, _MetricShape]] = MappingProxyType({
    "pipelinefailedruns": _ADF_PIPELINE,
    "pipelinesucceededruns": _ADF_PIPELINE._replace(status="info"),
    "pipelinecancelledruns": _ADF_PIPELINE._replace(status="info"),
    "activityfailedruns": _ADF_ACTIVITY,
    "activitysucceededruns": _ADF_ACTIVITY._replace(status="info"),
    "activitycancelledruns": _ADF_ACTIVITY._replace(status="info"),
    "triggerfailedruns": _ADF_TRIGGER,
    "triggersucceededruns": _ADF_TRIGGER._replace(status="info"),
    "triggercancelledruns": _ADF_TRIGGER._replace(status="info"),
    # Synapse counts ended runs and splits them by a `Result` dimension.
    "integrationpipelinerunsended": _MetricShape("pipeline_run", "firing", "Pipeline", ""),
    "integrationactivityrunsended": _MetricShape("activity_run", "firing", "Activity", "Pipeline"),
    "integrationtriggerrunsended": _MetricShape("alert", "firing", "Trigger", ""),
})

_BODY_MESSAGE_LIMIT: Final = 2000


# --- the schemas, as far as we read them (unknown keys are ignored) ---------------------

_Scalar = str | int | float | bool | None


class _Dimension(msgspec.Struct, frozen=True):
    name: str | None = None
    value: _Scalar = None


class _Criterion(msgspec.Struct, frozen=True):
    metricName: str | None = None
    metricNamespace: str | None = None
    metricValue: int | float | None = None
    operator: str | None = None
    threshold: str | int | float | None = None
    timeAggregation: str | None = None
    searchQuery: str | None = None
    metricMeasureColumn: str | None = None
    dimensions: list[_Dimension] | None = None
    event: list[list[_Dimension]] | None = None  # Simple Log Alert: the matching rows
    linkToFilteredSearchResultsAPI: str | None = None
    linkToSearchResultsAPI: str | None = None


class _Condition(msgspec.Struct, frozen=True):
    windowSize: str | None = None
    windowStartTime: str | None = None
    windowEndTime: str | None = None
    allOf: list[_Criterion] | None = None


class _Essentials(msgspec.Struct, frozen=True):
    alertId: str | None = None
    alertRule: str | None = None
    severity: str | int | None = None
    signalType: str | None = None
    monitorCondition: str | None = None
    monitoringService: str | None = None
    alertTargetIDs: list[str] | None = None
    configurationItems: list[str] | None = None
    originAlertId: str | None = None
    firedDateTime: str | None = None
    resolvedDateTime: str | None = None
    description: str | None = None


class _Column(msgspec.Struct, frozen=True):
    name: str | None = None


class _Table(msgspec.Struct, frozen=True):
    columns: list[_Column] | None = None
    rows: list[list[Any]] | None = None  # cells of `dynamic` columns are objects


class _SearchResults(msgspec.Struct, frozen=True):
    tables: list[_Table] | None = None


class _AlertContext(msgspec.Struct, frozen=True):
    """What we read of every alert context; a field typed ``Any`` is one whose type the
    documented samples vary (Service Health sends ``level`` 3) or that we pass on only as
    text: it is never a reason to refuse the alert."""

    properties: dict[str, Any] | None = None
    conditionType: str | None = None
    condition: _Condition | None = None
    # activity log alerts
    operationName: str | None = None
    caller: str | None = None
    status: str | None = None
    subStatus: str | None = None
    eventTimestamp: str | None = None
    eventDataId: Any = None
    correlationId: str | None = None
    level: Any = None
    eventSource: Any = None
    authorization: Any = None
    # log search alerts V1 (Log Analytics, Application Insights) and the 2018-04-16 webhooks
    SearchQuery: str | None = None
    Dimensions: list[_Dimension] | None = None
    SearchResults: _SearchResults | None = None
    SearchResult: _SearchResults | None = None
    IncludedSearchResults: Any = None
    ApplicationId: Any = None
    AffectedConfigurationItems: Any = None
    ResultCount: Any = None
    SearchIntervalInMinutes: Any = None
    SearchIntervalInSeconds: Any = None
    LinkToFilteredSearchResultsAPI: Any = None
    LinkToSearchResultsAPI: Any = None
    # smart detection
    DetectionSummary: Any = None
    DetectedValue: Any = None
    NormalValue: Any = None
    DetectedFailureRate: Any = None
    NormalFailureRate: Any = None
    # Prometheus
    expression: Any = None
    expressionValue: Any = None
    annotations: Any = None
    # budgets
    AlertData: Any = None
    # a custom JSON payload's Slack-style message
    text: Any = None


class _CommonData(msgspec.Struct, frozen=True):
    essentials: _Essentials
    alertContext: _AlertContext | None = None
    customProperties: dict[str, Any] | None = None


class _CommonAlert(msgspec.Struct, frozen=True):
    data: _CommonData


class _LegacyContext(msgspec.Struct, frozen=True):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    timestamp: str | None = None
    severity: str | int | None = None
    conditionType: str | None = None
    condition: _Condition | None = None
    subscriptionId: str | None = None
    resourceGroupName: str | None = None
    resourceName: str | None = None
    resourceType: str | None = None
    resourceId: str | None = None
    portalLink: str | None = None


class _LegacyData(msgspec.Struct, frozen=True):
    context: _LegacyContext
    status: str | None = None
    properties: dict[str, Any] | None = None


class _LegacyAlert(msgspec.Struct, frozen=True):
    data: _LegacyData


# --- entry point -------------------------------------------------------------------------


def parse(body: bytes | dict[str, Any], endpoint: str) -> list[ErrorEvent]:
    """Turn one action-group body received on ``endpoint`` into its event (a list of one).

    ``endpoint`` is the receiver's name, a key of ``ENDPOINT_SOURCES``; it decides the
    source only where the payload names no target. ``body`` is the raw request body or an
    already decoded JSON object. Raises ``MalformedPayload`` when the bytes are not UTF-8
    JSON, ``UnknownSchema`` (with ``path``) for JSON of no known shape or with a field of
    the wrong type; never anything else for any body. An unknown ``endpoint`` is the
    caller's bug and raises ``ValueError``. Every event has its fingerprint and ``id`` "".
    """
    if endpoint not in ENDPOINT_SOURCES:
        raise ValueError(
            f"unknown Azure Monitor endpoint {endpoint!r}; known: {', '.join(ENDPOINT_SOURCES)}"
        )
    doc = _decode(body)
    if not isinstance(doc, dict):
        raise UnknownSchema(f"expected a JSON object, got `{_kind(doc)}`")
    default = ENDPOINT_SOURCES[endpoint]
    schema = doc.get("schemaId")
    if schema == COMMON_SCHEMA or (schema is None and _has_essentials(doc)):
        # A forwarder that drops `schemaId` still sends the common envelope.
        alert = _convert(doc, _CommonAlert)
        event = _Common(alert.data, doc, default).event()
    elif schema == LEGACY_METRIC_SCHEMA:
        legacy = _convert(doc, _LegacyAlert)
        event = _legacy_event(legacy.data, doc, default)
    else:
        event = _rewritten(_noncommon(doc, schema), doc, default)
    return [event.with_fingerprint()]


def _noncommon(doc: dict[str, Any], schema: object) -> noncommon.Rewrite:
    """The other schemas of action groups, in the common envelope; else ``UnknownSchema``."""
    if schema == noncommon.ACTIVITY_LOG_SCHEMA:
        return noncommon.activity_log(doc)
    if schema == noncommon.LOG_ALERT_SCHEMA:
        data = doc.get("data")
        if not isinstance(data, dict):
            raise UnknownSchema(f"Expected `object`, got `{_kind(data)}`", "$.data")
        return noncommon.log_alert(data, "$.data")
    if schema == noncommon.BUDGET_SCHEMA:
        return noncommon.budget(doc)
    if schema is None and noncommon.is_log_alert(doc):
        return noncommon.log_alert(doc, "$")
    if schema is None and noncommon.is_alert_resource(doc):
        return noncommon.alert_resource(doc)
    if schema is None and noncommon.is_custom_payload(doc):
        return noncommon.custom_payload(doc)
    if schema is None:
        raise UnknownSchema(f"missing schemaId; expected {COMMON_SCHEMA} or {LEGACY_METRIC_SCHEMA}")
    raise UnknownSchema(
        f"unknown schemaId {_show(schema)}; expected {COMMON_SCHEMA} or {LEGACY_METRIC_SCHEMA}",
        "$.schemaId",
    )


def _rewritten(rewrite: noncommon.Rewrite, sent: dict[str, Any], default: Source) -> ErrorEvent:
    """Read a rewritten body as a common alert; errors name the field as it was sent, and
    the message's last resort is the body as it was sent."""
    try:
        alert = _convert(rewrite.doc, _CommonAlert)
        return _Common(alert.data, sent, default).event()
    except UnknownSchema as exc:
        raise noncommon.remap(exc, rewrite.paths) from exc


def _decode(body: object) -> object:
    """Bytes to a JSON value; a decoded value goes through JSON too, so both read alike."""
    if not isinstance(body, bytes | bytearray | memoryview | str):
        try:
            body = msgspec.json.encode(body)
        except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError) as exc:
            # Lone surrogates (UnicodeEncodeError is a ValueError), sets, cycles, huge ints.
            raise MalformedPayload(f"the body cannot be read as JSON: {exc}") from exc
    if not (body.strip() if isinstance(body, str) else bytes(body).strip()):
        raise MalformedPayload("the body is empty; expected an Azure Monitor alert (JSON object)")
    return decode_bytes(body)


def _has_essentials(doc: dict[str, Any]) -> bool:
    data = doc.get("data")
    return isinstance(data, dict) and "essentials" in data


_T = TypeVar("_T")


def _convert(doc: dict[str, Any], schema: type[_T]) -> _T:
    """Read ``doc`` as ``schema``; a wrong type becomes ``UnknownSchema`` at its path."""
    try:
        return msgspec.convert(doc, schema)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        raise UnknownSchema(message, where.rstrip("`") or "$") from exc


# --- the common alert schema ---------------------------------------------------------------


class _Fields:
    """Named values from custom properties, dimensions and log rows, first source first.

    Values must be scalars: an object where a name is expected is a wrong type, reported
    at its path. Empty strings count as absent.
    """

    def __init__(self) -> None:
        self._sources: list[tuple[str, Mapping[str, Any], bool]] = []

    def add(self, path: str, values: Mapping[str, Any] | None, *, structured: bool) -> None:
        """Add a source; only ``structured`` ones (properties, not dimensions) hold objects."""
        if values:
            self._sources.append((path, values, structured))

    def text(self, *names: str) -> str:
        for path, values, _ in self._sources:
            for name in names:
                if name in values:
                    found = _scalar_text(values[name], f"{path}.{name}")
                    if found:
                        return found
        return ""

    def object(self, name: str) -> tuple[Mapping[str, Any], str] | None:
        """The first object named ``name`` and its path (the in-house ``Error``).

        A flat string is taken as the object's ``message``: custom properties of metric
        alert rules are flat strings, and an author may well call one ``Error``.
        """
        for path, values, structured in self._sources:
            value = values.get(name) if structured else None
            if value is None or value == "":
                continue
            if isinstance(value, str):
                return {"message": value}, f"{path}.{name}"
            if not isinstance(value, dict):
                raise UnknownSchema(f"Expected `object`, got `{_kind(value)}`", f"{path}.{name}")
            return value, f"{path}.{name}"
        return None


class _Target(NamedTuple):
    """A parsed ARM id: ``/subscriptions/S/resourceGroups/G/providers/NS/T/N[/T2/N2...]``,
    or a subscription or resource group itself (Service Health, budgets, policies)."""

    arm_id: str
    subscription: str
    resource_group: str
    type: str  # lower-case `namespace/type` of the top-level resource
    name: str
    children: tuple[tuple[str, str], ...]  # (lower-case child type, name)


@functools.lru_cache(maxsize=1024)  # pure, and the same few resources alert again and again
def _arm(arm_id: str) -> _Target | None:
    parts = [p for p in arm_id.strip().split("/") if p]
    lower = [p.lower() for p in parts]

    def after(key: str) -> str:
        return parts[lower.index(key) + 1] if key in lower[:-1] else ""

    if "providers" not in lower[:-3]:
        if lower[:1] == ["subscriptions"] and len(parts) in (2, 4):
            if len(parts) == 2:
                return _Target(arm_id, parts[1], "", "microsoft.resources/subscriptions",
                               parts[1], ())
            if lower[2] == "resourcegroups":
                return _Target(arm_id, parts[1], parts[3], "microsoft.resources/resourcegroups",
                               parts[3], ())
        return None
    at = lower.index("providers")
    rest = parts[at + 1 :]
    namespace, kind, name = rest[0], rest[1], rest[2]
    children = tuple(
        (rest[i].lower(), rest[i + 1]) for i in range(3, len(rest) - 1, 2)
    )
    return _Target(
        arm_id=arm_id,
        subscription=after("subscriptions"),
        resource_group=after("resourcegroups"),
        type=f"{namespace}/{kind}".lower(),
        name=name,
        children=children,
    )


class _Common:
    """One common-schema alert, read into one event."""

    def __init__(
        self,
        data: _CommonData,
        doc: dict[str, Any],
        default: Source,
        *,
        properties_path: str = "$.data.alertContext.properties",
        condition_path: str = "$.data.alertContext.condition",
        context_path: str = "$.data.alertContext",
    ) -> None:
        self.data = data
        self.doc = doc
        self.default = default
        self.essentials = data.essentials
        self.context = data.alertContext or _AlertContext()
        condition = self.context.condition or _Condition()
        self.condition = condition
        self.criteria = condition.allOf or []
        self.dimensions: dict[str, Any] = {}
        self.row: dict[str, Any] = {}
        for ci, criterion in enumerate(self.criteria):
            base = f"{condition_path}.allOf[{ci}]"
            for di, dim in enumerate(criterion.dimensions or []):
                _put(self.dimensions, dim, f"{base}.dimensions[{di}]")
            for ri, row in enumerate((criterion.event or [])[:1]):
                for di, cell in enumerate(row):
                    _put(self.row, cell, f"{base}.event[{ri}][{di}]")
        # Log search alerts V1: the split dimensions, and the first result row when the
        # results are included (IncludedSearchResults; the 2018-04-16 webhooks always are).
        for di, dim in enumerate(self.context.Dimensions or []):
            _put(self.dimensions, dim, f"{context_path}.Dimensions[{di}]")
        results = self.context.SearchResults or self.context.SearchResult
        if not self.row and results is not None and _included(self.context.IncludedSearchResults):
            self.row = _first_row(results)
        self.custom = {**(data.customProperties or {}), **(self.context.properties or {})}
        self.fields = _Fields()
        self.fields.add(properties_path, self.context.properties, structured=True)
        self.fields.add("$.data.customProperties", data.customProperties, structured=True)
        # Dimensions and row cells are text already (checked where they were read).
        self.fields.add(f"{condition_path}.allOf[].dimensions", self.dimensions, structured=False)
        self.fields.add(f"{condition_path}.allOf[].event[0]", self.row, structured=False)

    def event(self) -> ErrorEvent:
        ess = self.essentials
        service = ess.monitoringService or ""
        health = self._health()
        activity_log = bool(health) or service.lower().startswith("activity log") or (
            (ess.signalType or "").lower().replace(" ", "") == "activitylog"
        )
        candidates = [self.fields.text("_ResourceId"), *(ess.alertTargetIDs or [])]
        source, target = self._source([c for c in candidates if c])
        # A Log Analytics workspace says where a query ran: never the factory, the Synapse
        # workspace or the app of a data-platform alert (enrichment finds those).
        container = target is not None and target.type in _CONTAINER_TYPES and source != "generic"
        if health:
            resolved = self._health_resolved(health)
        else:
            resolved = not activity_log and (ess.monitorCondition or "").lower() == "resolved"

        attrs: dict[str, Any] = {}
        if container:
            _set(attrs, "resource_type", target.type)
            _set(attrs, "log_workspace_id", target.arm_id)
        else:
            _describe_target(attrs, source, target)
        _set(attrs, "alert_rule", ess.alertRule)
        _set(attrs, "alert_id", ess.alertId)
        _set(attrs, "origin_alert_id", ess.originAlertId)
        _set(attrs, "signal_type", ess.signalType)
        _set(attrs, "monitoring_service", ess.monitoringService)
        _set(attrs, "monitor_condition", ess.monitorCondition)
        _set(attrs, "description", ess.description)
        _set(attrs, "target_ids", ess.alertTargetIDs)
        _set(attrs, "configuration_items", ess.configurationItems)
        _set(attrs, "fired_at", ess.firedDateTime)
        _set(attrs, "resolved_at", ess.resolvedDateTime)
        _set(attrs, "condition_type", self.context.conditionType)
        _set(attrs, "window_size", self.condition.windowSize)
        _set(attrs, "window_start", self.condition.windowStartTime)
        _set(attrs, "window_end", self.condition.windowEndTime)
        if self.criteria:
            first = self.criteria[0]
            _set(attrs, "metric_name", first.metricName)
            _set(attrs, "metric_namespace", first.metricNamespace)
            _set(attrs, "metric_value", first.metricValue)
            _set(attrs, "operator", first.operator)
            _set(attrs, "threshold", first.threshold)
            _set(attrs, "time_aggregation", first.timeAggregation)
            _set(attrs, "search_query", first.searchQuery)
            _set(attrs, "search_results_api",
                 first.linkToFilteredSearchResultsAPI or first.linkToSearchResultsAPI)
        else:
            _set(attrs, "search_query", self.context.SearchQuery)
            _set(attrs, "search_results_api", _loose(self.context.LinkToFilteredSearchResultsAPI)
                 or _loose(self.context.LinkToSearchResultsAPI))
        _set(attrs, "dimensions", self.dimensions)
        _set(attrs, "row", self.row)
        _set(attrs, "custom_properties", self.custom)
        if activity_log:
            ctx = self.context
            _set(attrs, "operation_name", ctx.operationName)
            _set(attrs, "caller", ctx.caller)
            _set(attrs, "status", ctx.status)
            _set(attrs, "sub_status", ctx.subStatus)
            _set(attrs, "correlation_id", ctx.correlationId)
            _set(attrs, "level", _loose(ctx.level))
            _set(attrs, "event_timestamp", ctx.eventTimestamp)
        budget = self.context.AlertData if isinstance(self.context.AlertData, dict) else {}
        _set(attrs, "budget", _loose(budget.get("BudgetName")))

        status: Status = "resolved" if resolved else "firing"
        if source in ("adf", "synapse"):
            kind, resource, shape_status = self._pipeline(attrs, source, target, activity_log)
            if not resolved:
                status = shape_status
        elif source == "functions":
            kind, resource = self._function(attrs, target, activity_log)
        else:
            kind, resource = "alert", self._resource(target, health, budget)

        codes = _Codes(self.fields, source)
        if source == "functions":
            codes.exception(attrs)
        message = (
            codes.message(attrs)
            or self._notice(health)
            or ess.description
            or self._summary(budget)
            or self._activity()
            or _body_text(self.doc)
        )
        fired = _time(ess.firedDateTime) or _time(self.context.eventTimestamp)
        occurred = (_time(ess.resolvedDateTime) or fired) if resolved else fired
        run_id = self.fields.text("PipelineRunId")
        if not run_id and source in ("adf", "synapse"):
            run_id = self.fields.text("RunId")  # Synapse's log tables call it RunId
        resource_id = "" if container else (target.arm_id if target else "")
        return ErrorEvent(
            source=source,
            kind=kind,
            status=status,
            dedup_key=self._dedup_key(resolved, run_id, attrs, target),
            resource=resource,
            resource_id=_loose(budget.get("BudgetId")) or resource_id,
            run_id=run_id,
            error_code=codes.code,
            error_codes=codes.all,
            message=message,
            failure_type=codes.failure_type,
            severity=parse_severity(ess.severity),
            occurred_at=occurred,
            attributes=attrs,
        )

    def _source(self, candidates: list[str]) -> tuple[Source, _Target | None]:
        """The first target of a known type; else the first other resource, as ``generic``.

        No target, or only a Log Analytics workspace: a data platform only on evidence (its
        named values, metrics or log tables), and then the endpoint's; else ``generic``.
        """
        targets = [t for t in map(_arm, candidates) if t is not None]
        for target in targets:
            if target.type in _TYPE_SOURCES:
                return _TYPE_SOURCES[target.type], target
        for target in targets:
            if target.type not in _CONTAINER_TYPES:
                return "generic", target
        container = targets[0] if targets else None
        return (self.default if self._evidence() else "generic"), container

    def _evidence(self) -> bool:
        """Whether the alert is about a pipeline or a function, though no target says so."""
        if any(self.fields.text(name) for name in _PLATFORM_FIELDS):
            return True
        if any((c.metricName or "").lower() in _METRICS for c in self.criteria):
            return True
        if _loose(self.context.ApplicationId):
            return True  # a log search alert V1 of an Application Insights app
        queries = [c.searchQuery or "" for c in self.criteria] + [self.context.SearchQuery or ""]
        return any(_platform_table(query) for query in queries)

    def _health(self) -> str:
        """``ServiceHealth`` or ``ResourceHealth`` for those notices (whose ``eventSource``
        may be a number: the operation names them too), else ""."""
        source = _loose(self.context.eventSource).lower()
        operation = (self.context.operationName or "").lower()
        if source == "servicehealth" or operation.startswith("microsoft.servicehealth/"):
            return "ServiceHealth"
        if source == "resourcehealth" or operation.startswith("microsoft.resourcehealth/"):
            return "ResourceHealth"
        return ""

    def _health_resolved(self, health: str) -> bool:
        """A health notice carries its own state: a resolved incident, completed
        maintenance or a resource available again is a resolution."""
        props = self.context.properties or {}
        status = (self.context.status or "").lower()
        if health == "ServiceHealth":
            stage = _loose(props.get("stage")).lower()
            return status == "resolved" or stage in ("resolved", "rca", "complete")
        current = _loose(props.get("currentHealthStatus")).lower()
        operation = (self.context.operationName or "").lower()
        return current == "available" or status == "resolved" or "/resolved/" in operation

    def _resource(self, target: _Target | None, health: str, budget: Mapping[str, Any]) -> str:
        """The human name of a generic alert's subject."""
        props = self.context.properties or {}
        items = self._configuration_items()
        if health == "ServiceHealth" and _loose(props.get("service")):
            return _loose(props.get("service"))
        if _loose(props.get("compromisedEntity")):
            return _loose(props.get("compromisedEntity"))  # a security alert's machine
        if _loose(budget.get("BudgetName")):
            return _loose(budget.get("BudgetName"))
        if target is not None and target.type in _CONTAINER_TYPES and items:
            return items[0]  # what sent the rows, not the workspace that holds them
        return target.name if target else next(iter(items), "")

    def _configuration_items(self) -> list[str]:
        """What sent the data (essentials, else a log search V1's affected items)."""
        affected = self.context.AffectedConfigurationItems
        fallback = [i for i in affected if isinstance(i, str)] if isinstance(affected, list) else []
        return list(self.essentials.configurationItems or []) or fallback

    def _notice(self, health: str) -> str:
        """A notice's own words: health, smart detection, Prometheus, a custom ``text``."""
        ctx = self.context
        props = ctx.properties or {}
        if health:
            return text.health_line(health, props)
        annotations = ctx.annotations if isinstance(ctx.annotations, dict) else {}
        prometheus = _loose(annotations.get("summary")) or _loose(annotations.get("description"))
        if not prometheus and _loose(ctx.expression):
            prometheus = f"{_loose(ctx.expression)} (value {_loose(ctx.expressionValue)})"
        return (
            text.smart_detection_line(
                _loose(ctx.DetectionSummary),
                _loose(ctx.DetectedValue) or _loose(ctx.DetectedFailureRate),
                _loose(ctx.NormalValue) or _loose(ctx.NormalFailureRate),
            )
            or prometheus
            or _loose(ctx.text).strip()
            or _loose(props.get("description"))  # the activity log event's own (Autoscale)
        )

    def _summary(self, budget: Mapping[str, Any]) -> str:
        """What crossed which threshold, in one line: metric and log criteria, a log
        search V1 result count, a budget."""
        lines = [
            text.criterion_line(
                metric=c.metricName or "", aggregation=c.timeAggregation or "",
                column=c.metricMeasureColumn or "", value=c.metricValue, operator=c.operator or "",
                threshold=c.threshold, dimensions=_dimension_texts(c.dimensions),
            )
            for c in self.criteria
        ]
        lines = [line for line in lines if line]
        if lines:
            return "; ".join(lines) + text.window(self.condition.windowSize)
        ctx = self.context
        count = ctx.ResultCount
        results = ctx.SearchResults or ctx.SearchResult
        if count in (None, "") and results is not None and _included(ctx.IncludedSearchResults):
            count = next((len(t.rows) for t in results.tables or [] if t.rows), None)
        minutes = _minutes(ctx.SearchIntervalInMinutes, ctx.SearchIntervalInSeconds)
        span = text.window(minutes=minutes) if minutes is not None else ""
        v1 = {name: value for name, value in self.dimensions.items()}
        return text.results_line(count, v1, span) or text.budget_line(budget)

    def _activity(self) -> str:
        """An activity log event without words of its own: what was done, how it went."""
        ctx = self.context
        action = ctx.authorization.get("action") if isinstance(ctx.authorization, dict) else None
        return text.activity_line(
            ctx.operationName or _loose(action), ctx.status or "", ctx.caller or ""
        )

    def _pipeline(
        self, attrs: dict[str, Any], source: Source, target: _Target | None, activity_log: bool
    ) -> tuple[Kind, str, Status]:
        """Pipeline, activity and trigger of an ADF or Synapse alert, and its kind."""
        fields = self.fields
        pipeline = fields.text("PipelineName")
        activity = fields.text("ActivityName")
        trigger = fields.text("TriggerName")
        shape = None
        if self.criteria and not activity_log:
            shape = _METRICS.get((self.criteria[0].metricName or "").lower())
        status: Status = "firing"
        if shape is not None:
            name = self.dimensions.get(shape.name, "")
            if shape.kind == "pipeline_run":
                pipeline = name or pipeline
            elif shape.kind == "activity_run":
                activity = name or activity
                pipeline = self.dimensions.get(shape.pipeline, "") or pipeline
            else:
                trigger = name or trigger
            status = shape.status
            result = fields.text("Result")
            if result and result.lower() != "failed":
                status = "info"  # Synapse: runs that ended otherwise than Failed
        for child_type, child_name in target.children if target else ():
            if child_type == "pipelines":
                pipeline = pipeline or child_name
            elif child_type == "triggers":
                trigger = trigger or child_name
        _set(attrs, "pipeline", pipeline)
        _set(attrs, "activity", activity)
        _set(attrs, "activity_type", fields.text("ActivityType"))
        _set(attrs, "activity_run_id", fields.text("ActivityRunId"))
        _set(attrs, "trigger", trigger)
        if activity_log:
            kind: Kind = "alert"
        elif shape is not None:
            kind = shape.kind
        elif activity:
            kind = "activity_run"
        elif pipeline:
            kind = "pipeline_run"
        else:
            kind = "alert"
        return kind, pipeline or trigger, status

    def _function(
        self, attrs: dict[str, Any], target: _Target | None, activity_log: bool
    ) -> tuple[Kind, str]:
        """The function app (Application Insights `cloud_RoleName`) and the function.

        Without a role name, the ``microsoft.web/sites`` target names the app, and an
        Application Insights component target names itself: the resource is never empty
        when the alert names either.
        """
        app = self.fields.text("cloud_RoleName", "AppRoleName")
        if not app and target is not None and target.type == "microsoft.web/sites":
            app = target.name
        _set(attrs, "function_app", app)
        _set(attrs, "function", self.fields.text("operation_Name", "OperationName"))
        _set(attrs, "problem_id", self.fields.text("problemId", "ProblemId"))
        component = target.name if target and target.type == "microsoft.insights/components" else ""
        # The 2018-04-16 webhook names the app only by its Application Insights id.
        return ("alert" if activity_log else "function"), (
            app or component or _loose(self.context.ApplicationId)
        )

    def _dedup_key(
        self, resolved: bool, run_id: str, attrs: dict[str, Any], target: _Target | None
    ) -> str:
        """``azmon:<alertId>:Fired|Resolved``; without an alert id, a hash of what names it.

        What names it: rule, run id, fired time, condition, pipeline, activity and target,
        with the activity log's event id and the split dimensions when there are any.
        Without a fired time the whole body: two budget notices of other amounts are two.
        """
        condition = "Resolved" if resolved else "Fired"
        if self.essentials.alertId:
            return f"azmon:{self.essentials.alertId}:{condition}"
        if not self.essentials.firedDateTime:
            return f"azmon:sha256:{_digest((), self.doc)}"
        parts: tuple[str, ...] = (
            self.essentials.alertRule or "",
            run_id,
            self.essentials.firedDateTime or "",
            condition,
            attrs.get("pipeline", ""),
            attrs.get("activity", ""),
            target.arm_id if target else "",
        )
        if _loose(self.context.eventDataId):
            parts += (_loose(self.context.eventDataId),)
        if self.dimensions:
            parts += (msgspec.json.encode(self.dimensions, order="sorted").decode(),)
        return f"azmon:sha256:{_digest(parts, self.doc)}"


def _describe_target(attrs: dict[str, Any], source: Source, target: _Target | None) -> None:
    """Subscription, resource group and the owning factory/workspace of the target."""
    if target is None:
        return
    _set(attrs, "subscription", target.subscription)
    _set(attrs, "resource_group", target.resource_group)
    _set(attrs, "resource_type", target.type)
    owner = _OWNER_ATTRIBUTE.get(source, "resource_name")
    if source == "functions" and target.type == "microsoft.web/sites":
        owner = "function_app"
    _set(attrs, owner, target.name)


class _Codes:
    """Error codes, message and failure type, by the priority in docs/SENDERS.md."""

    def __init__(self, fields: _Fields, source: Source) -> None:
        self.fields = fields
        found = fields.object("Error")
        error, path = found if found is not None else ({}, "")
        self.error_code = _scalar_text(error.get("errorCode"), f"{path}.errorCode")
        self.error_message = _scalar_text(error.get("message"), f"{path}.message")
        self.error_target = _scalar_text(error.get("target"), f"{path}.target")
        self.failure_type = _scalar_text(
            error.get("failureType"), f"{path}.failureType"
        ) or fields.text("FailureType")
        self.code = ""
        self.all: tuple[str, ...] = ()
        self.extra_message = ""
        pairs = (
            (self.error_code, self.error_message),
            (fields.text("ErrorCode"), fields.text("ErrorMessage")),
        )
        for code, message in pairs:
            specific, seen = unwrap_adf_error(code, message)
            self.code = self.code or specific
            self.all = tuple(dict.fromkeys((*self.all, *seen)))

    def exception(self, attrs: dict[str, Any]) -> None:
        """Application Insights: the exception type is the code, its message the message."""
        exc_type = self.fields.text("type", "ExceptionType")
        outer = self.fields.text("outerMessage", "OuterMessage")
        innermost = self.fields.text("innermostMessage", "InnermostMessage")
        _set(attrs, "exception_type", exc_type)
        _set(attrs, "outer_message", outer)
        _set(attrs, "innermost_message", innermost)
        if exc_type:
            self.code = exc_type
            self.all = tuple(dict.fromkeys((exc_type, *self.all)))
        # The innermost exception says what went wrong; the outer one often only which
        # function threw ("Exception while executing function: ...").
        self.extra_message = innermost or outer

    def message(self, attrs: dict[str, Any]) -> str:
        """The best message: Error.message, ErrorMessage, detailedMessage, message."""
        message = (
            self.extra_message
            or self.error_message
            or self.fields.text("ErrorMessage")
            or self.fields.text("detailedMessage")
            or self.fields.text("message")
        )
        failed = innermost_target_failure(message) if message else None
        if self.error_target and "activity" not in attrs and "function" not in attrs:
            attrs["activity"] = self.error_target
        if failed is not None and "activity" not in attrs:
            attrs["activity"] = failed.activity
        return message


# --- the legacy metric schema -------------------------------------------------------------


def _legacy_event(data: _LegacyData, doc: dict[str, Any], default: Source) -> ErrorEvent:
    """``AzureMonitorMetricAlert``: ``Activated`` fires, ``Deactivated`` resolves."""
    ctx = data.context
    condition = ctx.condition or _Condition()
    # The legacy schema reads like the common one once its parts are moved into place.
    common = _CommonData(
        essentials=_Essentials(
            alertId=None,
            alertRule=ctx.name,
            severity=ctx.severity,
            signalType="Metric",
            monitorCondition=None,
            monitoringService="Platform",
            alertTargetIDs=[ctx.resourceId] if ctx.resourceId else None,
            firedDateTime=ctx.timestamp,
            description=ctx.description,
        ),
        alertContext=_AlertContext(
            properties=data.properties, conditionType=ctx.conditionType, condition=condition
        ),
    )
    event = _Common(
        common,
        doc,
        default,
        properties_path="$.data.properties",
        condition_path="$.data.context.condition",
    ).event()
    raw_status = data.status or ""
    resolved = raw_status.lower() in ("deactivated", "resolved")
    attrs = dict(event.attributes)
    for key in ("signal_type", "monitoring_service", "target_ids", "fired_at"):
        attrs.pop(key, None)
    _set(attrs, "alert_id", ctx.id)
    _set(attrs, "legacy_status", data.status)
    _set(attrs, "timestamp", ctx.timestamp)
    _set(attrs, "portal_link", ctx.portalLink)
    if ctx.id:
        dedup_key = f"azmon-legacy:{ctx.id}:{raw_status}:{ctx.timestamp or ''}"
    else:
        parts = (ctx.name or "", raw_status, ctx.timestamp or "", ctx.resourceId or "")
        dedup_key = f"azmon-legacy:sha256:{_digest(parts, doc)}"
    status: Status = "resolved" if resolved else event.status
    return msgspec.structs.replace(
        event, status=status, dedup_key=dedup_key, attributes=attrs
    )


# --- small helpers --------------------------------------------------------------------------


def _put(into: dict[str, Any], dim: _Dimension, path: str) -> None:
    """Add one ``{name, value}`` pair; the first of a name wins."""
    if dim.name and dim.name not in into:
        into[dim.name] = _scalar_text(dim.value, f"{path}.value")


def _platform_table(query: str) -> bool:
    """Whether a query names a log table of a data platform: one pass over its words."""
    for word in _WORD.findall(query[:_QUERY_SCAN]):
        if word in _PLATFORM_TABLES or (
            word.startswith("ADF") and word.endswith(("Run", "Runs"))
        ) or (word.startswith("SynapseIntegration") and word.endswith("Runs")):
            return True
    return False


def _loose(value: object) -> str:
    """A field we only pass on: a scalar as text, anything else as nothing (never an error)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _included(flag: object) -> bool:
    """``IncludedSearchResults``: "True"/true; absent (the 2018-04-16 webhooks) counts as yes."""
    if flag is None:
        return True
    if isinstance(flag, bool):
        return flag
    return isinstance(flag, str) and flag.strip().lower() == "true"


def _first_row(results: _SearchResults) -> dict[str, Any]:
    """The first row of the first table that has one, by column name, as text.

    A ``dynamic`` column's object is kept as its JSON text: a row is read, never refused.
    """
    for table in results.tables or []:
        names = [c.name for c in table.columns or []]
        for row in (table.rows or [])[:1]:
            out: dict[str, Any] = {}
            for name, cell in zip(names, row, strict=False):
                if not name or name in out or cell is None:
                    continue
                if isinstance(cell, dict | list):
                    out[name] = msgspec.json.encode(cell).decode()
                else:
                    out[name] = _scalar_text(cell, "")
            return {k: v for k, v in out.items() if v != ""}
    return {}


def _dimension_texts(dimensions: list[_Dimension] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for dim in dimensions or []:
        if dim.name and dim.name not in out and dim.value is not None:
            out[dim.name] = _scalar_text(dim.value, "")
    return out


def _minutes(minutes: object, seconds: object) -> int | None:
    """A log search V1 interval (``SearchIntervalInMinutes`` or ``...InSeconds``) in minutes."""
    for value, per in ((minutes, 1), (seconds, 60)):
        text_value = _loose(value).strip()
        if text_value.isdigit() and len(text_value) < 9:
            return int(text_value) // per
    return None


def _set(attrs: dict[str, Any], key: str, value: object) -> None:
    """Keep an attribute only when it says something."""
    if value is not None and value != "" and value != [] and value != {}:
        attrs[key] = value


def _scalar_text(value: object, path: str) -> str:
    """A scalar as text; an object or array where a scalar belongs is a wrong type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise UnknownSchema(f"Expected `str`, got `{_kind(value)}`", path)


def _time(value: str | None) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (7-digit fractions allowed); else None.

    A time we cannot read is not worth refusing the alert for: it stays in the attributes.
    """
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _digest(parts: tuple[str, ...], doc: dict[str, Any]) -> str:
    """A stable hash of the identifying fields, or of the whole body if none is set."""
    basis = "\x1f".join(parts).encode() if any(parts) else msgspec.json.encode(doc, order="sorted")
    return hashlib.sha256(basis).hexdigest()[:32]


def _body_text(doc: dict[str, Any]) -> str:
    """The last resort of the message priority (docs/SENDERS.md): the body, redacted, short.

    The body is clipped before it is redacted: the redactor's cost grows faster than the
    text, and only the first ``_BODY_MESSAGE_LIMIT`` characters are kept anyway.
    """
    budget = [_BODY_MESSAGE_LIMIT]
    text = msgspec.json.encode(redact(_clip(doc, budget)), order="sorted").decode()
    if len(text) < _BODY_MESSAGE_LIMIT and budget[0] >= 0:
        return text
    return text[: _BODY_MESSAGE_LIMIT - 1] + "…"


def _clip(value: Any, budget: list[int]) -> Any:
    """A copy of ``value``, keys sorted, cut once about ``budget[0]`` characters are spent."""
    if isinstance(value, str):
        kept = value[: max(budget[0], 0)]
        budget[0] -= len(kept) + 3
        return kept
    budget[0] -= 8  # punctuation, numbers, literals: roughly
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            if budget[0] <= 0:
                break
            budget[0] -= len(key) + 4
            out[key] = _clip(value[key], budget)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            if budget[0] <= 0:
                break
            items.append(_clip(item, budget))
        return items
    return value


def _show(value: object) -> str:
    """A value for an error message, quoted and kept short."""
    text = repr(value) if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text if len(text) <= 80 else text[:79] + "…"


def _kind(value: object) -> str:
    """The type's name as msgspec's own messages say it, so that every refusal reads alike."""
    return kind_of(value, msgspec_names=True)
