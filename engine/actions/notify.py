"""``notify.webhook``: POST a JSON message to a chat or paging webhook.

The URL comes from a named channel in the settings (``[clouds.channels.<name>]``, whose URL
is a secret: chat webhook URLs carry their credential) or, for tests and one-offs, from
``url``. Errors never show the URL. The next issue makes the message rich; today it is
``{"text": ..., "event": {...}, **fields}``.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from engine.actions.base import Params, params_key
from engine.actions.context import ActionContext, ActionResult
from engine.actions.errors import cloud_call
from engine.config import Secret, WebhookTarget
from engine.errors import PermanentActionError
from engine.events import ErrorEvent

__all__ = ["NotifyParams", "describe", "event_summary", "post_json", "webhook"]


class NotifyParams(Params, kw_only=True):
    """Post ``text`` (and ``fields``) to ``channel`` (configured) or ``url``; one of the two."""

    text: str
    channel: str = ""
    url: str = ""
    fields: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.channel) == bool(self.url):
            raise ValueError("name exactly one of channel (configured) and url")
        if not self.text.strip():
            raise ValueError("text must not be empty")


def event_summary(event: ErrorEvent) -> dict[str, Any]:
    """What a receiver of a notification needs to know about the event (no raw payload)."""
    return {
        "id": event.id, "source": event.source, "kind": event.kind, "status": event.status,
        "resource": event.resource, "run_id": event.run_id, "error_code": event.error_code,
        "message": event.message[:1000], "severity": event.severity,
        "fingerprint": event.fingerprint,
    }


def describe(params: NotifyParams, event: ErrorEvent) -> str:
    """``would post to channel C: <text>`` (the text cut at 120 characters)."""
    where = f"channel {params.channel}" if params.channel else "a webhook URL"
    text = params.text if len(params.text) <= 120 else params.text[:119] + "…"
    return f"would post to {where}: {text}"


def post_json(ctx: ActionContext, target: WebhookTarget, body: dict[str, Any], where: str,
              key: str) -> httpx.Response:
    """POST ``body`` to ``target`` with an ``Idempotency-Key``; non-2xx raises (mapped)."""
    headers = {name: value.reveal() for name, value in target.headers.items()}
    headers["Idempotency-Key"] = key
    with cloud_call(where):
        response = ctx.clients.http(target).post(target.url.reveal(), json=body, headers=headers)
        response.raise_for_status()
    return response


def webhook(params: NotifyParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """Send the message; 5xx, 429 and timeouts are retryable, other 4xx permanent."""
    if params.channel:
        target = ctx.clients.clouds.channels.get(params.channel)
        if target is None:
            raise PermanentActionError(
                f"notify.webhook[channel={params.channel}]: no such channel in [clouds.channels]"
            )
        dest = f"channel={params.channel}"
    else:
        target = WebhookTarget(url=Secret(params.url))
        dest = "url"
    where = f"notify.webhook[{dest}]"
    body = {"text": params.text, **params.fields, "event": event_summary(event)}
    response = post_json(ctx, target, body, where,
                         params_key("notify.webhook", params, event.dedup_key))
    return ActionResult(outcome="done", detail=f"posted to {dest} ({response.status_code})")
