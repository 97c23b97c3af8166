"""``rca.analyze``: the declaration of the root-cause analysis action.

Its ``run`` is ``None`` on purpose: the worker routes this action to the RCA engine (redacted
prompt, cache, LLM or offline catalog), which another part of the engine implements. Only the
parameters and the description live here, so that playbooks can be validated against them.
"""

from __future__ import annotations

from engine.actions.base import Params
from engine.events import ErrorEvent

__all__ = ["RcaParams", "describe"]


class RcaParams(Params, kw_only=True):
    """Explain the failure: post the analysis to ``channel`` (if any); ``refresh`` skips the
    cache; ``offline`` uses the error catalog only, never the LLM."""

    channel: str = ""
    refresh: bool = False
    offline: bool = False


def describe(params: RcaParams, event: ErrorEvent) -> str:
    """``would analyse the root cause of <code> on <resource>``."""
    code = event.error_code or "the failure"
    to = f" and post it to channel {params.channel}" if params.channel else ""
    how = " with the offline catalog" if params.offline else ""
    return f"would analyse the root cause of {code} on {event.resource or event.source}{how}{to}"
