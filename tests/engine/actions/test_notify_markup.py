"""notify.webhook and ticket.create bound what they post, however long the event's text."""

from __future__ import annotations

from typing import Any

from engine.actions.context import ActionContext
from engine.actions.registry import action_table
from tests.engine.actions.conftest import adf_event, params_for


def test_every_part_is_bounded(sink: Any, hook_ctx: ActionContext) -> None:
    """A 100,000-character message in the text: each channel gets at most its limit."""
    specs = action_table()
    notify, ticket = specs["notify.webhook"], specs["ticket.create"]
    event = adf_event(message="<!here> " * 12_500, resource="x" * 10_000)
    notify.run(params_for(notify, event, channel="data-oncall", text=event.message), event,
               hook_ctx)
    ticket.run(params_for(ticket, event, title=event.resource, body=event.message * 2),
               event, hook_ctx)
    posted, opened = (r["body"] for r in sink.received)
    assert (len(posted["text"]), len(posted["title"]), len(posted["event"]["message"])) == (
        8000, 500, 1000)
    assert (len(opened["title"]), len(opened["body"])) == (250, 32_000)
