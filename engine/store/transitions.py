"""The incidents table's writes that change an incident's state: open (or join) one, and move
it. Only engine/lifecycle.py calls them (an import-linter contract holds it): every state
change goes through the lifecycle's functions, which check it against the transition table,
write its side effects and its audit record, and are where a server database will lock the
incident's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.store.ids import new_id
from engine.store.incidents import ONE_ACTIVE, Incident, get, row_incident

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["lock", "open_or_join", "set_state"]


def open_or_join(
    db: Database,
    *,
    fingerprint: str,
    target: str,
    source: str,
    resource: str,
    alert_key: str,
    event_id: str,
    now_ms: int,
    rejoin_since_ms: int | None = None,
) -> tuple[Incident, bool]:
    """The active incident of (fingerprint, target) (at most one: the partial unique index
    ``incidents_one_active``), joined by this event, or a new one (``open``).

    With ``rejoin_since_ms``, an incident of (fingerprint, target) escalated with no rule
    (unmatched: ``rule_id`` empty) and closed after that time is joined too, staying
    escalated: a repeat of a failure already analysed and announced.
    Returns the incident and whether it was created. Two replicas that open the same failure
    at once end in the same incident: the second insert meets the first's row in the unique
    index (it waits for that transaction) and joins it instead (``ON CONFLICT``).
    """
    join = "UPDATE incidents SET events = events + 1, updated_ms = ? WHERE "
    with db.write() as conn:
        row = conn.execute(
            join + f"fingerprint = ? AND target = ? AND {ONE_ACTIVE} RETURNING id",
            (now_ms, fingerprint, target)).fetchone()
        if row is None and rejoin_since_ms is not None:
            row = conn.execute(
                join + "id = (SELECT id FROM incidents WHERE fingerprint = ? AND target = ? AND "
                "state = 'escalated' AND rule_id = '' AND closed_ms > ? "
                "ORDER BY closed_ms DESC LIMIT 1) RETURNING id",
                (now_ms, fingerprint, target, rejoin_since_ms)).fetchone()
        if row is not None:
            return _got(db, row["id"], created=False)
        fresh = new_id("inc")
        row = conn.execute(
            """INSERT INTO incidents (id, fingerprint, target, source, resource, alert_key,
                   state, event_id, opened_ms, updated_ms)
               VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)
               ON CONFLICT (fingerprint, target) WHERE """ + ONE_ACTIVE + """
               DO UPDATE SET events = incidents.events + 1, updated_ms = excluded.updated_ms
               RETURNING id""",
            (fresh, fingerprint, target, source, resource, alert_key, event_id, now_ms,
             now_ms)).fetchone()
    return _got(db, row["id"], created=row["id"] == fresh)


def lock(db: Database, incident_id: str) -> Incident | None:
    """The incident as committed now, its row held (``FOR UPDATE`` on PostgreSQL) until this
    thread's transaction ends: another replica's :func:`lock` of it waits, and so do its
    moves. SQLite's writer holds every row already."""
    suffix = " FOR UPDATE" if db.dialect.name == "postgresql" else ""
    with db.write() as conn:
        row = conn.execute(f"SELECT * FROM incidents WHERE id = ?{suffix}",
                           (incident_id,)).fetchone()
    return row_incident(row) if row is not None else None


def _got(db: Database, incident_id: str, *, created: bool) -> tuple[Incident, bool]:
    incident = get(db, incident_id)
    assert incident is not None  # written just before
    return incident, created


def set_state(
    db: Database,
    incident_id: str,
    state: str,
    *,
    reason: str,
    now_ms: int,
    only_from: Sequence[str],
    closes: bool = False,
    approval_due_ms: int | None = None,
) -> bool:
    """Move an incident to ``state`` if it is in one of ``only_from`` (a compare-and-set);
    a move that ``closes`` it stamps ``closed_ms``. Returns whether the row changed."""
    sql = "UPDATE incidents SET state = ?, reason = ?, updated_ms = ?"
    params: list[Any] = [state, reason, now_ms]
    if closes:
        sql += ", closed_ms = ?"
        params.append(now_ms)
    if approval_due_ms is not None:
        sql += ", approval_due_ms = ?"
        params.append(approval_due_ms)
    sql += f" WHERE id = ? AND state IN ({', '.join('?' for _ in only_from)})"
    params += [incident_id, *only_from]
    with db.write() as conn:
        return conn.execute(sql, params).rowcount > 0
