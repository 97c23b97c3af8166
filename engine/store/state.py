"""Engine state that must outlive a restart: the global pause, circuit breakers per rule and
target, per-target locks (rows with a lease) and poller checkpoints.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from engine.errors import StorageError
from engine.store import leases

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = [
    "Breaker",
    "Lock",
    "NotLeader",
    "Pause",
    "acquire_lock",
    "breaker",
    "bump",
    "counter",
    "create_schema",
    "get_checkpoint",
    "get_lock",
    "list_breakers",
    "pause_state",
    "record_outcome",
    "release_lock",
    "reset_breakers",
    "set_checkpoint",
    "set_pause",
]


class Pause(msgspec.Struct, frozen=True, kw_only=True):
    """Whether actions are paused, by whom and since when (ms)."""

    paused: bool
    who: str = ""
    since_ms: int = 0


BreakerState = Literal["closed", "open", "half_open"]


class Breaker(msgspec.Struct, frozen=True, kw_only=True):
    """The circuit breaker of one rule on one target: consecutive failed remediations, and
    while open, until when (ms) it stays open; from then on it is half-open."""

    rule_id: str
    target: str
    failures: int = 0
    open: bool = False
    opened_ms: int = 0
    until_ms: int = 0
    updated_ms: int = 0

    def state(self, now_ms: int) -> BreakerState:
        """``open`` until its cool-off ends, ``half_open`` after it, else ``closed``."""
        if not self.open:
            return "closed"
        return "open" if now_ms < self.until_ms else "half_open"


class Lock(msgspec.Struct, frozen=True, kw_only=True):
    """Who holds a target (an incident id) and until when the lease runs (ms)."""

    target: str
    holder: str
    until_ms: int


def create_schema(db: Database) -> None:
    """Create the state tables."""
    db.utils["state"].create(
        {"key": str, "value": str, "updated_ms": int}, pk="key", if_not_exists=True
    )
    if "breakers" in db.utils.table_names():
        # A database made before breakers were per target has one per rule (table
        # ``breakers``), and an open one stopped the rule on every target for good. They are
        # dropped, i.e. treated as expired: each (rule, target) starts closed and opens again
        # after its own failures (docs/PLAYBOOKS.md, "Circuit breakers").
        db.utils["breakers"].drop()
    db.utils["circuit_breakers"].create(
        {"rule_id": str, "target": str, "failures": int, "open": int, "opened_ms": int,
         "until_ms": int, "updated_ms": int},
        pk=("rule_id", "target"), not_null={"rule_id", "target"},
        defaults={"failures": 0, "open": 0, "opened_ms": 0, "until_ms": 0, "updated_ms": 0},
        if_not_exists=True,
    )
    db.utils["circuit_breakers"].create_index(["open", "opened_ms"], if_not_exists=True)
    db.utils["target_locks"].create(
        {"target": str, "holder": str, "until_ms": int}, pk="target", if_not_exists=True
    )


def _get(db: Database, key: str) -> Any:
    rows = db.query("SELECT value FROM state WHERE key = ?", (key,))
    return json.loads(rows[0]["value"]) if rows else None


def _put(db: Database, key: str, value: Any, now_ms: int) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO state (key, value, updated_ms) VALUES (?, ?, ?) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
            (key, json.dumps(value), now_ms),
        )


def bump(db: Database, key: str, now_ms: int) -> int:
    """Add one to the counter ``key`` (0 if never set) and return it, in one statement."""
    with db.write() as conn:
        row = conn.execute(
            "INSERT INTO state (key, value, updated_ms) VALUES (?, '1', ?) ON CONFLICT (key) "
            "DO UPDATE SET value = CAST(CAST(state.value AS INTEGER) + 1 AS TEXT), "
            "updated_ms = excluded.updated_ms RETURNING value", (key, now_ms)).fetchone()
    return int(row["value"])


def counter(db: Database, key: str) -> int:
    """The counter ``key`` (0 if never set)."""
    value = _get(db, key)
    return int(value) if value is not None else 0


def pause_state(db: Database) -> Pause:
    """The global pause (not paused if never set)."""
    value = _get(db, "pause")
    return msgspec.convert(value, Pause) if value else Pause(paused=False)


def set_pause(db: Database, paused: bool, who: str, now_ms: int) -> Pause:
    """Pause or resume all actions; intake goes on either way."""
    state = Pause(paused=paused, who=who, since_ms=now_ms)
    _put(db, "pause", msgspec.to_builtins(state), now_ms)
    return state


def get_checkpoint(db: Database, name: str) -> str | None:
    """A poller's checkpoint (opaque text), or None before its first run."""
    value = _get(db, f"checkpoint:{name}")
    return str(value) if value is not None else None


class NotLeader(StorageError):
    """A fenced write found the leader lease held by another replica or under a newer epoch:
    this replica no longer leads, and nothing was written."""


def set_checkpoint(db: Database, name: str, value: str, now_ms: int, *,
                   fence: tuple[str, int] | None = None) -> None:
    """Store a poller's checkpoint once what it covers is safely in the inbox. With ``fence``
    (holder, epoch of the leader lease), only while that lease is held under that epoch:
    else :class:`NotLeader`, and the checkpoint stays the successor's."""
    if fence is None:
        _put(db, f"checkpoint:{name}", value, now_ms)
        return
    with db.write() as conn:
        written = conn.execute(
            "INSERT INTO state (key, value, updated_ms) SELECT ?, ?, ? "
            f"WHERE {leases.held_sql(db)} ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
            (f"checkpoint:{name}", json.dumps(value), now_ms, leases.LEADER, *fence),
        ).rowcount
    if not written:
        raise NotLeader(f"checkpoint {name} not written: {fence[0]} no longer holds the "
                        f"leader lease of epoch {fence[1]}")


def _breaker(row: Any) -> Breaker:
    fields = {name: row[name] for name in Breaker.__struct_fields__}
    return Breaker(**{**fields, "open": bool(fields["open"])})


def breaker(db: Database, rule_id: str, target: str) -> Breaker:
    """The breaker of ``rule_id`` on ``target`` (closed, no failures, if never tripped)."""
    rows = db.query("SELECT * FROM circuit_breakers WHERE rule_id = ? AND target = ?",
                    (rule_id, target))
    return _breaker(rows[0]) if rows else Breaker(rule_id=rule_id, target=target)


def record_outcome(
    db: Database, rule_id: str, target: str, *, success: bool, threshold: int,
    cool_off_ms: int, now_ms: int,
) -> Breaker:
    """Count one remediation outcome of ``rule_id`` on ``target``.

    A success closes the breaker (open, half-open or counting). A failure counts; the
    ``threshold``-th consecutive one opens the breaker until ``now_ms + cool_off_ms``; a
    failure while it is open or half-open (the trial) opens it again for another cool-off.
    """
    with db.write() as conn:
        if success:
            conn.execute("DELETE FROM circuit_breakers WHERE rule_id = ? AND target = ?",
                         (rule_id, target))
            return Breaker(rule_id=rule_id, target=target, updated_ms=now_ms)
        until = now_ms + cool_off_ms
        conn.execute(
            "INSERT INTO circuit_breakers (rule_id, target, failures, open, opened_ms, until_ms,"
            " updated_ms) VALUES (?, ?, 1, 0, 0, 0, ?) ON CONFLICT (rule_id, target) DO UPDATE "
            "SET failures = circuit_breakers.failures + 1, updated_ms = excluded.updated_ms",
            (rule_id, target, now_ms),
        )
        conn.execute(
            "UPDATE circuit_breakers SET open = 1, opened_ms = ?, until_ms = ? "
            "WHERE rule_id = ? AND target = ? AND (open = 1 OR failures >= ?)",
            (now_ms, until, rule_id, target, threshold),
        )
    return breaker(db, rule_id, target)


def list_breakers(db: Database, *, limit: int = 500) -> list[Breaker]:
    """Open and half-open breakers, most recently opened first."""
    rows = db.query("SELECT * FROM circuit_breakers WHERE open = 1 "
                    "ORDER BY opened_ms DESC, rule_id, target LIMIT ?", (limit,))
    return [_breaker(row) for row in rows]


def reset_breakers(db: Database, rule_id: str, target: str | None = None) -> list[Breaker]:
    """Close the breakers of ``rule_id`` (on every target, or on ``target``) and clear their
    failure counts; returns them as they were (open or counting failures)."""
    sql, params = "FROM circuit_breakers WHERE rule_id = ?", [rule_id]
    if target is not None:
        sql, params = sql + " AND target = ?", [*params, target]
    with db.write() as conn:  # one statement: two replicas resetting at once report each once
        rows = conn.execute(f"DELETE {sql} RETURNING *", params).fetchall()
    return sorted((_breaker(row) for row in rows), key=lambda b: b.target)


def acquire_lock(db: Database, target: str, holder: str, *, now_ms: int, until_ms: int) -> Lock:
    """Take (or renew) the lock of ``target`` for ``holder`` unless someone else holds an
    unexpired lease; returns the lock as it now stands (compare its holder)."""
    with db.write() as conn:
        conn.execute(
            "INSERT INTO target_locks (target, holder, until_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (target) DO UPDATE SET holder = excluded.holder, "
            "until_ms = excluded.until_ms WHERE target_locks.holder = excluded.holder "
            "OR target_locks.until_ms < ?",
            (target, holder, until_ms, now_ms),
        )
        row = conn.execute("SELECT * FROM target_locks WHERE target = ?", (target,)).fetchone()
    return Lock(target=target, holder=row["holder"], until_ms=row["until_ms"])


def get_lock(db: Database, target: str, now_ms: int) -> Lock | None:
    """The unexpired lock of ``target``, or None."""
    rows = db.query(
        "SELECT * FROM target_locks WHERE target = ? AND until_ms >= ?", (target, now_ms)
    )
    return Lock(target=target, holder=rows[0]["holder"], until_ms=rows[0]["until_ms"]) \
        if rows else None


def release_lock(db: Database, target: str, holder: str) -> None:
    """Release ``target`` if ``holder`` holds it."""
    with db.write() as conn:
        conn.execute("DELETE FROM target_locks WHERE target = ? AND holder = ?", (target, holder))
