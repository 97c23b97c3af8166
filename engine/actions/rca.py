"""``rca.analyze``: explain a failure's root cause and, if asked, post it to a channel.

The analysis itself is the engine's (engine/analysis, the same that answers for firing events
no rule matches): the runner hands it to the action bound to the incident it runs for
(``ActionContext.analyst``: it reads the incident's history and audits the answer). Posting
goes through ``notify.webhook``'s code, so the channel's format and its escaping apply.
"""

from __future__ import annotations

from typing import Any

from engine.actions import notify
from engine.actions.base import Params
from engine.actions.context import ActionContext, ActionResult
from engine.errors import PermanentActionError
from engine.events import ErrorEvent
from engine.text import markup

__all__ = ["RcaParams", "analyze", "describe"]


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


def analyze(params: RcaParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """Ask the incident's analysis (``ctx.analyst``) and post it to ``channel`` if set.

    Raises PermanentActionError without an incident to analyse for (``ctx.analyst`` unset)
    or for an unknown channel; a post's 5xx, 429 or timeout raises RetryableActionError, so
    the action retries.
    """
    if ctx.analyst is None:
        raise PermanentActionError("rca.analyze: no incident to analyse for: the action runs "
                                   "only as a step of a remediation")
    analysis = ctx.analyst.analyse(event, refresh=params.refresh, offline=params.offline,
                                   channel=params.channel)
    detail = "root-cause analysis recorded"
    if params.channel:
        _post(ctx, event, analysis, params.channel)
        detail += f" and posted to channel {params.channel}"
    return ActionResult(outcome="done", detail=detail, data={"rca": analysis})


def _post(ctx: ActionContext, event: ErrorEvent, analysis: dict[str, Any],
          channel: str) -> None:
    """The analysis as a message to ``channel``: its words and the event's are not
    Remediator's, so they are marked for the channel to escape."""
    assert ctx.analyst is not None
    where = f"rca.analyze[channel={channel}]"
    target = notify.channel_target(ctx, channel, where)
    summary = str(analysis.get("summary") or "")
    cause = str(analysis.get("probable_cause") or "")
    steps = [str(s) for s in analysis.get("next_steps") or []]
    mark = markup.untrusted
    text = "\n".join([mark(summary)] + ([f"Probable cause: {mark(cause)}"] if cause else [])
                     + [f"- {mark(s)}" for s in steps])
    incident = ctx.analyst.incident
    message = notify.Message(
        title=f"RCA: {mark(incident.resource or incident.target)}: "
              f"{mark(event.error_code or 'failure')}",
        text=text if markup.strip(text) else "no analysis", rca=summary,
        facts=notify.event_facts(event),
        fields={"incident": {"id": incident.id, "state": incident.state},
                "analysis": {k: analysis.get(k) for k in
                             ("category", "confidence", "retryable", "engine")
                             if k in analysis}},
        event=notify.event_summary(event))
    notify.send(ctx, target, message, where, key=f"rca:{incident.id}:{channel}")
