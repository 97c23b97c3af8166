"""``ticket.create``: open a ticket through the configured ticket webhook (``[clouds.ticket]``).

The webhook gets ``{title, body, labels, severity, link, **fields, event}`` as JSON (every
value templated by the playbook; ``fields`` carries whatever the ticket system needs, such as
a project key or an assignee group). It is plain text: control and invisible format
characters are removed (the body keeps its line breaks), every value is bounded, and the body
is redacted before it leaves; a ticket system that renders markup must escape it itself. The
request carries an ``Idempotency-Key`` header (the action's idempotency key), so that a resend
after a crash can be recognised by the ticket system; the ticket id is read from the answer's
``id``, ``key`` or ``number`` when there is one.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.actions.base import Params, params_key
from engine.actions.context import ActionContext, ActionResult
from engine.actions.notify import event_summary, post_json
from engine.errors import PermanentActionError
from engine.events import ErrorEvent
from engine.text import markup
from engine.text.redact import redact

__all__ = ["TicketParams", "create", "describe"]


class TicketParams(Params, kw_only=True):
    """A ticket: ``title``, ``body``, ``labels``, ``severity`` 0 (critical) .. 4, a ``link``
    (the incident page) and any other ``fields`` the ticket system takes."""

    title: str
    body: str = ""
    labels: tuple[str, ...] = ()
    severity: int | None = None
    link: str = ""
    fields: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError("title must not be empty")
        if self.severity is not None and not 0 <= self.severity <= 4:
            raise ValueError("severity must be 0 (critical) .. 4")


def describe(params: TicketParams, event: ErrorEvent) -> str:
    """``would open a ticket "<title>" [labels] (severity N)``."""
    labels = f" [{', '.join(params.labels)}]" if params.labels else ""
    sev = f" (severity {params.severity})" if params.severity is not None else ""
    return f'would open a ticket "{params.title}"{labels}{sev}'


def create(params: TicketParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """POST the ticket; 5xx, 429 and timeouts are retryable, other 4xx permanent."""
    target = ctx.clients.clouds.ticket
    if target is None:
        raise PermanentActionError("ticket.create: no [clouds.ticket] webhook is configured")
    body = {"title": markup.plain(params.title, limit=250, newlines=False),
            "body": markup.plain(params.body, limit=32_000),
            "labels": [markup.plain(label, limit=100, newlines=False) for label in params.labels],
            "severity": event.severity if params.severity is None else params.severity,
            **({"link": params.link} if params.link else {}),
            **markup.plain_data(params.fields, limit=4000),
            "event": markup.plain_data(event_summary(event), limit=4000)}
    response = post_json(ctx, target, redact(body), "ticket.create",
                         params_key("ticket.create", params, event.dedup_key))
    ticket = ""
    try:
        answer = response.json()
    except ValueError:  # an empty or non-JSON answer still means created
        answer = None
    if isinstance(answer, dict):
        ticket = str(next((answer[k] for k in ("id", "key", "number") if answer.get(k)), ""))
    detail = f"ticket {ticket} opened" if ticket else f"ticket opened ({response.status_code})"
    return ActionResult(outcome="done", detail=detail,
                        ref={"ticket": ticket} if ticket else {})
