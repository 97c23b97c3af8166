"""Azure Monitor payloads without the common alert schema, moved into the common envelope.

Action groups that do not use the common alert schema still post these (docs/SENDERS.md):

- the activity log alert webhook (``schemaId: Microsoft.Insights/activityLogs``): the event
  in ``data.context.activityLog``, custom properties in ``data.properties``;
- the log search alert webhooks up to API version 2018-04-16: Log Analytics sends the alert
  at the top level without a ``schemaId``, Application Insights the same fields in ``data``
  under ``schemaId: Microsoft.Insights/LogAlert``; a rule's custom JSON payload is the
  author's shape (read through ``alertname``/``IncludeSearchResults``/``SearchResults`` or a
  Slack-style ``text``);
- the budget notification (``schemaId: AIP Budget Notification``);
- the alert resource that smart detection posts (``properties.essentials``/``.context``,
  ``type: Microsoft.AlertsManagement/alerts``).

Each function returns a :class:`Rewrite`: the body as the common schema would have carried
it, so that one reader (:mod:`receivers.azure_monitor`) normalizes every shape, and the
mapping of its paths back to the sender's, so that an error names the field as sent. Values
are moved, never interpreted; a field of the wrong type is left for that reader to refuse
where it uses it, or ignored where it does not.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from engine.errors import UnknownSchema
from receivers._json import kind_of

__all__ = [
    "ACTIVITY_LOG_SCHEMA",
    "BUDGET_SCHEMA",
    "LOG_ALERT_SCHEMA",
    "Rewrite",
    "activity_log",
    "alert_resource",
    "budget",
    "custom_payload",
    "is_alert_resource",
    "is_custom_payload",
    "is_log_alert",
    "log_alert",
    "remap",
]

ACTIVITY_LOG_SCHEMA: Final = "Microsoft.Insights/activityLogs"
LOG_ALERT_SCHEMA: Final = "Microsoft.Insights/LogAlert"
BUDGET_SCHEMA: Final = "AIP Budget Notification"
COMMON_SCHEMA: Final = "azureMonitorCommonAlertSchema"

# The activity log's eventSource -> the common schema's monitoringService for it.
_SERVICES: Final = {
    "servicehealth": "ServiceHealth",
    "resourcehealth": "Resource Health",
}


class Rewrite(NamedTuple):
    """A body in the common envelope, and (common path prefix, sender's path prefix) pairs."""

    doc: dict[str, Any]
    paths: tuple[tuple[str, str], ...]


def remap(exc: UnknownSchema, paths: tuple[tuple[str, str], ...]) -> UnknownSchema:
    """``exc`` with its path rewritten from the common envelope's to the sender's."""
    for common, sent in paths:
        if exc.path == common or exc.path.startswith((common + ".", common + "[")):
            return UnknownSchema(exc.message, sent + exc.path[len(common):])
    return exc


def is_log_alert(doc: dict[str, Any]) -> bool:
    """A log search alert webhook of the 2018-04-16 API (Log Analytics: no ``schemaId``)."""
    return "AlertRuleName" in doc and "SearchQuery" in doc


def is_alert_resource(doc: dict[str, Any]) -> bool:
    """An alert resource as smart detection posts it: ``properties.essentials``."""
    properties = doc.get("properties")
    return isinstance(properties, dict) and isinstance(properties.get("essentials"), dict)


def is_custom_payload(doc: dict[str, Any]) -> bool:
    """A log search alert's custom JSON payload we can read: results, or a ``text``."""
    return (
        "IncludeSearchResults" in doc or "SearchResults" in doc
        or (isinstance(doc.get("text"), str) and bool(doc["text"].strip()))
    )


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnknownSchema(f"Expected `object`, got `{kind_of(value, msgspec_names=True)}`", path)
    return value


def _text(value: Any) -> str:
    """A value we only pass on as text: a string as it is, anything else not at all."""
    return value if isinstance(value, str) else ""


def _envelope(
    essentials: dict[str, Any], context: Any, custom: Any = None
) -> dict[str, Any]:
    return {
        "schemaId": COMMON_SCHEMA,
        "data": {"essentials": essentials, "alertContext": context, "customProperties": custom},
    }


def activity_log(doc: dict[str, Any]) -> Rewrite:
    """``Microsoft.Insights/activityLogs``: the event becomes the alert context.

    It names no rule and no alert id: ``eventTimestamp`` is the fired time, the event's
    ``resourceId`` (else its subscription) the target, its ``description`` the description.
    """
    data = _object(doc.get("data"), "$.data")
    context = _object(data.get("context"), "$.data.context")
    event = _object(context.get("activityLog"), "$.data.context.activityLog")
    source = _text(event.get("eventSource"))
    service = _SERVICES.get(
        source.lower(), f"Activity Log - {source}" if source else "Activity Log"
    )
    resource_id = _text(event.get("resourceId"))
    subscription = _text(event.get("subscriptionId"))
    target = resource_id or (f"/subscriptions/{subscription}" if subscription else "")
    essentials = {
        "signalType": "Activity Log",
        "monitorCondition": "Fired",
        "monitoringService": service,
        "alertTargetIDs": [target] if target else None,
        "firedDateTime": _text(event.get("eventTimestamp")) or None,
        "description": _text(event.get("description")) or None,
    }
    custom = data.get("properties") if isinstance(data.get("properties"), dict) else None
    return Rewrite(
        _envelope(essentials, event, custom),
        (("$.data.alertContext", "$.data.context.activityLog"),
         ("$.data.customProperties", "$.data.properties")),
    )


def log_alert(doc: dict[str, Any], path: str) -> Rewrite:
    """A log search alert of the 2018-04-16 API, whose fields are at ``path`` (``$`` or
    ``$.data``): the V1 context of the common schema under the names it had then."""
    service = "Application Insights" if doc.get("ApplicationId") else "Log Analytics"
    resource_id = _text(doc.get("ResourceId"))
    items = doc.get("AffectedConfigurationItems")
    essentials = {
        "alertRule": _text(doc.get("AlertRuleName")) or None,
        "severity": doc.get("Severity") if isinstance(doc.get("Severity"), str | int) else None,
        "signalType": "Log",
        "monitorCondition": "Fired",
        "monitoringService": service,
        "alertTargetIDs": [resource_id] if resource_id else None,
        "configurationItems": [i for i in items if isinstance(i, str)]
        if isinstance(items, list) else None,
        # The end of the evaluated interval is when the rule fired.
        "firedDateTime": _text(doc.get("SearchIntervalEndtimeUtc")) or None,
        "description": _text(doc.get("Description")) or None,
    }
    return Rewrite(_envelope(essentials, doc), (("$.data.alertContext", path),))


def custom_payload(doc: dict[str, Any]) -> Rewrite:
    """A log search alert's custom JSON payload: its own shape, read where we can."""
    rule = _text(doc.get("alertname")) or _text(doc.get("AlertRuleName"))
    essentials = {
        "alertRule": rule or None,
        "signalType": "Log",
        "monitorCondition": "Fired",
        "monitoringService": "Log Analytics",
    }
    return Rewrite(_envelope(essentials, doc), (("$.data.alertContext", "$"),))


def budget(doc: dict[str, Any]) -> Rewrite:
    """``AIP Budget Notification``: the budget's figures as the common ``CostAlerts`` has them.

    It carries no time and no id of its own: the target is the subscription (and resource
    group) the budget watches.
    """
    data = _object(doc.get("data"), "$.data")
    subscription = _text(data.get("SubscriptionId"))
    group = _text(data.get("ResourceGroup"))
    target = ""
    if subscription:
        target = f"/subscriptions/{subscription}" + (f"/resourceGroups/{group}" if group else "")
    essentials = {
        "monitorCondition": "Fired",
        "monitoringService": "CostAlerts",
        "alertTargetIDs": [target] if target else None,
        "configurationItems": ["budgets"],
    }
    context = {"AlertCategory": "budgets", "AlertData": data}
    return Rewrite(_envelope(essentials, context), (("$.data.alertContext.AlertData", "$.data"),))


def alert_resource(doc: dict[str, Any]) -> Rewrite:
    """An alert resource (``Microsoft.AlertsManagement/alerts``), as smart detection posts it.

    Its essentials name the rule by its ARM id (the name is the last part), the service as
    ``monitorService`` and the target as ``targetResource``.
    """
    properties = _object(doc.get("properties"), "$.properties")
    ess = _object(properties.get("essentials"), "$.properties.essentials")
    rule = _text(ess.get("alertRule"))
    target = _text(ess.get("targetResource"))
    essentials = {
        "alertId": _text(doc.get("id")) or None,
        "alertRule": rule.rstrip("/").rsplit("/", 1)[-1] or None,
        "severity": ess.get("severity") if isinstance(ess.get("severity"), str | int) else None,
        "signalType": _text(ess.get("signalType")) or None,
        "monitorCondition": _text(ess.get("monitorCondition")) or None,
        "monitoringService": _text(ess.get("monitorService")) or None,
        "alertTargetIDs": [target] if target else None,
        "configurationItems": [_text(ess.get("targetResourceName"))]
        if _text(ess.get("targetResourceName")) else None,
        "firedDateTime": _text(ess.get("startDateTime")) or None,
        "resolvedDateTime": _text(ess.get("monitorConditionResolvedDateTime")) or None,
        "description": _text(ess.get("description")) or None,
    }
    return Rewrite(
        _envelope(essentials, properties.get("context")),
        (("$.data.alertContext", "$.properties.context"),),
    )
