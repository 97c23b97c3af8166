"""The one durable intake path every receiver shares: decode -> normalize -> store -> answer.

Authentication and the size limit come first (in the app); then the body is decoded, handed to
the sender family's pure parser, its redacted form and the events are committed to the inbox,
and only then is 202 answered. Nothing here calls the cloud. Every client mistake leaves as a
:class:`~engine.errors.PayloadError`; a database that cannot take the write as
:class:`~engine.errors.StorageError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.errors import MalformedPayload, UnknownSchema
from engine.events import ErrorEvent
from engine.store import inbox
from engine.store.db import Database
from engine.text.redact import redact
from receivers import azure_monitor, databricks
from receivers._json import decode_problem, not_utf8

__all__ = [
    "MAX_DEPTH",
    "PARSERS",
    "Parser",
    "answer",
    "check_content_type",
    "check_depth",
    "decode",
    "normalize",
    "prepare",
    "received",
    "redacted",
    "store",
]

Parser = Callable[[bytes | dict[str, Any]], list[ErrorEvent]]

PARSERS: dict[str, Parser] = {
    **{
        endpoint: (lambda body, endpoint=endpoint: azure_monitor.parse(body, endpoint))
        for endpoint in azure_monitor.ENDPOINT_SOURCES
    },
    "databricks-monitor": databricks.parse,
}
"""Receiver endpoint name (the URL path without its slash) -> the parser of its payloads."""

MAX_DEPTH = 64
"""Deepest nesting of a payload we take; real ones nest less than a dozen levels."""

_JSON_TYPES = ("application/json", "text/plain")


def check_content_type(content_type: str) -> None:
    """Accept JSON sent as ``application/json``, ``application/*+json``, ``text/plain`` or
    without a type; raise ``ValueError`` (answered 415) with what was sent otherwise."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media or media in _JSON_TYPES or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    raise ValueError(f"expected application/json, got {media[:100]}")


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``.

    Raises :class:`MalformedPayload` if it is not JSON (or not UTF-8), :class:`UnknownSchema`
    if it is JSON but not an object, or nests deeper than :data:`MAX_DEPTH`.
    """
    body = _without_bom(body)
    if not body.strip():
        raise MalformedPayload("empty body; expected a JSON object")
    try:
        value = msgspec.json.decode(body)
    except (UnicodeError, msgspec.DecodeError) as exc:
        raise (not_utf8(body) or MalformedPayload(
            f"invalid JSON: {decode_problem(body, exc)}")) from exc
    except RecursionError as exc:
        raise MalformedPayload("invalid JSON: nested too deeply") from exc
    if not isinstance(value, dict):
        raise UnknownSchema(f"expected a JSON object, got {_json_type(value)}")
    check_depth(body, value)
    return value


def check_depth(body: bytes, value: Any) -> None:
    """:class:`UnknownSchema` if ``value`` (decoded from ``body``) nests deeper than
    :data:`MAX_DEPTH`."""
    # Nesting needs an opening bracket per level: most bodies hold too few to need the walk.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise UnknownSchema(f"JSON nested deeper than {MAX_DEPTH} levels")


def _without_bom(body: bytes) -> bytes:
    """``body`` without a UTF-8 byte order mark (as some tools write)."""
    return body[3:] if body.startswith(b"\xef\xbb\xbf") else body


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _depth(value: Any) -> int:
    """The nesting depth of decoded JSON, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def normalize(endpoint: str, payload: bytes | dict[str, Any]) -> list[ErrorEvent]:
    """The events in ``payload`` (a body or its decoded object), by the parser of ``endpoint``
    (pure: no I/O)."""
    return PARSERS[endpoint](payload)


def prepare(endpoint: str, body: bytes) -> tuple[list[ErrorEvent], Any]:
    """Decode, parse and redact one request body: its events and payload as the inbox stores
    them. Raises PayloadError for what the sender got wrong.

    The parser is given the bytes, not the decoded object: a parser re-encodes an object to
    read it as JSON reads, and decoding the bytes again is cheaper than that round trip.
    """
    payload = decode(body)
    events = received(normalize(endpoint, _without_bom(body)), datetime.now(UTC))
    return redacted(events, payload)


def received(events: Sequence[ErrorEvent], at: datetime) -> list[ErrorEvent]:
    """The events, each without a time of its own given ``at``, the time of receipt.

    Databricks notifications and some Azure notices (budgets, custom payloads) carry no
    time: "when" is then when the sender told us, never unknown.
    """
    return [
        event if event.occurred_at is not None else msgspec.structs.replace(event, occurred_at=at)
        for event in events
    ]


def store(
    db: Database, endpoint: str, events: Sequence[ErrorEvent], payload: dict[str, Any]
) -> list[inbox.Receipt]:
    """Commit the events and the redacted payload; return once they are durable.

    Blocking (SQLite): call it off the event loop. Raises StorageError. The service commits
    through :class:`receivers.group_commit.GroupCommitter` instead, the same rows in batches.
    """
    clean, raw = redacted(events, payload)
    return inbox.insert(db, clean, raw, endpoint)


def redacted(
    events: Sequence[ErrorEvent], payload: dict[str, Any]
) -> tuple[list[ErrorEvent], Any]:
    """The events and the payload as they may be stored: secrets masked.

    The events' messages and attributes are redacted too: parsers copy what senders send
    (custom properties, dimensions), and a secret there must not be stored.
    """
    return [event.redacted() for event in events], redact(payload)


def answer(receipts: Sequence[inbox.Receipt]) -> dict[str, Any]:
    """The 202 body: the first receipt's fields, plus ``events`` when there were several.

    A payload that held no event (the parser found nothing to record) answers
    ``{"event_id": null, "duplicate": false, "status": "ignored", "events": []}``.
    """
    if not receipts:
        return {"event_id": None, "duplicate": False, "status": "ignored", "events": []}
    first = receipts[0]
    body: dict[str, Any] = {
        "event_id": first.event_id,
        "duplicate": first.duplicate,
        "status": first.status,
    }
    if len(receipts) > 1:
        body["events"] = [msgspec.structs.asdict(r) for r in receipts]
    return body
