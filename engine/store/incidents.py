"""Incidents: firing events grouped by (fingerprint, target), with their state and attempts.

States: ``open`` (received, not yet acted on), ``remediating`` (actions scheduled or running),
``waiting_approval``, ``verifying`` (a probe follows what the actions started) are *active*;
``resolved``, ``escalated`` and ``ignored`` are final. At most one active incident exists per
(fingerprint, target); a later firing event of the same failure joins it. The timeline of an
incident is its audit records (engine/store/audit.py, ``list_records(incident_id=...)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.store.ids import new_id
from engine.store.query import Where

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = [
    "ACTIVE",
    "FINAL",
    "STATES",
    "Incident",
    "OutboxItem",
    "add_attempt",
    "create_schema",
    "defer_notification",
    "find_active",
    "get",
    "list_incidents",
    "mark_notified",
    "notifications_due",
    "open_or_join",
    "set_rule",
    "set_state",
]

ACTIVE: tuple[str, ...] = ("open", "remediating", "waiting_approval", "verifying")
FINAL: tuple[str, ...] = ("resolved", "escalated", "ignored")
STATES: tuple[str, ...] = ACTIVE + FINAL


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """One failure of one target, across the events that report it and the attempts to fix it.

    ``event_id`` is the event the current remediation was planned from (re-rendered for the
    next attempt); ``attempts`` counts attempts that failed or are under way.
    """

    id: str
    fingerprint: str
    target: str
    source: str
    resource: str
    alert_key: str
    state: str
    reason: str
    rule_id: str
    event_id: str
    events: int
    attempts: int
    opened_ms: int
    updated_ms: int
    closed_ms: int
    approval_due_ms: int
    event: str

    @property
    def active(self) -> bool:
        """Whether the incident is still being handled."""
        return self.state in ACTIVE


def create_schema(db: Database) -> None:
    """Create the incidents table."""
    db.utils["incidents"].create(
        {
            "id": str, "fingerprint": str, "target": str, "source": str, "resource": str,
            "alert_key": str, "state": str, "reason": str, "rule_id": str, "event_id": str,
            "events": int, "attempts": int, "opened_ms": int, "updated_ms": int,
            "closed_ms": int, "approval_due_ms": int, "event": str,
        },
        pk="id",
        not_null={"fingerprint", "target", "state"},
        defaults={"reason": "", "rule_id": "", "events": 1, "attempts": 0, "closed_ms": 0,
                  "approval_due_ms": 0, "alert_key": "", "event": ""},
        if_not_exists=True,
    )
    db.utils["incidents"].create_index(["fingerprint", "target", "state"], if_not_exists=True)
    db.utils["incidents"].create_index(["target", "state"], if_not_exists=True)
    db.utils["incidents"].create_index(["state", "approval_due_ms"], if_not_exists=True)
    _add_outbox_columns(db)


# The notification outbox: the last state announced, and the retry of a failed announcement.
_OUTBOX_COLUMNS: dict[str, tuple[type, object]] = {
    "notified_state": (str, ""), "notified_ms": (int, 0), "notify_attempts": (int, 0),
    "notify_due_ms": (int, 0), "notify_error": (str, ""),
}


def _add_outbox_columns(db: Database) -> None:
    """Add the outbox columns to a database made before them; its incidents count as
    announced already (an upgrade must not notify every old incident at once)."""
    table = db.utils["incidents"]
    missing = [c for c in _OUTBOX_COLUMNS if c not in table.columns_dict]
    for column in missing:
        kind, default = _OUTBOX_COLUMNS[column]
        table.add_column(column, kind, not_null_default=default)
    if "notified_state" in missing and table.count:
        db.utils.conn.execute("UPDATE incidents SET notified_state = state")
    table.create_index(["notify_due_ms"], if_not_exists=True)


def _incident(row: Any) -> Incident:
    return Incident(**{field: row[field] for field in Incident.__struct_fields__})


def _active_sql(column: str) -> str:
    return f"{column} IN ({', '.join(repr(s) for s in ACTIVE)})"


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
    """The active incident of (fingerprint, target), joined by this event, or a new one.

    With ``rejoin_since_ms``, an incident of (fingerprint, target) escalated with no rule
    (unmatched: ``rule_id`` empty) and closed after that time is joined too, staying
    escalated: a repeat of a failure already analysed and announced.
    Returns the incident and whether it was created. Runs in one write transaction, so two
    workers handling the same failure at once end in the same incident.
    """
    with db.write() as conn:
        row = conn.execute(
            f"SELECT id FROM incidents WHERE fingerprint = ? AND target = ? AND "
            f"{_active_sql('state')} ORDER BY opened_ms LIMIT 1",
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


def get(db: Database, incident_id: str) -> Incident | None:
    """The incident with this id, or None."""
    rows = db.query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
    return _incident(rows[0]) if rows else None


def find_active(
    db: Database, *, target: str | None = None, alert_key: str | None = None
) -> list[Incident]:
    """Active incidents of ``target`` or carrying ``alert_key`` (either matches)."""
    where = Where().any_of(target=target, alert_key=alert_key)
    if where.empty:
        return []
    rows = db.query(f"SELECT * FROM incidents{where.also(_active_sql('state'))} "
                    "ORDER BY opened_ms", where.params)
    return [_incident(row) for row in rows]


def list_incidents(
    db: Database,
    *,
    state: str | None = None,
    resource: str | None = None,
    fingerprint: str | None = None,
    source: str | None = None,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Incident]:
    """Newest first, filtered; ``before`` (an incident id) pages on from that incident."""
    where = (Where().equal(state=state, resource=resource, fingerprint=fingerprint,
                           source=source)
             .at_least("opened_ms", since_ms)
             .where("(opened_ms, id) < (SELECT opened_ms, id FROM incidents WHERE id = ?)",
                    before))
    rows = db.query(f"SELECT * FROM incidents{where.sql} ORDER BY opened_ms DESC, id DESC "
                    "LIMIT ?", [*where.params, limit])
    return [_incident(row) for row in rows]


def set_state(
    db: Database,
    incident_id: str,
    state: str,
    *,
    reason: str,
    now_ms: int,
    approval_due_ms: int | None = None,
    only_from: tuple[str, ...] | None = None,
) -> bool:
    """Move an incident to ``state`` (from one of ``only_from``, if given); final states stamp
    ``closed_ms``. Returns whether the row changed (False: it was not in ``only_from``)."""
    if state not in STATES:
        raise ValueError(f"unknown incident state {state!r}; expected one of {STATES}")
    sql = "UPDATE incidents SET state = ?, reason = ?, updated_ms = ?"
    params: list[Any] = [state, reason, now_ms]
    if state in FINAL:
        sql += ", closed_ms = ?"
        params.append(now_ms)
    if approval_due_ms is not None:
        sql += ", approval_due_ms = ?"
        params.append(approval_due_ms)
    sql += " WHERE id = ?"
    params.append(incident_id)
    if only_from is not None:
        sql += f" AND state IN ({', '.join('?' for _ in only_from)})"
        params.extend(only_from)
    with db.write() as conn:
        return conn.execute(sql, params).rowcount > 0


def set_rule(
    db: Database, incident_id: str, rule_id: str, event_id: str, event_json: str, now_ms: int
) -> None:
    """Remember which rule remediates the incident and the (enriched) event it was planned
    from, as JSON: the next attempt is rendered from it."""
    with db.write() as conn:
        conn.execute(
            "UPDATE incidents SET rule_id = ?, event_id = ?, event = ?, updated_ms = ? "
            "WHERE id = ?",
            (rule_id, event_id, event_json, now_ms, incident_id),
        )


def add_attempt(db: Database, incident_id: str, now_ms: int) -> int:
    """Count one more attempt; returns the new count."""
    with db.write() as conn:
        row = conn.execute(
            "UPDATE incidents SET attempts = attempts + 1, updated_ms = ? WHERE id = ? "
            "RETURNING attempts",
            (now_ms, incident_id),
        ).fetchone()
    return row["attempts"] if row else 0


class OutboxItem(msgspec.Struct, frozen=True, kw_only=True):
    """An incident whose state changed since it was last announced; ``attempts`` failed
    announcements of this state so far."""

    incident: Incident
    notified_state: str
    attempts: int


def notifications_due(db: Database, *, now_ms: int, limit: int = 100) -> list[OutboxItem]:
    """Incidents whose state differs from the last one announced, due now (oldest first)."""
    rows = db.query(
        "SELECT * FROM incidents WHERE state != notified_state AND notify_due_ms <= ? "
        "ORDER BY updated_ms, id LIMIT ?",
        (now_ms, limit),
    )
    return [OutboxItem(incident=_incident(r), notified_state=r["notified_state"],
                       attempts=r["notify_attempts"]) for r in rows]


def mark_notified(db: Database, incident_id: str, state: str, *, now_ms: int,
                  error: str = "") -> None:
    """Record ``state`` as announced (``error``: given up on it after the last retry)."""
    with db.write() as conn:
        conn.execute(
            "UPDATE incidents SET notified_state = ?, notified_ms = ?, notify_attempts = 0, "
            "notify_due_ms = 0, notify_error = ? WHERE id = ?",
            (state, now_ms, error, incident_id),
        )


def defer_notification(db: Database, incident_id: str, *, due_ms: int, error: str) -> int:
    """Count a failed announcement and retry it at ``due_ms``; returns the attempts so far."""
    with db.write() as conn:
        row = conn.execute(
            "UPDATE incidents SET notify_attempts = notify_attempts + 1, notify_due_ms = ?, "
            "notify_error = ? WHERE id = ? RETURNING notify_attempts",
            (due_ms, error, incident_id),
        ).fetchone()
    return row["notify_attempts"] if row else 0
