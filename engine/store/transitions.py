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
from engine.store.incidents import Incident, get, in_states

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["open_or_join", "set_state"]


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
    active: Sequence[str],
    rejoin_since_ms: int | None = None,
) -> tuple[Incident, bool]:
    """The incident of (fingerprint, target) in one of the ``active`` states, joined by this
    event, or a new one (``open``).

    With ``rejoin_since_ms``, an incident of (fingerprint, target) escalated with no rule
    (unmatched: ``rule_id`` empty) and closed after that time is joined too, staying
    escalated: a repeat of a failure already analysed and announced.
    Returns the incident and whether it was created. Runs in one write transaction, so two
    workers handling the same failure at once end in the same incident.
    """
    with db.write() as conn:
        row = conn.execute(
            f"SELECT id FROM incidents WHERE fingerprint = ? AND target = ? AND "
            f"{in_states('state', active)} ORDER BY opened_ms LIMIT 1",
            (fingerprint, target),
        ).fetchone()
        if row is None and rejoin_since_ms is not None:
            row = conn.execute(
                "SELECT id FROM incidents WHERE fingerprint = ? AND target = ? AND "
                "state = 'escalated' AND rule_id = '' AND closed_ms > ? "
                "ORDER BY closed_ms DESC LIMIT 1",
                (fingerprint, target, rejoin_since_ms),
            ).fetchone()
        if row is not None:
            conn.execute(
                "UPDATE incidents SET events = events + 1, updated_ms = ? WHERE id = ?",
                (now_ms, row["id"]),
            )
            incident_id, created = row["id"], False
        else:
            incident_id, created = new_id("inc"), True
            conn.execute(
                """INSERT INTO incidents (id, fingerprint, target, source, resource, alert_key,
                       state, event_id, opened_ms, updated_ms)
                   VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)""",
                (incident_id, fingerprint, target, source, resource, alert_key, event_id,
                 now_ms, now_ms),
            )
    incident = get(db, incident_id)
    assert incident is not None  # written just above
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
