"""The leader lease's session lock on PostgreSQL: a dead leader's lease is free at once.

The leader holds a session-level advisory lock (:data:`LEADER_LOCK`) on a connection of its
own, outside the pool. When its process dies (kill -9, a crash) the kernel closes the socket
and the server frees the lock, so a candidate's next try gets it at once instead of when the
lease row lapses. The holder of the lock takes the lease row under a new epoch even if the row
has not lapsed: the lock proves the previous holder's session is gone, and that holder's
fenced writes (:func:`engine.store.leases.held_sql`) are refused from then on. A fenced write
holds the lease row (``FOR SHARE``) to its commit and the take updates that row, so a fenced
write commits either before the take or not at all.

The row's lapse stays the fallback for a leader that is hung but still connected (its lock
would be held for ever): once the row has lapsed for :data:`STALE_MS`, a candidate ends that
session on the server (``pg_terminate_backend``: the replicas share one role), which frees
the lock. Its keepalives (both sides) end a session whose host vanished.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from engine.errors import StorageError
from engine.store.leases import LEADER
from engine.store.postgres import PostgresDatabase, _reason
from engine.store.replicas import now_sql

__all__ = ["END_WAIT_MS", "LEADER_LOCK", "STALE_MS", "LeaseLock"]

LEADER_LOCK = 0x52454D4C
"""The session advisory lock of the leader ("REML")."""

STALE_MS = 1000
"""How long the lease row must have lapsed, its lock still held, before the holder's session
is ended (more than a new holder needs between its lock and its take)."""

END_WAIT_MS = 2000
"""How long ending a hung holder's session waits for it to be gone (its lock freed)."""

_SETUP = ("SET statement_timeout = '5s'; SET lock_timeout = '5s'; "
          "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
          "SET tcp_keepalives_count = 3")
"""The session's own bounds; the server-side keepalives end it ~11 s after its host vanished
(loopback and sockets ignore them)."""


class LeaseLock:
    """``holder``'s session lock of the lease ``name`` on ``db`` (one connection, opened at
    the first try, closed when given up). Not thread-safe: one caller at a time."""

    def __init__(self, db: PostgresDatabase, holder: str, *, name: str = LEADER,
                 key: int = LEADER_LOCK) -> None:
        self.db, self.holder, self.name, self.key = db, holder, name, key
        self._now = now_sql(db)
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            conn = psycopg.connect(self.db.url, autocommit=True, connect_timeout=5,
                                   keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                   keepalives_count=3, tcp_user_timeout=10_000)
            try:
                conn.execute(_SETUP)
            except psycopg.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def try_take(self, *, ttl_s: float) -> int | None:
        """Try the lock; once held, take the lease for ``ttl_s`` under a new epoch and return
        it. None: another session holds the lock. StorageError (connection closed, nothing
        held) if the server fails."""
        try:
            conn = self._connection()
            [(got,)] = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchall()
            if not got:
                return None
            # The update waits for fenced writes holding the row (FOR SHARE) to commit.
            [(epoch,)] = conn.execute(
                f"""INSERT INTO leases (name, holder, epoch, until_ms, ticked_ms)
                    VALUES (%s, %s, 1, {self._now} + %s, 0)
                    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                        epoch = leases.epoch + 1, until_ms = excluded.until_ms,
                        ticked_ms = 0
                    RETURNING epoch""",
                (self.name, self.holder, int(ttl_s * 1000))).fetchall()
            return int(epoch)
        except psycopg.Error as exc:
            self.close()
            raise StorageError(f"leader lock not taken: {_reason(exc)}") from exc

    def renew(self, epoch: int, *, ttl_s: float) -> bool:
        """Extend the lease held under ``epoch`` by ``ttl_s``, on the lock's own session;
        False (and the connection closed: the lock is free) if the session is gone or the
        lease has another epoch now."""
        try:
            renewed = self._connection().execute(
                f"UPDATE leases SET until_ms = {self._now} + %s "
                "WHERE name = %s AND holder = %s AND epoch = %s",
                (int(ttl_s * 1000), self.name, self.holder, epoch)).rowcount > 0
        except psycopg.Error:
            renewed = False
        if not renewed:
            self.close()
        return renewed

    def alive(self) -> bool:
        """Whether the lock's session still answers (False: closed, the lock is free)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self.close()
            return False
        return True

    def end_stale(self) -> int:
        """End the session that holds the lock while the lease row has lapsed for
        :data:`STALE_MS` (a hung leader); how many were ended (0 or 1)."""
        try:
            rows = self._connection().execute(
                f"""SELECT pg_terminate_backend(l.pid, %s) FROM pg_locks l
                    JOIN pg_database d ON d.oid = l.database
                    WHERE d.datname = current_database() AND l.locktype = 'advisory'
                      AND l.granted AND l.classid = {self.key >> 32}
                      AND l.objid = {self.key & 0xFFFFFFFF} AND l.objsubid = 1
                      AND l.pid <> pg_backend_pid()
                      AND NOT EXISTS (SELECT 1 FROM leases
                                      WHERE name = %s AND until_ms >= {self._now} - %s)""",
                (END_WAIT_MS, self.name, STALE_MS)).fetchall()
        except psycopg.Error as exc:
            self.close()
            raise StorageError(f"leader lock not checked: {_reason(exc)}") from exc
        return sum(1 for (ended,) in rows if ended)

    def release(self, epoch: int) -> None:
        """Resign: the lease held under ``epoch`` lapses now and the lock is freed (the next
        candidate's try takes both)."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute(
                    f"UPDATE leases SET until_ms = {self._now} - 1 "
                    "WHERE name = %s AND holder = %s AND epoch = %s",
                    (self.name, self.holder, epoch))
        self.close()

    def close(self) -> None:
        """Close the connection: the server frees the lock with the session."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
