"""``noop`` (record that a rule matched, do nothing) and ``ignore`` (close as expected)."""

from __future__ import annotations

from engine.actions.base import Params
from engine.actions.context import ActionContext, ActionResult
from engine.events import ErrorEvent

__all__ = ["IgnoreParams", "NoopParams", "describe_ignore", "describe_noop", "ignore", "noop"]


class NoopParams(Params, kw_only=True):
    """An optional ``note`` for the audit log."""

    note: str = ""


class IgnoreParams(Params, kw_only=True):
    """Why this failure is expected (kept in the audit log)."""

    reason: str = ""


def describe_noop(params: NoopParams, event: ErrorEvent) -> str:
    """``would do nothing (note)``."""
    return f"would do nothing ({params.note})" if params.note else "would do nothing"


def noop(params: NoopParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """Does nothing; the worker records it like any other action."""
    note = f": {params.note}" if params.note else ""
    return ActionResult(outcome="done", detail=f"nothing done{note}")


def describe_ignore(params: IgnoreParams, event: ErrorEvent) -> str:
    """``would close the incident as expected (reason)``."""
    why = f" ({params.reason})" if params.reason else ""
    return f"would close the incident as expected{why}"


def ignore(params: IgnoreParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """Asks the worker to close the incident as expected (``data.close_incident``)."""
    why = f": {params.reason}" if params.reason else ""
    return ActionResult(outcome="done", detail=f"closed as expected{why}",
                        data={"close_incident": True, "resolution": "expected"})
