"""Named leases with an epoch, on the database's clock: the leader of the replicas.

What must run once across every replica (the pollers, retention) runs on the holder of the
``leader`` lease. The holder renews it every beat (engine/runtime/liveness.py); when it lapses
(the holder died) or is released (a clean stop), the next replica to ask takes it, and the
epoch counts up, so that a write made under an older epoch can be told apart (and refused:
:func:`held_sql`). On PostgreSQL a session lock backs the lease (engine/store/lease_lock.py):
the holder of the lock takes the row at once, lapsed or not. ``ticked_ms`` is when the holder
last began a leader-only job (:func:`mark_tick`): the leader's work runs, not only its lease.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.store.replicas import now_sql

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["LEADER", "create_schema", "current", "fence_sql", "held_sql", "hold", "mark_tick",
           "release", "ticked"]

LEADER = "leader"


def create_schema(db: Database) -> None:
    """The leases table (PostgreSQL: migrations 0004 and 0009)."""
    db.utils["leases"].create(
        {"name": str, "holder": str, "epoch": int, "until_ms": int}, pk="name",
        if_not_exists=True)
    if "ticked_ms" not in db.utils["leases"].columns_dict:
        db.utils["leases"].add_column("ticked_ms", int, not_null_default=0)


def hold(db: Database, name: str, holder: str, *, ttl_s: float) -> int | None:
    """Take or renew the lease for ``ttl_s``; its epoch if ``holder`` holds it now, else None
    (another holder's lease runs)."""
    now = now_sql(db)
    same = f"leases.holder = excluded.holder AND leases.until_ms >= {now}"  # a renewal
    with db.write() as conn:
        row = conn.execute(
            f"""INSERT INTO leases (name, holder, epoch, until_ms) VALUES (?, ?, 1, {now} + ?)
                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                    epoch = CASE WHEN {same} THEN leases.epoch ELSE leases.epoch + 1 END,
                    ticked_ms = CASE WHEN {same} THEN leases.ticked_ms ELSE 0 END,
                    until_ms = excluded.until_ms
                WHERE leases.holder = excluded.holder OR leases.until_ms < {now}
                RETURNING epoch""",
            (name, holder, int(ttl_s * 1000))).fetchone()
    return None if row is None else int(row["epoch"])


def release(db: Database, name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop: the next replica takes it at its next beat)."""
    with db.write() as conn:
        conn.execute(f"UPDATE leases SET until_ms = {now_sql(db)} - 1 "
                     "WHERE name = ? AND holder = ?", (name, holder))


def current(db: Database, name: str) -> tuple[str, int] | None:
    """(holder, epoch) of the unexpired lease, or None."""
    rows = db.query(f"SELECT holder, epoch FROM leases WHERE name = ? AND until_ms >= "
                    f"{now_sql(db)}", (name,))
    return (rows[0]["holder"], int(rows[0]["epoch"])) if rows else None


def held_sql(db: Database) -> str:
    """A condition for a fenced write: the lease ``?`` (name) is held by ``?`` (holder) under
    epoch ``?``, unexpired; on PostgreSQL its row stays locked to the end of the transaction
    (:func:`fence_sql`), so that the write commits before a new holder takes the lease, or is
    refused."""
    return f"EXISTS ({fence_sql(db)})"


def fence_sql(db: Database) -> str:
    """A query for a fenced transaction: one row if the lease ``?`` (name) is held by ``?``
    (holder) under epoch ``?``, unexpired; on PostgreSQL the row stays locked (FOR SHARE) to
    the end of the transaction, so that no other holder can take the lease meanwhile (its
    :func:`hold` waits), and every write of the transaction is made under that epoch."""
    return _held(db) + (" FOR SHARE" if db.dialect.name == "postgresql" else "")


def _held(db: Database) -> str:
    return (f"SELECT 1 FROM leases l WHERE l.name = ? AND l.holder = ? AND l.epoch = ? AND "
            f"l.until_ms >= {now_sql(db)}")


def mark_tick(db: Database, name: str, holder: str, epoch: int) -> bool:
    """Record that ``holder`` begins a job of the lease ``name`` under ``epoch`` now; False
    (nothing written) if it no longer holds it under that epoch."""
    with db.write() as conn:
        return conn.execute(
            f"UPDATE leases SET ticked_ms = {now_sql(db)} "
            "WHERE name = ? AND holder = ? AND epoch = ?", (name, holder, epoch)).rowcount > 0


def ticked(db: Database, name: str) -> tuple[int, int]:
    """(epoch, ticked_ms) of the lease ``name``: when its holder under that epoch last began a
    job (0: not yet), or (0, 0) if it was never held."""
    rows = db.query("SELECT epoch, ticked_ms FROM leases WHERE name = ?", (name,))
    return (int(rows[0]["epoch"]), int(rows[0]["ticked_ms"])) if rows else (0, 0)
