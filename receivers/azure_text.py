"""One-line messages for Azure Monitor alerts that carry no error text of their own.

A metric alert without a description, a Service Health notice, a budget: the payload holds
the facts but no sentence. These functions say them in one line an on-call person reads
(``PipelineFailedRuns = 1 > 0 (Name=pl_copy_sales, FailureType=UserError), 5 min window``)
instead of the alert's JSON. Pure functions of the values they are given; "" when there is
nothing to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from engine.text import patterns

__all__ = [
    "activity_line",
    "budget_line",
    "criterion_line",
    "health_line",
    "number",
    "results_line",
    "smart_detection_line",
    "window",
]

_OPERATORS: Final = {
    "greaterthan": ">", "greater than": ">",
    "greaterthanorequal": ">=", "greater than or equal": ">=",
    "lessthan": "<", "less than": "<", "lowerthan": "<",
    "lessthanorequal": "<=", "less than or equal": "<=", "lowerthanorequal": "<=",
    "equals": "=", "equal": "=", "notequals": "!=",
    "greaterorlessthan": "<>",
}
_DURATION: Final = patterns.compile(
    r"^P(?:(?P<d>\d{1,4})D)?(?:T(?:(?P<h>\d{1,4})H)?(?:(?P<m>\d{1,5})M)?(?:(?P<s>\d{1,6})S)?)?$",
    ignore_case=True,
)


def number(value: Any) -> str:
    """A metric value or threshold as people write it: ``1`` for 1.0, ``7.727`` as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _pairs(dimensions: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{name}={value}" for name, value in dimensions.items() if value != "")
    return f" ({shown})" if shown else ""


def _minutes(total: int) -> str:
    if total and total % 1440 == 0:
        days = total // 1440
        return f"{days} day" if days == 1 else f"{days} days"
    if total and total % 60 == 0:
        return f"{total // 60} h"
    return f"{total} min"


def window(duration: str | None = None, *, minutes: int | None = None) -> str:
    """``, 5 min window`` for ``PT5M`` (or ``minutes=5``); "" for what is not a duration."""
    if minutes is not None:
        return f", {_minutes(minutes)} window" if minutes > 0 else ""
    match = _DURATION.match((duration or "").strip())
    if match is None or not any(match.groupdict().values()):
        return ""
    parts = {key: int(value or 0) for key, value in match.groupdict().items()}
    total_seconds = ((parts["d"] * 24 + parts["h"]) * 60 + parts["m"]) * 60 + parts["s"]
    if total_seconds % 60:
        return f", {total_seconds} s window"
    return f", {_minutes(total_seconds // 60)} window" if total_seconds else ""


def criterion_line(
    *,
    metric: str,
    aggregation: str,
    column: str,
    value: Any,
    operator: str,
    threshold: Any,
    dimensions: Mapping[str, Any],
) -> str:
    """``<metric> = <value> <op> <threshold> (<dimensions>)``: what crossed which line.

    A log search criterion has no metric name: its aggregation (of its measure column) is.
    """
    name = metric or (f"{aggregation}({column})" if aggregation and column else aggregation)
    if not name and value is None:
        return ""
    text = name or "value"
    if value is not None:
        text += f" = {number(value)}"
    if threshold not in (None, ""):
        op = _OPERATORS.get((operator or "").strip().lower(), operator or "vs")
        text += f" {op} {number(threshold)}"
    return text + _pairs(dimensions)


def results_line(count: Any, dimensions: Mapping[str, Any], span: str) -> str:
    """A log search alert V1: ``2 results (Computer=web-01), 15 min window``."""
    if count in (None, ""):
        return ""
    noun = "result" if number(count) == "1" else "results"
    return f"{number(count)} {noun}{_pairs(dimensions)}{span}"


def health_line(kind: str, properties: Mapping[str, Any]) -> str:
    """A Service Health or Resource Health notice in its own words.

    ``Service Health Incident: Virtual Machines - Australia East (Active)``;
    ``Resource Health: Rebooted by user (Unavailable, was Available)``.
    """

    def text(key: str) -> str:
        value = properties.get(key)
        return value.strip() if isinstance(value, str) else ""

    title = text("title") or text("defaultLanguageTitle")
    if kind == "ServiceHealth":
        head = f"Service Health {text('incidentType')}".rstrip()
        stage = text("stage")
        return f"{head}: {title}" + (f" ({stage})" if stage else "") if title else ""
    current, previous = text("currentHealthStatus"), text("previousHealthStatus")
    status = ", ".join(filter(None, (current, f"was {previous}" if previous else "")))
    return f"Resource Health: {title}" + (f" ({status})" if status else "") if title else ""


def smart_detection_line(summary: str, detected: str, normal: str) -> str:
    """``<what was detected>: <detected value>, normal <normal value>``."""
    if not summary:
        return ""
    figures = ", ".join(filter(None, (detected, f"normal {normal}" if normal else "")))
    return f"{summary}: {figures}" if figures else summary


def budget_line(data: Mapping[str, Any]) -> str:
    """``Budget <name>: spent <amount> of <budget> <unit>`` (either notification's names)."""

    def text(*keys: str) -> str:
        for key in keys:
            value = data.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
                return str(value)
        return ""

    name = text("BudgetName")
    if not name:
        return ""
    spent, limit = text("SpentAmount", "SpendingAmount"), text("BudgetThreshold", "Budget")
    line = f"Budget {name}"
    if spent:
        line += f": spent {spent}" + (f" of {limit}" if limit else "")
    unit = text("Unit")
    return f"{line} {unit}" if spent and unit else line


def activity_line(operation: str, status: str, caller: str) -> str:
    """An activity log event: ``<operation>: <status> by <caller>``."""
    if not operation:
        return ""
    return operation + (f": {status}" if status else "") + (f" by {caller}" if caller else "")
