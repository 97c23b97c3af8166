"""What a person does to an incident by hand: acknowledge it, assign it, write a note,
resolve it with a note, re-run its rule. Each is audited with ``who`` (the authenticated
name; receivers/auth.py), and the API, the dashboard and the CLI call these same functions.

- **Acknowledge** ("I am on it") and **assign** are not states: an acknowledged incident is
  still escalated, an assigned one still remediating (engine/store/handling.py keeps them).
  Both apply to an incident a person may still have to act on: an active one, or an escalated
  one (escalated means "a person must act"); a resolved or ignored incident is refused.
  Acknowledging or assigning again what already is so changes nothing and writes nothing (a
  double click).
- **Notes** go on any incident, also a closed one (what was found afterwards).
- **Resolve by hand** is the lifecycle's ``resolve`` with the person as actor and their note
  as the reason: only from an active state (a closed incident stays closed: add a note).
- **Re-run** is engine/runtime/rerun.py's (it needs the pipeline and the engine's
  dependencies; these here need only the database, so the CLI does them on a stopped
  service's file too).

Every refusal is an :class:`OperatorError` saying why (``problem``: ``missing``,
``conflict`` or ``invalid``, which the API answers 404, 409 and 400).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any, Literal

from engine import lifecycle
from engine.clock import from_ms, to_ms
from engine.errors import RemediatorError
from engine.events import utcnow
from engine.store import audit as audit_store
from engine.store import handling as handling_store
from engine.store import incidents as incidents_store
from engine.store.db import Database
from engine.store.incidents import Incident
from engine.text.redact import redact_text

__all__ = [
    "MAX_NAME",
    "MAX_NOTE",
    "OperatorError",
    "acknowledge",
    "add_note",
    "assign",
    "find",
    "note_json",
    "resolve",
]

MAX_NOTE = 4000
"""Characters of one note (or of the note that resolves an incident)."""
MAX_NAME = 100
"""Characters of an assignee's name."""
_TAKEN = ("open", "remediating", "waiting_approval", "verifying", "escalated")
"""The states in which a person may still have to act: acknowledge and assign apply."""

Problem = Literal["missing", "conflict", "invalid"]


class OperatorError(RemediatorError):
    """What a person asked cannot apply: the incident is unknown (``missing``), its state
    does not allow it (``conflict``), or the input is wrong (``invalid``); the message says
    why and what to do instead."""

    def __init__(self, message: str, problem: Problem = "conflict") -> None:
        super().__init__(message)
        self.problem: Problem = problem


def note_json(note: handling_store.Note) -> dict[str, Any]:
    """A note as the API answers it and ``--json`` prints it (``at``: ISO 8601, UTC)."""
    at = from_ms(note.ts_ms).isoformat().replace("+00:00", "Z")
    return {"id": note.id, "incident_id": note.incident_id, "who": note.who, "at": at,
            "text": note.text}


def find(db: Database, incident_id: str) -> Incident:
    """The incident, or :class:`OperatorError` (``missing``)."""
    found = incidents_store.get(db, incident_id)
    if found is None:
        shown = incident_id if len(incident_id) <= 100 else f"{incident_id[:100]}..."
        raise OperatorError(f"unknown incident {shown}", "missing")
    return found


def _text(value: str, what: str, limit: int, *, lines: bool) -> str:
    """``value`` stripped, checked (not empty, at most ``limit`` characters, no control
    characters but newlines and tabs where ``lines``) and redacted. Line ends become ``\n``
    (a browser sends a textarea's as ``\r\n``)."""
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise OperatorError(f"{what}: must not be empty", "invalid")
    if len(text) > limit:
        raise OperatorError(f"{what}: at most {limit} characters, got {len(text)}", "invalid")
    allowed = "\n\t" if lines else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in text):
        raise OperatorError(f"{what}: control characters are not allowed", "invalid")
    hidden = next((c for c in text if _invisible(c, lines=lines)), None)
    if hidden is not None:
        raise OperatorError(f"{what}: invisible or bidirectional control characters are not "
                            f"allowed (U+{ord(hidden):04X})", "invalid")
    return redact_text(text)


_JOINERS = frozenset("\u200c\u200d\u00ad")
"""Format characters that writing needs (joiners in scripts and emoji, the soft hyphen)."""


def _invisible(char: str, *, lines: bool) -> bool:
    """A format character that hides or reorders what the dashboard and a terminal show (a
    bidi override: Trojan Source, CVE-2021-42574; a zero-width space that makes two names
    that read alike differ), or a line separator in a one-line text. Emoji tag sequences
    (U+E0020 to U+E007F) are kept."""
    category = unicodedata.category(char)
    if category in ("Zl", "Zp"):
        return not lines
    return (category == "Cf" and char not in _JOINERS
            and not 0xE0020 <= ord(char) <= 0xE007F)


def _open_to_people(incident: Incident, doing: str) -> None:
    if incident.state not in _TAKEN:
        raise OperatorError(f"incident {incident.id} is {incident.state}: nothing to {doing} "
                            "(add a note instead)")


def acknowledge(db: Database, incident_id: str, who: str, *, now: datetime | None = None
                ) -> bool:
    """``who`` takes the incident on; audited ``acknowledged``. Returns False (nothing
    written) when ``who`` had acknowledged it already."""
    moment = now or utcnow()
    with db.batch():
        incident = find(db, incident_id)
        _open_to_people(incident, "acknowledge")
        before = handling_store.get(db, incident_id)
        if not handling_store.set_ack(db, incident_id, who, to_ms(moment)):
            return False
        audit_store.append(db, "acknowledged", ts=moment, actor=who, data={
            "who": who, "state": incident.state, "before": before.acked_by or None},
            incident_id=incident_id, resource=incident.resource)
    return True


def assign(db: Database, incident_id: str, assignee: str, who: str, *,
           now: datetime | None = None) -> bool:
    """Assign the incident to ``assignee`` ("" or only spaces: to nobody); audited
    ``assignment``. Returns False when it was assigned so already."""
    moment = now or utcnow()
    name = _text(assignee, "assignee", MAX_NAME, lines=False) if assignee.strip() else ""
    with db.batch():
        incident = find(db, incident_id)
        _open_to_people(incident, "assign")
        before = handling_store.get(db, incident_id).assignee
        if not handling_store.set_assignee(db, incident_id, name, who, to_ms(moment)):
            return False
        audit_store.append(db, "assignment", ts=moment, actor=who, data={
            "who": who, "assignee": name or None, "before": before or None},
            incident_id=incident_id, resource=incident.resource)
    return True


def add_note(db: Database, incident_id: str, text: str, who: str, *,
             now: datetime | None = None) -> handling_store.Note:
    """Add a note (redacted, at most :data:`MAX_NOTE` characters) to any incident; audited
    ``note`` with its text."""
    moment = now or utcnow()
    body = _text(text, "note", MAX_NOTE, lines=True)
    with db.batch():
        incident = find(db, incident_id)
        note = handling_store.add_note(db, incident_id, who, body, to_ms(moment))
        audit_store.append(db, "note", ts=moment, actor=who,
                           data={"who": who, "text": body, "note": note.id},
                           incident_id=incident_id, resource=incident.resource)
    return note


def resolve(db: Database, incident_id: str, note: str, who: str, *,
            now: datetime | None = None) -> Incident:
    """Resolve an active incident by hand (the lifecycle's ``resolve``: its pending actions
    cancelled, its probes stopped, its lock released), the reason ``resolved by hand by WHO:
    NOTE``; audited ``resolution`` with ``who`` as actor. Returns the incident as closed."""
    moment = now or utcnow()
    body = _text(note, "note", MAX_NOTE, lines=True)
    with db.batch():
        incident = find(db, incident_id)
        if incident.state not in lifecycle.ACTIVE or not lifecycle.resolve(
                db, incident, f"resolved by hand by {who}: {body}", now=moment, actor=who):
            state = find(db, incident_id).state
            raise OperatorError(f"incident {incident_id} is {state}: only an active incident "
                                f"({', '.join(lifecycle.ACTIVE)}) can be resolved; add a note "
                                "instead")
    return find(db, incident_id)
