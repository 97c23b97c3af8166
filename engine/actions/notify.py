"""``notify.webhook``: post a message to a chat or paging webhook, shaped for its channel.

The URL comes from a named channel in the settings (``[clouds.channels.<name>]``, whose URL
is a secret: chat webhook URLs carry their credential) or, for tests and one-offs, from
``url``. The channel's ``format`` gives the shape (:func:`render`): ``slack`` (incoming
webhook with blocks), ``teams`` (a Teams workflow webhook with an Adaptive Card attachment)
or ``json`` (``{"text", "title", "link", "rca", **fields, "event"}``). Event-supplied text is
escaped for the channel's markup (:mod:`engine.text.markup`: ``title`` and ``text`` carry marks
around it; facts, ``rca`` and the event are event-supplied whole), plain text is cleaned of
control characters, every part is bounded, and bodies are redacted before they leave; errors
never show the URL. The incident outbox (engine/runtime/notifications.py) sends through :func:`send`
too.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import msgspec

from engine.actions.base import Params, params_key
from engine.actions.context import ActionContext, ActionResult
from engine.cloud.errors import cloud_call
from engine.config import Secret, WebhookTarget
from engine.errors import PermanentActionError
from engine.events import ErrorEvent
from engine.hosts import check_url
from engine.text import markup
from engine.text.redact import redact

__all__ = ["Message", "NotifyParams", "channel_target", "describe", "event_facts",
           "event_summary", "post_json", "render", "send", "webhook"]

Format = Literal["json", "slack", "teams"]


class NotifyParams(Params, kw_only=True):
    """Post ``text`` (and ``fields``) to ``channel`` (configured) or ``url``; one of the two.

    ``title`` heads the message (default: source, resource and error code); ``link`` adds a
    button (e.g. ``{{ incident.link }}``-style URLs rendered by the playbook): an http(s) URL
    with a host, whose scheme and host the playbook writes out (the loader checks that).
    """

    text: str
    channel: str = ""
    url: str = ""
    title: str = ""
    link: str = ""
    fields: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.channel) == bool(self.url):
            raise ValueError("name exactly one of channel (configured) and url")
        if not markup.strip(self.text).strip():
            raise ValueError("text must not be empty")
        if self.link and not _web_link(self.link):
            raise ValueError(f"link must be an http or https URL with a host, got "
                             f"{self.link[:100]!r}")


def _web_link(link: str) -> bool:
    """An http(s) URL with a host, as httpx reads it (a person clicks it: no ``javascript:``,
    ``data:`` or host-less link)."""
    try:
        parsed = httpx.URL(link)
    except httpx.InvalidURL:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """What a notification says, before it is shaped for a channel.

    ``title`` and ``text`` are the author's markup with event-supplied values marked
    (:func:`engine.text.markup.untrusted`); ``rca``, the values of ``facts``, ``fields`` and
    ``event`` are event-supplied whole; ``link`` is the button's URL.
    """

    title: str
    text: str
    link: str = ""
    rca: str = ""
    facts: dict[str, str] = msgspec.field(default_factory=dict)
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    event: dict[str, Any] = msgspec.field(default_factory=dict)


def event_summary(event: ErrorEvent) -> dict[str, Any]:
    """What a receiver of a notification needs to know about the event (no raw payload)."""
    return {
        "id": event.id, "source": event.source, "kind": event.kind, "status": event.status,
        "resource": event.resource, "run_id": event.run_id, "error_code": event.error_code,
        "message": event.message[:1000], "severity": event.severity,
        "fingerprint": event.fingerprint,
    }


def event_facts(event: ErrorEvent) -> dict[str, str]:
    """The short facts a chat card shows, in order; empty ones left out."""
    facts = {"Source": event.source, "Resource": event.resource, "Run": event.run_id,
             "Error code": event.error_code,
             "Severity": "" if event.severity is None else f"Sev{event.severity}"}
    return {k: v for k, v in facts.items() if v}


def _slack(m: Message) -> dict[str, Any]:
    title = markup.slack(m.title, limit=150)
    text = markup.slack(m.text, limit=3000)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
    ]
    if m.facts:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn",
             "text": f"*{k}*\n" + markup.slack(markup.untrusted(v), limit=1990 - len(k))}
            for k, v in list(m.facts.items())[:10]
        ]})
    if m.rca:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn",
             "text": "*Root cause:* " + markup.slack(markup.untrusted(m.rca), limit=2980)}]})
    if m.link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open incident"},
             "url": m.link}]})
    return {"text": f"{title}: {text}"[:3000], "blocks": blocks}


def _teams(m: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": markup.teams(m.title, limit=250), "weight": "Bolder",
         "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": markup.teams(m.text, limit=4000), "wrap": True},
    ]
    if m.facts:
        body.append({"type": "FactSet", "facts": [
            {"title": k, "value": markup.teams(markup.untrusted(v), limit=500)}
            for k, v in list(m.facts.items())[:10]]})
    if m.rca:
        body.append({"type": "TextBlock",
                     "text": "Root cause: " + markup.teams(markup.untrusted(m.rca), limit=2000),
                     "wrap": True, "isSubtle": True})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard", "version": "1.4", "body": body}
    if m.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open incident", "url": m.link}]
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": card}]}


def _generic(m: Message) -> dict[str, Any]:
    parts = (("title", markup.plain(m.title, limit=500, newlines=False)), ("link", m.link),
             ("rca", markup.plain(m.rca, limit=4000)))
    return {"text": markup.plain(m.text, limit=8000), **{k: v for k, v in parts if v},
            **markup.plain_data(m.fields, limit=4000),
            "event": markup.plain_data(m.event, limit=4000)}


def render(fmt: Format, message: Message) -> dict[str, Any]:
    """The JSON body of ``message`` for a channel of format ``fmt``, redacted."""
    shape = {"slack": _slack, "teams": _teams, "json": _generic}[fmt]
    return redact(shape(message))


def describe(params: NotifyParams, event: ErrorEvent) -> str:
    """``would post to channel C: <text>`` (the text cut at 120 characters)."""
    where = f"channel {params.channel}" if params.channel else "a webhook URL"
    text = markup.strip(params.text)
    text = text if len(text) <= 120 else text[:119] + "…"
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


def channel_target(ctx: ActionContext, name: str, where: str) -> WebhookTarget:
    """The configured channel ``name``; PermanentActionError if there is none."""
    target = ctx.clients.clouds.channels.get(name)
    if target is None:
        raise PermanentActionError(f"{where}: no such channel in [clouds.channels]")
    return target


def send(ctx: ActionContext, target: WebhookTarget, message: Message, where: str,
         key: str) -> httpx.Response:
    """Shape ``message`` for ``target``'s format and post it (5xx, 429, timeouts retryable)."""
    return post_json(ctx, target, render(target.format, message), where, key)


def webhook(params: NotifyParams, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """Send the message; 5xx, 429 and timeouts are retryable, other 4xx permanent."""
    if params.channel:
        dest = f"channel={params.channel}"
        target = channel_target(ctx, params.channel, f"notify.webhook[{dest}]")
    else:
        check_url(ctx.clients.clouds, params.url, "notify.webhook[url]")
        target = WebhookTarget(url=Secret(params.url))
        dest = "url"
    title = params.title or (f"{event.source} {markup.untrusted(event.resource)}: "
                             f"{markup.untrusted(event.error_code or 'failure')}")
    message = Message(title=title, text=params.text, link=params.link,
                      facts=event_facts(event), fields=params.fields,
                      event=event_summary(event))
    response = send(ctx, target, message, f"notify.webhook[{dest}]",
                    params_key("notify.webhook", params, event.dedup_key))
    return ActionResult(outcome="done", detail=f"posted to {dest} ({response.status_code})")
