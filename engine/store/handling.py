"""What people do with an incident besides moving it: who acknowledged it, who it is assigned
to, their notes, and the re-run it led to.

None of this is an incident state (engine/lifecycle.py owns those): an acknowledged incident
is still escalated, an assigned one still remediating. One row per incident in
``incident_handling`` (made on its first write) and one row per note in ``incident_notes``.
Texts arrive redacted (engine/runtime/operators.py redacts before writing); the audit log
records each write with who made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = [
    "Handling",
    "Note",
    "add_note",
    "claim_rerun",
    "create_schema",
    "for_incidents",
    "get",
    "notes",
    "set_ack",
    "set_assignee",
    "set_rerun",
]


class Handling(msgspec.Struct, frozen=True, kw_only=True):
    """An incident's people: who acknowledged it and when (ms, 0: nobody), its assignee
    ("" : nobody), and the incident its re-run opened (``rerun_id``, "" : none)."""

    incident_id: str
    acked_by: str = ""
    acked_ms: int = 0
    assignee: str = ""
    assigned_by: str = ""
    assigned_ms: int = 0
    rerun_id: str = ""
    rerun_by: str = ""
    rerun_ms: int = 0


class Note(msgspec.Struct, frozen=True, kw_only=True):
    """One note on an incident: who wrote it, when (ms), the text (redacted)."""

    id: int
    incident_id: str
    who: str
    ts_ms: int
    text: str


def create_schema(db: Database) -> None:
    """Create the handling and notes tables (a database made before them gets them empty)."""
    db.utils["incident_handling"].create(
        {"incident_id": str, "acked_by": str, "acked_ms": int, "assignee": str,
         "assigned_by": str, "assigned_ms": int, "rerun_id": str, "rerun_by": str,
         "rerun_ms": int},
        pk="incident_id",
        defaults={"acked_by": "", "acked_ms": 0, "assignee": "", "assigned_by": "",
                  "assigned_ms": 0, "rerun_id": "", "rerun_by": "", "rerun_ms": 0},
        not_null={"acked_by", "acked_ms", "assignee", "assigned_by", "assigned_ms",
                  "rerun_id", "rerun_by", "rerun_ms"},
        if_not_exists=True,
    )
    db.utils["incident_notes"].create(
        {"id": int, "incident_id": str, "who": str, "ts_ms": int, "text": str},
        pk="id", not_null={"incident_id", "who", "ts_ms", "text"}, if_not_exists=True,
    )
    db.utils["incident_notes"].create_index(["incident_id", "id"], if_not_exists=True)


def get(db: Database, incident_id: str) -> Handling:
    """The incident's handling (empty fields when nobody did anything yet)."""
    rows = db.query("SELECT * FROM incident_handling WHERE incident_id = ?", (incident_id,))
    if not rows:
        return Handling(incident_id=incident_id)
    return Handling(**{f: rows[0][f] for f in Handling.__struct_fields__})


def for_incidents(db: Database, incident_ids: list[str]) -> dict[str, Handling]:
    """The handling of those of ``incident_ids`` someone acknowledged, assigned or re-ran (for
    the incident list: one query, at most a page of ids)."""
    if not incident_ids:
        return {}
    rows = db.query(f"SELECT * FROM incident_handling WHERE incident_id IN "
                    f"({', '.join('?' for _ in incident_ids)})", incident_ids)
    return {r["incident_id"]: Handling(**{f: r[f] for f in Handling.__struct_fields__})
            for r in rows}


_ROW = "INSERT INTO incident_handling (incident_id) VALUES (?) ON CONFLICT DO NOTHING"
"""The incident's handling row, made empty the first time a person does anything to it."""


def set_ack(db: Database, incident_id: str, who: str, now_ms: int) -> bool:
    """Record ``who`` as acknowledging the incident; False (nothing written) when ``who``
    had acknowledged it already (a double click)."""
    with db.write() as conn:
        conn.execute(_ROW, (incident_id,))
        return conn.execute(
            "UPDATE incident_handling SET acked_by = ?, acked_ms = ? "
            "WHERE incident_id = ? AND acked_by != ?",
            (who, now_ms, incident_id, who)).rowcount > 0


def set_assignee(db: Database, incident_id: str, assignee: str, who: str,
                 now_ms: int) -> bool:
    """Assign the incident to ``assignee`` ("" : nobody); False when it already was."""
    with db.write() as conn:
        conn.execute(_ROW, (incident_id,))
        return conn.execute(
            "UPDATE incident_handling SET assignee = ?, assigned_by = ?, assigned_ms = ? "
            "WHERE incident_id = ? AND assignee != ?",
            (assignee, who, now_ms, incident_id, assignee)).rowcount > 0


def claim_rerun(db: Database, incident_id: str, who: str, now_ms: int) -> bool:
    """Take the incident's one re-run for ``who`` (a compare-and-set: a second click, or a
    second operator, gets False); :func:`set_rerun` then names the incident it opened."""
    with db.write() as conn:
        conn.execute(_ROW, (incident_id,))
        return conn.execute(
            "UPDATE incident_handling SET rerun_id = '-', rerun_by = ?, rerun_ms = ? "
            "WHERE incident_id = ? AND rerun_id = ''", (who, now_ms, incident_id)).rowcount > 0


def set_rerun(db: Database, incident_id: str, rerun_id: str) -> None:
    """Name the incident the claimed re-run opened ("" gives the re-run back: it did not
    happen)."""
    with db.write() as conn:
        conn.execute("UPDATE incident_handling SET rerun_id = ? WHERE incident_id = ?",
                     (rerun_id, incident_id))


def add_note(db: Database, incident_id: str, who: str, text: str, now_ms: int) -> Note:
    """Append a note (``text`` already redacted and bounded by the caller)."""
    with db.write() as conn:
        row = conn.execute(
            "INSERT INTO incident_notes (incident_id, who, ts_ms, text) VALUES (?, ?, ?, ?) "
            "RETURNING id", (incident_id, who, now_ms, text)).fetchone()
    return Note(id=row["id"], incident_id=incident_id, who=who, ts_ms=now_ms, text=text)


def notes(db: Database, incident_id: str, *, limit: int = 200) -> list[Note]:
    """The incident's newest ``limit`` notes, oldest first."""
    rows = db.query("SELECT * FROM incident_notes WHERE incident_id = ? ORDER BY id DESC "
                    "LIMIT ?", (incident_id, limit))
    return [Note(**{f: r[f] for f in Note.__struct_fields__}) for r in reversed(rows)]
