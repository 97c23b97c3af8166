"""Engine state that must outlive a restart: the global pause, circuit breakers per rule,
per-target locks (rows with a lease) and poller checkpoints.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from engine.store import Database

__all__ = [
    "Breaker",
    "Lock",
    "Pause",
    "acquire_lock",
    "breaker",
    "create_schema",
    "get_checkpoint",
    "get_lock",
    "pause_state",
    "record_outcome",
    "release_lock",
    "reset_breaker",
    "set_checkpoint",
    "set_pause",
]


class Pause(msgspec.Struct, frozen=True, kw_only=True):
    """Whether actions are paused, by whom and since when (ms)."""

    paused: bool
    who: str = ""
    since_ms: int = 0


class Breaker(msgspec.Struct, frozen=True, kw_only=True):
    """A rule's circuit breaker: consecutive failed remediations and whether it is open."""

    rule_id: str
    failures: int = 0
    open: bool = False
    opened_ms: int = 0


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
    db.utils["breakers"].create(
        {"rule_id": str, "failures": int, "open": int, "opened_ms": int, "updated_ms": int},
        pk="rule_id", defaults={"failures": 0, "open": 0, "opened_ms": 0}, if_not_exists=True,
    )
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


def set_checkpoint(db: Database, name: str, value: str, now_ms: int) -> None:
    """Store a poller's checkpoint once what it covers is safely in the inbox."""
    _put(db, f"checkpoint:{name}", value, now_ms)


def breaker(db: Database, rule_id: str) -> Breaker:
    """The breaker of ``rule_id`` (closed, no failures, if never tripped)."""
    rows = db.query("SELECT * FROM breakers WHERE rule_id = ?", (rule_id,))
    if not rows:
        return Breaker(rule_id=rule_id)
    row = rows[0]
    return Breaker(rule_id=rule_id, failures=row["failures"], open=bool(row["open"]),
                   opened_ms=row["opened_ms"])


def record_outcome(
    db: Database, rule_id: str, *, success: bool, threshold: int, now_ms: int
) -> Breaker:
    """Count one remediation outcome: success closes the count, ``threshold`` consecutive
    failures (across targets) open the breaker until :func:`reset_breaker`."""
    with db.write() as conn:
        if success:
            conn.execute(
                "INSERT INTO breakers (rule_id, failures, open, updated_ms) VALUES (?, 0, 0, ?) "
                "ON CONFLICT (rule_id) DO UPDATE SET failures = 0, updated_ms = excluded.updated_ms"
                " WHERE open = 0",
                (rule_id, now_ms),
            )
        else:
            conn.execute(
                "INSERT INTO breakers (rule_id, failures, open, opened_ms, updated_ms) "
                "VALUES (?, 1, ?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET "
                "failures = failures + 1, updated_ms = excluded.updated_ms",
                (rule_id, int(threshold <= 1), now_ms if threshold <= 1 else 0, now_ms),
            )
            conn.execute(
                "UPDATE breakers SET open = 1, opened_ms = ? "
                "WHERE rule_id = ? AND open = 0 AND failures >= ?",
                (now_ms, rule_id, threshold),
            )
    return breaker(db, rule_id)


def reset_breaker(db: Database, rule_id: str, now_ms: int) -> None:
    """Close the breaker of ``rule_id`` and clear its failure count."""
    with db.write() as conn:
        conn.execute(
            "UPDATE breakers SET open = 0, failures = 0, opened_ms = 0, updated_ms = ? "
            "WHERE rule_id = ?",
            (now_ms, rule_id),
        )


def acquire_lock(db: Database, target: str, holder: str, *, now_ms: int, until_ms: int) -> Lock:
    """Take (or renew) the lock of ``target`` for ``holder`` unless someone else holds an
    unexpired lease; returns the lock as it now stands (compare its holder)."""
    with db.write() as conn:
        conn.execute(
            "INSERT INTO target_locks (target, holder, until_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (target) DO UPDATE SET holder = excluded.holder, "
            "until_ms = excluded.until_ms WHERE holder = excluded.holder OR until_ms < ?",
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
