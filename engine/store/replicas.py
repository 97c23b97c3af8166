"""Replicas' heartbeats, on the database's clock: who is alive, so that only a dead replica's
work is taken over.

Each running service registers its owner id (the one its claims and action intents carry) and
renews ``beat_until_ms`` every :data:`BEAT_S`; a replica whose row ran past it is dead to the
others. Another replica then reclaims its events and reconciles its ``started`` actions; while
its row lives, nobody touches them, however long a call takes. Times come from the database
server (:func:`now_sql`), never from the replicas' clocks, which may differ. A replica whose
own row expired is fenced: it can start no call (engine/store/actions.py ``start``) and its
outcome writes fail, as another replica may have taken its rows over; it must restart under a
new id. An owner with no row (a worker run without a service, a process from before this
table) counts as dead to the others.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["BEAT_S", "TTL_S", "beat", "create_schema", "live", "live_sql", "now_sql", "register",
           "resign", "resign_all"]

BEAT_S = 2.0
"""How often a replica renews its heartbeat."""
TTL_S = 10.0
"""How long a heartbeat lasts: a replica silent this long is dead to the others."""


def create_schema(db: Database) -> None:
    """The replicas table (PostgreSQL: migration 0002)."""
    db.utils["replicas"].create(
        {"owner": str, "host": str, "pid": int, "started_ms": int, "beat_until_ms": int},
        pk="owner", if_not_exists=True)
    if "owner" not in db.utils["events"].columns_dict:
        db.utils["events"].add_column("owner", str, not_null_default="")


def now_sql(db: Database) -> str:
    """The database server's clock, in ms, as an SQL expression."""
    if db.dialect.name == "postgresql":
        return "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)"
    return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"


def live_sql(db: Database, owner_column: str) -> str:
    """A condition: the replica named in ``owner_column`` has an unexpired heartbeat."""
    return (f"EXISTS (SELECT 1 FROM replicas r WHERE r.owner = {owner_column} "
            f"AND r.beat_until_ms >= {now_sql(db)})")


def register(db: Database, owner: str, *, ttl_s: float = TTL_S) -> None:
    """Record ``owner`` alive for ``ttl_s`` (a service starting)."""
    with db.write() as conn:
        conn.execute(
            f"INSERT INTO replicas (owner, host, pid, started_ms, beat_until_ms) "
            f"VALUES (?, ?, ?, {now_sql(db)}, {now_sql(db)} + ?)",
            (owner, socket.gethostname(), os.getpid(), int(ttl_s * 1000)))
        conn.execute(f"DELETE FROM replicas WHERE beat_until_ms < {now_sql(db)} - ?",
                     (86_400_000,))  # replicas dead a day: nothing of theirs is left


def beat(db: Database, owner: str, *, ttl_s: float = TTL_S) -> bool:
    """Renew ``owner``'s heartbeat; False if it had expired (fenced: it stays expired)."""
    with db.write() as conn:
        return conn.execute(
            f"UPDATE replicas SET beat_until_ms = {now_sql(db)} + ? "
            f"WHERE owner = ? AND beat_until_ms >= {now_sql(db)}",
            (int(ttl_s * 1000), owner)).rowcount > 0


def resign(db: Database, owner: str) -> None:
    """End ``owner``'s heartbeat at once (a clean stop: its leftovers are taken over now)."""
    with db.write() as conn:
        conn.execute(f"UPDATE replicas SET beat_until_ms = {now_sql(db)} - 1 WHERE owner = ?",
                     (owner,))


def live(db: Database) -> list[str]:
    """The owners of the replicas alive now."""
    rows = db.query(f"SELECT owner FROM replicas WHERE beat_until_ms >= {now_sql(db)} "
                    "ORDER BY owner")
    return [row["owner"] for row in rows]


def resign_all(db: Database) -> None:
    """End every heartbeat: for a ``serve`` that holds a SQLite file's serve lock
    (engine/store/serve_lock.py), which proves that no other process serves the file, so
    that what a killed predecessor left is taken over at start, not once its heartbeat runs
    out."""
    with db.write() as conn:
        conn.execute(f"UPDATE replicas SET beat_until_ms = {now_sql(db)} - 1 "
                     f"WHERE beat_until_ms >= {now_sql(db)}")
