"""Planned actions, one row each, under a UNIQUE idempotency key.

States: ``planned`` -> ``waiting_approval`` | ``scheduled`` (with ``due_ms``) -> ``started``
-> ``succeeded`` | ``failed`` | ``skipped`` (the pre-check found the target no longer needs
it: nothing was called); or ``cancelled``, or ``dry_run`` (rendered, never run).

Crash safety: :func:`start` commits the intent (state ``started``, the key, the owner) BEFORE
the cloud call is made, and only from ``scheduled``, so one key is executed at most once. A row
left ``started`` without an outcome (the process died during the call) is found by
:func:`interrupted` and reconciled from the cloud's own state, never re-sent blindly.
Parameters are stored redacted; the worker re-renders them from the rule when it runs a row.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import StorageError
from engine.store.ids import new_id
from engine.store.query import Where
from engine.store.replicas import live_sql, now_sql
from engine.text.redact import redact

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = [
    "PENDING",
    "STATES",
    "ActionRow",
    "NewAction",
    "NotOwner",
    "attempts_in_window",
    "cancel_pending",
    "claim_probe",
    "create_schema",
    "dry_runs_due",
    "due",
    "finish",
    "for_incident",
    "get",
    "interrupted",
    "last_started_ms",
    "note_result",
    "plan",
    "probes_due",
    "release",
    "reschedule",
    "set_probe",
    "start",
    "stop_probes",
    "take_over",
]

STATES: tuple[str, ...] = (
    "planned", "waiting_approval", "scheduled", "started", "succeeded", "failed", "cancelled",
    "dry_run", "skipped",
)
PENDING: tuple[str, ...] = ("planned", "waiting_approval", "scheduled")
"""States of a row that has not run yet (and may still be cancelled)."""


class NotOwner(StorageError):
    """An outcome write found the row no longer ``started`` by this owner: another replica
    took it over (this one's heartbeat had expired), so this outcome is not recorded."""


class NewAction(msgspec.Struct, frozen=True, kw_only=True):
    """What the planner writes for one rendered action."""

    idem_key: str
    incident_id: str
    event_id: str
    rule_id: str
    reference: str
    action: str
    index: int
    phase: str  # "remediate" or "on_failure"
    attempt: int
    target: str
    fingerprint: str
    state: str
    dry_run: bool
    mutating: bool
    due_ms: int
    params: dict[str, Any]
    description: str
    playbook: str = ""
    playbook_hash: str = ""


class ActionRow(NewAction, frozen=True, kw_only=True):
    """One stored action: what was planned, and its outcome so far."""

    id: str
    created_ms: int
    started_ms: int
    finished_ms: int
    owner: str
    result: dict[str, Any]
    external_id: str
    error: str
    retries: int
    probe_state: str
    probe_due_ms: int
    probe_deadline_ms: int
    probe_interval_s: float


_JSON_COLUMNS = ("params", "result")


def create_schema(db: Database) -> None:
    """Create the actions table."""
    db.utils["actions"].create(
        {
            "id": str, "idem_key": str, "incident_id": str, "event_id": str, "rule_id": str,
            "reference": str, "action": str, "index": int, "phase": str, "attempt": int,
            "target": str, "fingerprint": str, "state": str, "dry_run": int, "mutating": int,
            "due_ms": int, "created_ms": int, "started_ms": int, "finished_ms": int,
            "owner": str, "params": str, "description": str, "playbook": str,
            "playbook_hash": str, "result": str, "external_id": str, "error": str,
            "retries": int, "probe_state": str, "probe_due_ms": int, "probe_deadline_ms": int,
            "probe_interval_s": float,
        },
        pk="id",
        not_null={"idem_key", "incident_id", "state", "action"},
        defaults={"started_ms": 0, "finished_ms": 0, "owner": "", "result": "{}",
                  "external_id": "", "error": "", "retries": 0, "probe_state": "",
                  "probe_due_ms": 0, "probe_deadline_ms": 0, "probe_interval_s": 0.0},
        if_not_exists=True,
    )
    db.utils["actions"].create_index(["idem_key"], unique=True, if_not_exists=True)
    db.utils["actions"].create_index(["state", "due_ms"], if_not_exists=True)
    db.utils["actions"].create_index(["incident_id", "attempt"], if_not_exists=True)
    db.utils["actions"].create_index(["rule_id", "created_ms"], if_not_exists=True)
    db.utils["actions"].create_index(["probe_state", "probe_due_ms"], if_not_exists=True)


def _row(row: Any) -> ActionRow:
    values = {field: row[field] for field in ActionRow.__struct_fields__}
    for column in _JSON_COLUMNS:
        values[column] = json.loads(values[column] or "{}")
    values["dry_run"] = bool(values["dry_run"])
    values["mutating"] = bool(values["mutating"])
    return ActionRow(**values)


def plan(db: Database, new: list[NewAction], now_ms: int) -> list[tuple[ActionRow, bool]]:
    """Store planned actions in one transaction; returns each row and whether it is new.

    A key already stored is not stored again: its existing row comes back with ``False``.
    """
    ids: list[tuple[str, bool]] = []
    with db.write() as conn:
        for item in new:
            values = msgspec.structs.asdict(item)
            values["params"] = json.dumps(redact(msgspec.to_builtins(item.params)),
                                          sort_keys=True)
            values["dry_run"], values["mutating"] = int(item.dry_run), int(item.mutating)
            values["id"] = new_id("act")
            values["created_ms"] = now_ms
            columns = ", ".join(f'"{c}"' for c in values)
            marks = ", ".join("?" for _ in values)
            inserted = conn.execute(
                f"INSERT INTO actions ({columns}) VALUES ({marks}) "
                "ON CONFLICT (idem_key) DO NOTHING RETURNING id",
                list(values.values()),
            ).fetchone()
            if inserted is not None:
                ids.append((inserted["id"], True))
            else:
                row = conn.execute(
                    "SELECT id FROM actions WHERE idem_key = ?", (item.idem_key,)
                ).fetchone()
                ids.append((row["id"], False))
    out = []
    for action_id, created in ids:
        stored = get(db, action_id)
        assert stored is not None
        out.append((stored, created))
    return out


def get(db: Database, action_id: str) -> ActionRow | None:
    """The action with this id, or None."""
    rows = db.query("SELECT * FROM actions WHERE id = ?", (action_id,))
    return _row(rows[0]) if rows else None


def for_incident(
    db: Database, incident_id: str, *, attempt: int | None = None, phase: str | None = None
) -> list[ActionRow]:
    """The actions of an incident in the order they were planned."""
    where = Where().equal(incident_id=incident_id, attempt=attempt, phase=phase)
    rows = db.query(f'SELECT * FROM actions{where.sql} ORDER BY created_ms, "index", id',
                    where.params)
    return [_row(r) for r in rows]


def due(db: Database, now_ms: int, limit: int = 50, *,
        incident_id: str | None = None) -> list[ActionRow]:
    """Scheduled actions whose time has come (of one incident, or all), oldest due first."""
    # of one incident: the worker's own rows, however many others are due
    where = Where().where("due_ms <= ?", now_ms).equal(incident_id=incident_id)
    scheduled = where.also("state = 'scheduled'")
    rows = db.query(f'SELECT * FROM actions{scheduled} ORDER BY due_ms, created_ms, "index" '
                    "LIMIT ?", [*where.params, limit])
    return [_row(r) for r in rows]


def dry_runs_due(db: Database, now_ms: int, *, since_ms: int, actions: list[str],
                 limit: int = 50) -> list[ActionRow]:
    """Dry-run rows of ``actions`` due between ``since_ms`` and ``now_ms`` whose pre-check has
    not run yet (no result kept), oldest due first."""
    if not actions:
        return []
    marks = ", ".join("?" for _ in actions)
    rows = db.query(
        f"SELECT * FROM actions WHERE state = 'dry_run' AND due_ms <= ? AND due_ms >= ? "
        f"AND result = '{{}}' AND action IN ({marks}) ORDER BY due_ms, created_ms LIMIT ?",
        (now_ms, since_ms, *actions, limit),
    )
    return [_row(r) for r in rows]


def release(
    db: Database, incident_id: str, *, from_state: str, to_state: str, now_ms: int
) -> int:
    """Move an incident's rows from one pending state to another (approval: waiting ->
    scheduled, not before now); returns how many moved."""
    with db.write() as conn:
        return conn.execute(
            f"UPDATE actions SET state = ?, due_ms = {db.dialect.greatest}(due_ms, ?) "
            "WHERE incident_id = ? AND state = ?",
            (to_state, now_ms, incident_id, from_state),
        ).rowcount


def _unfenced(db: Database) -> str:
    """A condition: the owner ``?`` is not fenced (its heartbeat did not expire; an owner with
    no heartbeat row, a worker run without a service, is not fenced)."""
    return ("NOT EXISTS (SELECT 1 FROM replicas r "
            f"WHERE r.owner = ? AND r.beat_until_ms < {now_sql(db)})")


def start(db: Database, action_id: str, *, owner: str, now_ms: int) -> bool:
    """Commit the intent to run (``scheduled`` -> ``started``) before the call is made.

    Returns False if the row was not ``scheduled`` (someone else started it, or it was
    cancelled), or if ``owner``'s heartbeat expired (engine/store/replicas.py: another replica
    may be taking its work over): the caller must then not make the call.
    """
    with db.write() as conn:
        return conn.execute(
            "UPDATE actions SET state = 'started', started_ms = ?, owner = ? "
            f"WHERE id = ? AND state = 'scheduled' AND {_unfenced(db)}",
            (now_ms, owner, action_id, owner),
        ).rowcount > 0


def take_over(db: Database, action_id: str, *, from_owner: str, owner: str) -> bool:
    """Make ``owner`` the owner of a row left ``started`` by ``from_owner`` (to reconcile
    it), unless someone changed it meanwhile or ``owner``'s heartbeat expired (as
    :func:`start`: a fenced replica takes nothing more); whether it did."""
    with db.write() as conn:
        return conn.execute(
            "UPDATE actions SET owner = ? WHERE id = ? AND state = 'started' AND owner = ? "
            f"AND {_unfenced(db)}",
            (owner, action_id, from_owner, owner)).rowcount > 0


def finish(
    db: Database,
    action_id: str,
    state: str,
    *,
    now_ms: int,
    result: dict[str, Any] | None = None,
    external_id: str = "",
    error: str = "",
    probe: tuple[int, int, float] | None = None,
    owner: str | None = None,
) -> None:
    """Record the outcome of a started action; ``probe`` = (first due, deadline, interval s)
    starts its verification. With ``owner``, only if the row is still ``started`` by it (a
    compare-and-set): else :class:`NotOwner`, and nothing is written."""
    if state not in STATES:
        raise ValueError(f"unknown action state {state!r}; expected one of {STATES}")
    probe_state, probe_due, deadline, interval = ("", 0, 0, 0.0)
    if probe is not None:
        probe_state, (probe_due, deadline, interval) = "running", probe
    fence, fenced = ("", ()) if owner is None else (
        " AND state = 'started' AND owner = ?", (owner,))
    with db.write() as conn:
        changed = conn.execute(
            """UPDATE actions SET state = ?, finished_ms = ?, result = ?, external_id = ?,
                   error = ?, probe_state = ?, probe_due_ms = ?, probe_deadline_ms = ?,
                   probe_interval_s = ?
               WHERE id = ?""" + fence,
            (state, now_ms, json.dumps(redact(result or {}), sort_keys=True), external_id,
             error, probe_state, probe_due, deadline, interval, action_id, *fenced),
        ).rowcount
    if not changed and owner is not None:
        raise NotOwner(f"action {action_id}: its {state} outcome is not recorded: the row is "
                       f"no longer started by {owner} (another replica took it over)")


def note_result(db: Database, action_id: str, result: dict[str, Any]) -> None:
    """Keep ``result`` with a row that does not run (a dry-run row's pre-check verdict)."""
    with db.write() as conn:
        conn.execute("UPDATE actions SET result = ? WHERE id = ?",
                     (json.dumps(redact(result), sort_keys=True), action_id))


def reschedule(db: Database, action_id: str, *, due_ms: int, error: str,
               owner: str | None = None) -> None:
    """Put a started action back to ``scheduled`` (a retryable failure), counting a retry;
    with ``owner``, only if it is still started by it (else :class:`NotOwner`)."""
    fence, fenced = ("", ()) if owner is None else (" AND owner = ?", (owner,))
    with db.write() as conn:
        changed = conn.execute(
            "UPDATE actions SET state = 'scheduled', due_ms = ?, error = ?, "
            "retries = retries + 1, owner = '' WHERE id = ? AND state = 'started'" + fence,
            (due_ms, error, action_id, *fenced),
        ).rowcount
    if not changed and owner is not None:
        raise NotOwner(f"action {action_id}: its retry is not recorded: the row is no longer "
                       f"started by {owner} (another replica took it over)")


def cancel_pending(db: Database, incident_id: str, now_ms: int) -> list[ActionRow]:
    """Cancel every action of an incident that has not run yet; returns those cancelled."""
    with db.write() as conn:
        rows = conn.execute(
            f"UPDATE actions SET state = 'cancelled', finished_ms = ? WHERE incident_id = ? "
            f"AND state IN ({', '.join('?' for _ in PENDING)}) RETURNING *",
            (now_ms, incident_id, *PENDING),
        ).fetchall()
    return [_row(r) for r in rows]


def stop_probes(db: Database, incident_id: str) -> int:
    """Stop the incident's running probes (``cancelled``); returns how many."""
    with db.write() as conn:
        return conn.execute(
            "UPDATE actions SET probe_state = 'cancelled' "
            "WHERE incident_id = ? AND probe_state = 'running'", (incident_id,),
        ).rowcount


def interrupted(db: Database, *, owner: str, now_ms: int, lease_ms: int) -> list[ActionRow]:
    """Rows left ``started`` with no outcome by another process whose heartbeat expired (a
    crash: engine/store/replicas.py), or by this one longer ago than ``lease_ms``. A live
    replica's call in flight is never among them, however long it takes."""
    rows = db.query(
        "SELECT * FROM actions WHERE state = 'started' AND ((owner != ? AND NOT "
        f"{live_sql(db, 'actions.owner')}) OR (owner = ? AND started_ms < ?)) "
        "ORDER BY started_ms",
        (owner, owner, now_ms - lease_ms),
    )
    return [_row(r) for r in rows]


def probes_due(db: Database, now_ms: int, limit: int = 50) -> list[ActionRow]:
    """Succeeded actions whose verification probe is due."""
    rows = db.query(
        "SELECT * FROM actions WHERE probe_state = 'running' AND probe_due_ms <= ? "
        "ORDER BY probe_due_ms LIMIT ?",
        (now_ms, limit),
    )
    return [_row(r) for r in rows]


def claim_probe(db: Database, action_id: str, *, due_ms: int, until_ms: int) -> bool:
    """Take a due probe (its due time moves to ``until_ms``) if it is still due at ``due_ms``:
    every replica's probes tick reads the same due rows, and only the one that takes a row
    polls it. A replica that dies meanwhile leaves it due again at ``until_ms``."""
    with db.write() as conn:
        return conn.execute(
            "UPDATE actions SET probe_due_ms = ? WHERE id = ? AND probe_state = 'running' "
            "AND probe_due_ms = ?", (until_ms, action_id, due_ms)).rowcount > 0


def set_probe(
    db: Database, action_id: str, state: str, *, due_ms: int = 0, error: str | None = None
) -> None:
    """Record a probe's answer: ``running`` (poll again at ``due_ms``), ``succeeded``,
    ``failed`` (with ``error``, the probe's reason) or ``cancelled``."""
    with db.write() as conn:
        conn.execute(
            "UPDATE actions SET probe_state = ?, probe_due_ms = ?, error = coalesce(?, error) "
            "WHERE id = ?",
            (state, due_ms, error, action_id),
        )


def attempts_in_window(
    db: Database, *, rule_id: str, scope: str, value: str, since_ms: int
) -> int:
    """Remediation attempts of ``rule_id`` since ``since_ms`` within a scope: ``target``,
    ``fingerprint`` (same value) or ``rule`` (all). Dry-run, cancelled and skipped rows (the
    target no longer needed them: nothing was done) do not count."""
    sql = (
        "SELECT count(DISTINCT incident_id || '#' || attempt) AS n FROM actions "
        "WHERE rule_id = ? AND phase = 'remediate' AND created_ms >= ? "
        "AND state NOT IN ('dry_run', 'cancelled', 'skipped')"
    )
    params: list[Any] = [rule_id, since_ms]
    if scope in ("target", "fingerprint"):
        sql += f" AND {scope} = ?"
        params.append(value)
    return db.query(sql, params)[0]["n"]


def last_started_ms(
    db: Database, *, rule_id: str, target: str, exclude_incident: str = ""
) -> int | None:
    """When ``rule_id`` last started an action on ``target`` (other incidents only; a row the
    pre-check skipped changed nothing and does not count)."""
    rows = db.query(
        "SELECT max(started_ms) AS t FROM actions WHERE rule_id = ? AND target = ? "
        "AND phase = 'remediate' AND started_ms > 0 AND state != 'skipped' "
        "AND incident_id != ?",
        (rule_id, target, exclude_incident),
    )
    return rows[0]["t"]
