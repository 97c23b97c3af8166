"""Reading an event's targets: the attributes the receivers set, with fallbacks."""

from __future__ import annotations

from typing import Any

from engine.events import ErrorEvent
from engine.text.patterns import compile as compile_pattern

__all__ = ["arm_parts", "attr", "drop_empty", "short_id"]

_ARM = compile_pattern(
    r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/[^/]+/[^/]+/"
    r"(?P<name>[^/]+)",
    ignore_case=True,
)


def attr(event: ErrorEvent, *keys: str) -> str:
    """The first non-empty attribute of ``keys``, as text (ids may arrive as numbers)."""
    for key in keys:
        value = event.attributes.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


def arm_parts(resource_id: str) -> dict[str, str]:
    """Subscription, resource group and name of an ARM resource id (empty if it is not one)."""
    m = _ARM.search(resource_id or "")
    if m is None:
        return {}
    return {"subscription": m["sub"], "resource_group": m["rg"], "name": m["name"]}


def drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without empty entries, so that a missing target is reported as missing."""
    return {k: v for k, v in values.items() if v not in (None, "")}


def short_id(run_id: str) -> str:
    """The first 8 characters of a long id, for sentences."""
    return run_id[:8] + "..." if len(run_id) > 12 else run_id
