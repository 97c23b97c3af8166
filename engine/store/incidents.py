"""Incidents: firing events grouped by (fingerprint, target), with their state and attempts.

The states and the moves between them are engine/lifecycle.py's; the writes that change a
state are engine/store/transitions.py's, which only the lifecycle calls. This module reads
incidents and writes what is not their state (the rule, the attempts, the notification
outbox). The timeline of an incident is its audit records (engine/store/audit.py,
``list_records(incident_id=...)``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from engine.store.query import Where

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = [
    "ACTIVE_STATES",
    "ONE_ACTIVE",
    "Incident",
    "OutboxItem",
    "add_attempt",
    "claim_expiry",
    "claim_notification",
    "create_schema",
    "defer_notification",
    "find",
    "get",
    "in_states",
    "list_incidents",
    "mark_notified",
    "notifications_due",
    "row_incident",
    "set_rule",
]

ACTIVE_STATES = ("open", "remediating", "waiting_approval", "verifying")
"""The lifecycle's active states (engine/lifecycle.py ``ACTIVE``, a test holds them equal): at
most one incident per (fingerprint, target) is in one of them."""

ONE_ACTIVE = f"state IN ({', '.join(repr(s) for s in ACTIVE_STATES)})"
"""The predicate of the partial unique index ``incidents_one_active`` (migration 0008): what
an ``ON CONFLICT`` names to meet it."""


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """One failure of one target, across the events that report it and the attempts to fix it.

    ``event_id`` is the event the current remediation was planned from (re-rendered for the
    next attempt); ``attempts`` counts attempts that failed or are under way; ``matches``
    (JSON) the named groups of each rule matched when it was planned, by rule id: what its
    actions are rendered with again, without running the match again.
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
    matches: str = "{}"


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
    # At most one active incident per failure, whoever opens it (open_or_join's ON CONFLICT).
    db.utils.conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_active ON "
                          f"incidents (fingerprint, target) WHERE {ONE_ACTIVE}")
    _add_outbox_columns(db)
    if "matches" not in db.utils["incidents"].columns_dict:  # a database made before it
        db.utils["incidents"].add_column("matches", str, not_null_default="{}")


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


def row_incident(row: Any) -> Incident:
    """An incidents row as an :class:`Incident`."""
    return Incident(**{field: row[field] for field in Incident.__struct_fields__})


def get(db: Database, incident_id: str) -> Incident | None:
    """The incident with this id, or None."""
    rows = db.query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
    return row_incident(rows[0]) if rows else None


def find(
    db: Database, *, states: Sequence[str], target: str | None = None,
    alert_key: str | None = None,
) -> list[Incident]:
    """Incidents in one of ``states`` of ``target`` or carrying ``alert_key`` (either
    matches), oldest first; none when neither is given."""
    where = Where().any_of(target=target, alert_key=alert_key)
    if where.empty:
        return []
    rows = db.query(f"SELECT * FROM incidents{where.also(in_states('state', states))} "
                    "ORDER BY opened_ms", where.params)
    return [row_incident(row) for row in rows]


def in_states(column: str, states: Sequence[str]) -> str:
    """``column IN ('a', 'b')`` for a fixed set of states (the lifecycle's, never input)."""
    return f"{column} IN ({', '.join(repr(s) for s in states)})"


def list_incidents(db: Database, *, state: str | None = None, resource: str | None = None,
                   fingerprint: str | None = None, source: str | None = None,
                   since_ms: int | None = None, before: str | None = None,
                   limit: int = 50) -> list[Incident]:
    """Newest first, filtered; ``before`` (an incident id) pages on from that incident."""
    where = (Where().equal(state=state, resource=resource, fingerprint=fingerprint,
                           source=source)
             .at_least("opened_ms", since_ms)
             .where("(opened_ms, id) < (SELECT opened_ms, id FROM incidents WHERE id = ?)",
                    before))
    rows = db.query(f"SELECT * FROM incidents{where.sql} ORDER BY opened_ms DESC, id DESC "
                    "LIMIT ?", [*where.params, limit])
    return [row_incident(row) for row in rows]


def set_rule(
    db: Database, incident_id: str, rule_id: str, event_id: str, event_json: str, now_ms: int,
    matches: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Remember which rule remediates the incident, the (enriched) event it was planned from
    and the named groups of each matched rule, as JSON: the next attempt is rendered from
    them."""
    with db.write() as conn:
        conn.execute(
            "UPDATE incidents SET rule_id = ?, event_id = ?, event = ?, matches = ?, "
            "updated_ms = ? WHERE id = ?",
            (rule_id, event_id, event_json, json.dumps(matches or {}, sort_keys=True), now_ms,
             incident_id),
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
    return [OutboxItem(incident=row_incident(r), notified_state=r["notified_state"],
                       attempts=r["notify_attempts"]) for r in rows]


def claim_expiry(db: Database, incident_id: str, *, due_ms: int, until_ms: int) -> bool:
    """Take an expired approval (its due time moves to ``until_ms``) if it is still waiting
    and due at ``due_ms``: every replica's tick finds it, and only the one that takes it
    records the expiry and escalates. If that one dies meanwhile, it expires again then."""
    with db.write() as conn:
        return conn.execute(
            "UPDATE incidents SET approval_due_ms = ? WHERE id = ? "
            "AND state = 'waiting_approval' AND approval_due_ms = ?",
            (until_ms, incident_id, due_ms)).rowcount > 0


def claim_notification(db: Database, incident_id: str, state: str, *, now_ms: int,
                       lease_ms: int) -> bool:
    """Take the announcement of ``state`` for ``lease_ms`` (its due time moves past the
    lease), if it is still due and unannounced: several replicas tick the outbox, and only
    the one that takes it sends. A replica that dies mid-send leaves it due again after the
    lease."""
    with db.write() as conn:
        return conn.execute(
            "UPDATE incidents SET notify_due_ms = ? WHERE id = ? AND state = ? "
            "AND notified_state != ? AND notify_due_ms <= ?",
            (now_ms + lease_ms, incident_id, state, state, now_ms)).rowcount > 0


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
