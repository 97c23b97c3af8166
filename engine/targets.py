"""What an event's remediation acts on (its target): the unit of per-target order.

The worker runs one event per target at a time, in claim order, and an incident is one
failure of one target. The inbox keeps each event's target as its ``lane`` from intake on
(engine/store/inbox.py), so that on PostgreSQL the database itself holds every replica to one
event per lane in processing.
"""

from __future__ import annotations

from typing import Any

from engine.events import ErrorEvent

__all__ = ["target_of"]


def target_of(event: ErrorEvent) -> str:
    """The thing a remediation acts on: one remediation at a time per target."""
    attrs = event.attributes
    if event.source == "databricks":
        if event.kind in ("cluster", "library"):
            return f"databricks:cluster:{attrs.get('cluster_id') or event.resource_id}"
        return f"databricks:job:{attrs.get('job_id') or event.resource_id}"
    if event.source in ("adf", "synapse"):
        owner = attrs.get("factory") or attrs.get("workspace") or event.resource_id
        return f"{event.source}:pipeline:{owner}/{event.resource}".lower()
    target = f"{event.source}:{event.kind}:{event.resource_id or event.resource}"
    if event.source == "generic":
        target += f"#{_which_alert(attrs)}"
    return target.lower()


def _which_alert(attrs: dict[str, Any]) -> str:
    """Which alert a generic event is, so that unrelated alerts about one resource (two
    Service Health notices on a subscription) never share a target and its cooldown, while
    repeats of one alert do: the notice's tracking id, else the alert rule, else the alert."""
    props = attrs.get("custom_properties")
    notice = props.get("trackingId") if isinstance(props, dict) else None
    return str(notice or attrs.get("alert_rule") or attrs.get("alert_id") or "")
