"""The silences table: time-bounded matchers that hold remediation (engine/silences.py).

A silence is never deleted by hand: expiring it early sets its end to that moment and records
who did it, so the list (and the audit log) keeps what was silenced, by whom and until when.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["SilenceRow", "SilenceState", "count_active", "create_schema", "expire", "get",
           "insert", "list_silences"]

SilenceState = Literal["pending", "active", "expired"]


class SilenceRow(msgspec.Struct, frozen=True, kw_only=True):
    """One silence as stored: its matchers (``{"name", "op", "value"}`` each), when it starts
    and ends (ms), who made it and why, and, if expired early, by whom and when."""

    id: str
    matchers: list[dict[str, str]]
    starts_ms: int
    ends_ms: int
    author: str
    comment: str
    created_ms: int
    expired_by: str = ""
    expired_ms: int = 0

    def state(self, now_ms: int) -> SilenceState:
        """``pending`` before it starts, ``active`` until it ends, then ``expired``."""
        if now_ms >= self.ends_ms:
            return "expired"
        return "active" if now_ms >= self.starts_ms else "pending"


def create_schema(db: Database) -> None:
    """Create the silences table."""
    db.utils["silences"].create(
        {"id": str, "matchers": str, "starts_ms": int, "ends_ms": int, "author": str,
         "comment": str, "created_ms": int, "expired_by": str, "expired_ms": int},
        pk="id", not_null={"id", "matchers", "starts_ms", "ends_ms"},
        defaults={"expired_by": "", "expired_ms": 0}, if_not_exists=True,
    )
    db.utils["silences"].create_index(["ends_ms"], if_not_exists=True)


def _row(row: Any) -> SilenceRow:
    data = {name: row[name] for name in SilenceRow.__struct_fields__}
    return SilenceRow(**{**data, "matchers": json.loads(data["matchers"])})


def insert(db: Database, silence: SilenceRow) -> None:
    """Store a new silence."""
    data = msgspec.to_builtins(silence)
    data["matchers"] = json.dumps(silence.matchers)
    with db.write() as conn:
        conn.execute(f"INSERT INTO silences ({', '.join(data)}) VALUES "
                     f"({', '.join('?' for _ in data)})", list(data.values()))


def get(db: Database, silence_id: str) -> SilenceRow | None:
    """The silence with this id, if any."""
    rows = db.query("SELECT * FROM silences WHERE id = ?", (silence_id,))
    return _row(rows[0]) if rows else None


def list_silences(db: Database, *, now_ms: int, expired: bool = False,
                  limit: int = 500) -> list[SilenceRow]:
    """The silences not yet ended (active and pending, ending soonest first), or with
    ``expired`` the ended ones, most recently ended first; at most ``limit``."""
    if expired:
        sql = "SELECT * FROM silences WHERE ends_ms <= ? ORDER BY ends_ms DESC, id LIMIT ?"
    else:
        sql = "SELECT * FROM silences WHERE ends_ms > ? ORDER BY ends_ms, id LIMIT ?"
    return [_row(row) for row in db.query(sql, (now_ms, limit))]


def count_active(db: Database, *, now_ms: int) -> int:
    """How many silences have not ended (active or pending)."""
    return db.query("SELECT count(*) AS n FROM silences WHERE ends_ms > ?", (now_ms,))[0]["n"]


def expire(db: Database, silence_id: str, who: str, now_ms: int) -> bool:
    """End a silence now, recording who; False when it had already ended (or is unknown)."""
    with db.write() as conn:
        cursor = conn.execute(
            "UPDATE silences SET ends_ms = ?, expired_by = ?, expired_ms = ? "
            "WHERE id = ? AND ends_ms > ?", (now_ms, who, now_ms, silence_id, now_ms))
        return cursor.rowcount == 1
