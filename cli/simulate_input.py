"""What ``remediator simulate`` takes besides a raw payload: an event file, and enrichment.

- ``--event FILE``: the fields of an ErrorEvent in JSON or YAML, as enrichment would leave
  them (a playbook test's ``event:``). Every problem is named at its ``file:line:col``: an
  unknown field (with the nearest one), a value of the wrong type (msgspec's words and path).
  ``status`` defaults to ``firing``, ``dedup_key`` to the file's name.
- ``--enrich``: the events go through the engine's own enrichment (engine/actions/enrich.py)
  against the ``[clouds]`` of the settings (the sandbox's, or the real clouds: it only reads)
  before the rules are tried, and what it called is shown.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import msgspec

from engine.config import Settings
from engine.events import ErrorEvent
from engine.rules import _yaml
from engine.rules.match import EVENT_FIELDS

__all__ = ["MAX_EVENT_BYTES", "EventFileError", "enrich_events", "read_event"]

MAX_EVENT_BYTES = 1024 * 1024
"""The largest event file read (the receivers' default body limit)."""



class EventFileError(Exception):
    """The event file cannot be read as an event; ``problems`` are ``file:line:col: ...``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _field_of(message: str) -> tuple[str, str]:
    """msgspec's ``Expected `int`, got `str` - at `$.severity[0]` `` as its words and the
    top-level field it names (``""`` for the event itself)."""
    words, sep, path = message.rpartition(" - at `$")
    if not sep:
        return message, ""
    return words, path.rstrip("`").lstrip(".").split(".")[0].split("[")[0]


def read_event(path: str | Path) -> ErrorEvent:
    """The event written in ``path`` (JSON or YAML); EventFileError naming every problem."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_EVENT_BYTES + 1)
    except OSError as exc:
        raise EventFileError([f"{where}: cannot read: {exc.strerror}"]) from exc
    if len(raw) > MAX_EVENT_BYTES:
        raise EventFileError([f"{where}: larger than {MAX_EVENT_BYTES:,} bytes"])
    try:
        doc = _yaml.parse(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise EventFileError([f"{where}: not UTF-8 text"]) from exc
    except _yaml.YamlSyntaxError as exc:
        raise EventFileError([f"{where}:{exc.line}:{exc.col}: {exc.message}"]) from exc
    data = doc.data
    if not isinstance(data, dict):
        raise EventFileError([f"{where}:1:1: expected a mapping of event fields"])
    problems = []
    for key in data:
        if key not in EVENT_FIELDS:
            line, col = doc.position((key,), at_key=True)
            close = difflib.get_close_matches(str(key), EVENT_FIELDS, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else \
                f"; expected one of {', '.join(EVENT_FIELDS)}"
            problems.append(f"{where}:{line}:{col}: unknown event field `{key}`{hint}")
    if problems:
        raise EventFileError(problems)
    fields = {"status": "firing", "dedup_key": f"simulate:{Path(path).name}", **data}
    try:
        event = msgspec.convert(fields, ErrorEvent, strict=False)
    except msgspec.ValidationError as exc:
        words, name = _field_of(str(exc))
        if name not in data:
            raise EventFileError([f"{where}:1:1: {words}"]) from exc
        if name in ("error_code", "error_codes") and words.endswith("got `int`"):
            words += ' (quote codes: "2200")'
        line, col = doc.position((name,))
        raise EventFileError([f"{where}:{line}:{col}: {name}: {words}"]) from exc
    return event if event.fingerprint else event.with_fingerprint()


def enrich_events(events: list[ErrorEvent], settings: Settings,
                  ) -> list[tuple[ErrorEvent, list[ErrorEvent], list[dict[str, Any]]]]:
    """Each event with what enrichment makes of it (one event, or one per failed run of a
    metric alert) and the look-ups it made (``call``, ``ok``, ``detail``). Only reads."""
    from engine.cloud.clients import Clients
    from engine.cloud.enrich import enrich

    clients = Clients(settings.clouds)
    try:
        out = []
        for event in events:
            if event.status != "firing":
                out.append((event, [event], [{"call": "enrichment", "ok": True,
                                              "detail": f"not called: the event is "
                                                        f"{event.status}"}]))
                continue
            result = enrich(event, clients)
            enriched = [e.redacted() for e in result.events or [event]]
            out.append((event, enriched, [msgspec.to_builtins(n) for n in result.notes]))
        return out
    finally:
        clients.close()
