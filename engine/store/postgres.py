"""The PostgreSQL backend: a pool of psycopg 3 connections behind the same ``Database``.

Several replicas share one server. The store's SQL is written once, with ``?`` marks (SQLite's
style), which each statement here turns into psycopg's ``%s`` before it runs (a ``%`` in a
literal doubled). Write transactions of different replicas run side by side (READ COMMITTED):
each check-then-act of the store makes itself safe (engine/store/locks.py lists how: unique
indexes with ON CONFLICT, compare-and-sets, row locks, advisory locks per key). A transaction
the server rolls back to break a deadlock (or a serialization failure) leaves as
:class:`~engine.errors.TransactionConflict`: a batch then rolls back everything it wrote
(instead of committing it), and its caller runs it again (the worker: the event). Reads
outside a transaction use any pooled connection in autocommit.

A failure of the server (refused, gone, a lock not granted in time) leaves as
:class:`~engine.errors.StorageError`, which the receivers answer with 503.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool

from engine.errors import StorageError, TransactionConflict
from engine.store.db import POSTGRESQL, Database

__all__ = ["PostgresDatabase", "Row", "display_url", "sql_for_psycopg"]

CONFLICTS = ("40P01", "40001")
"""SQLSTATEs of a transaction the server rolled back for another's sake: deadlock detected,
serialization failure."""

LOCK_TIMEOUT_S = 10
"""How long a write waits for another replica's transaction before it fails (503)."""

IDLE_TX_TIMEOUT_S = 10
"""How long a write transaction may sit idle (its process not sending the next statement)
before the server ends its session, freeing its locks: a replica frozen mid-transaction
(SIGSTOP, a paused VM) would otherwise hold them, the inbox's claims lock or the leader
lease's row, and stop every other replica for as long as it is frozen. The heartbeat's TTL:
a replica idle that long is taken for dead anyway. Calls out are made outside transactions
(``outside``), so a live replica's stay far shorter."""

INSERT_CONFLICT_TRIES = 3
"""Tries of one group commit the server rolls back to break a deadlock: two replicas' batches
that hold the same new keys in opposite orders wait for each other's; the one run again
finds the other's rows stored (its events answer duplicate) instead of answering 503."""

POOL_MAX = 24
"""Connections per process: the worker's threads, the scheduler, the intake, the readers."""

LOST_TRIES = POOL_MAX + 1
"""Connections tried for one read, one BEGIN or one group commit whose pooled connection the
server had ended while it was idle (a restart, a failover, pg_terminate_backend, a proxy's
idle cut): the pool keeps such a connection until it is used, and each would otherwise fail
one request (503 for a whole group commit). One more than the pool holds."""


class Row(tuple[Any, ...]):
    """A row as ``sqlite3.Row`` is: a tuple of values, also readable by column name."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


@functools.lru_cache(maxsize=1024)
def sql_for_psycopg(sql: str) -> str:
    """``sql`` with each ``?`` outside a quoted literal or name as ``%s``, and every ``%``
    doubled (psycopg reads ``%`` as the start of a placeholder)."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        if char == "%":
            out.append("%%")
            continue
        out.append(char)
    return "".join(out)


def display_url(url: str) -> str:
    """``url`` without its password (the form that messages and logs show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


class _Connection:
    """A pooled connection that runs the store's ``?`` SQL."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(sql_for_psycopg(sql), tuple(params))


class PostgresDatabase(Database):
    """A PostgreSQL database shared by every replica (see the module's docstring)."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, sync_full: bool = False, migrate: bool = True,
                 pool_max: int = POOL_MAX) -> None:
        del sync_full  # the server's own durability settings apply
        self.url = url
        self.commits = 0
        """Write transactions committed (a statistic; the tests count them)."""
        self.path = display_url(url)
        self._lock = threading.RLock()  # this process's writers queue here, not on the server
        self._local = threading.local()  # .conn (in write()/batch()), .batch
        try:
            # One connection first: a server that refuses says why at once (the pool would
            # only time out).
            psycopg.connect(url, connect_timeout=LOCK_TIMEOUT_S).close()
            self._pool = psycopg_pool.ConnectionPool(
                url, min_size=1, max_size=pool_max, open=False, timeout=LOCK_TIMEOUT_S,
                kwargs={"autocommit": True, "row_factory": _row_factory},
                name="remediator",
            )
            self._pool.open(wait=True, timeout=LOCK_TIMEOUT_S)
        except (psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
            raise StorageError(f"cannot open database {self.path}: {_reason(exc)}") from exc
        if migrate:
            from engine.store.migrate import apply

            try:
                apply(self)
            except StorageError:
                self.close()
                raise

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection of its own, in autocommit (migrations, session locks)."""
        try:
            with self._pool.connection() as raw:
                yield raw
        except psycopg_pool.PoolTimeout as exc:
            raise StorageError(f"database unavailable: {_reason(exc)}") from exc
        except psycopg.Error as exc:
            raise StorageError(f"database unavailable: {_reason(exc)}") from exc

    @contextmanager
    def write(self) -> Iterator[_Connection]:
        """One write transaction; inside :meth:`batch` a savepoint of the batch's transaction
        (rolled back alone on error; a conflict then rolls the batch back)."""
        held: _Connection | None = getattr(self._local, "conn", None)
        if held is not None:
            try:
                held.execute("SAVEPOINT w")
            except psycopg.Error as exc:
                raise StorageError(f"database unavailable: {_reason(exc)}") from exc
            try:
                yield held
                held.execute("RELEASE SAVEPOINT w")
            except psycopg.Error as exc:
                with contextlib.suppress(psycopg.Error):
                    held.execute("ROLLBACK TO SAVEPOINT w")
                    held.execute("RELEASE SAVEPOINT w")
                raise _write_failed(exc) from exc
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    held.execute("ROLLBACK TO SAVEPOINT w")
                    held.execute("RELEASE SAVEPOINT w")
                raise
            return
        conn = self._begin()
        try:
            yield conn
        except psycopg.Error as exc:
            self._end(conn, commit=False)
            raise _write_failed(exc) from exc
        except BaseException:
            self._end(conn, commit=False)
            raise
        self._end(conn, commit=True)

    def _begin(self) -> _Connection:
        """Take this process's writer lock and a connection, begin; StorageError (nothing
        held) if any of it fails."""
        self._lock.acquire()
        for tries in range(1, LOST_TRIES + 1):
            try:
                raw = self._pool.getconn()
            except psycopg_pool.PoolTimeout as exc:
                self._lock.release()
                raise StorageError(f"database unavailable: {_reason(exc)}") from exc
            try:
                # One round trip (no parameters: the simple protocol takes several statements).
                raw.execute(f"BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'; "
                            f"SET LOCAL idle_in_transaction_session_timeout = "
                            f"'{IDLE_TX_TIMEOUT_S}s'")
            except psycopg.Error as exc:
                if raw.broken and tries < LOST_TRIES:  # ended while idle: nothing began
                    self._pool.putconn(raw)  # the pool drops it
                    continue
                self._release(raw, broken=True)
                raise StorageError(f"database unavailable: {_reason(exc)}") from exc
            conn = _Connection(raw)
            self._local.conn = conn
            return conn
        raise AssertionError("unreachable: the last try returns or raises")

    def _end(self, conn: _Connection, *, commit: bool) -> None:
        """Commit (or roll back) and give everything back; a failed commit raises
        StorageError."""
        self._local.conn = None
        try:
            conn.execute("COMMIT" if commit else "ROLLBACK")
        except psycopg.Error as exc:
            self._release(conn.raw, broken=True)
            if commit:
                raise _write_failed(exc) from exc
            return
        self.commits += commit
        self._release(conn.raw, broken=False)

    def _release(self, raw: psycopg.Connection[Any], *, broken: bool) -> None:
        try:
            if broken:
                with contextlib.suppress(psycopg.Error):
                    raw.rollback()
            self._pool.putconn(raw)
        finally:
            self._local.conn = None
            self._lock.release()

    def insert_now(self, sql: str, params: Sequence[Any], *, notify: str) -> list[Any]:
        """The rows of one statement (psycopg's marks: ``%s``, ``%b``) that settles its own
        conflicts, committed with a NOTIFY on ``notify`` before this returns,
        in ONE round trip: psycopg's pipeline of two statements (the lock timeout and the
        NOTIFY, then ``sql``) and a sync, which PostgreSQL runs as one implicit transaction,
        committed at the sync, rolled back whole if either fails. The intake's group commit.
        Rolled back to break a deadlock with another replica's, it is run again
        (:data:`INSERT_CONFLICT_TRIES`).
        Inside this thread's transaction (:meth:`batch`): run there, in a savepoint."""
        if getattr(self._local, "conn", None) is not None:
            with self.write() as held:
                held.raw.execute("SELECT pg_notify(%s, '')", (notify,))
                return held.raw.execute(sql, params).fetchall()
        conflicts = lost = 0
        while True:
            try:
                rows = self._insert_once(sql, params, notify)
            except TransactionConflict:  # a deadlock's loser: nothing of it was committed
                conflicts += 1
                if conflicts == INSERT_CONFLICT_TRIES:
                    raise
                continue
            except _Lost:  # run again: a commit that did happen makes its rows duplicates
                lost += 1
                if lost == LOST_TRIES:
                    raise
                continue
            self.commits += 1
            return rows

    def _insert_once(self, sql: str, params: Sequence[Any], notify: str) -> list[Any]:
        """One try of :meth:`insert_now`: its rows, or StorageError (nothing committed)."""
        try:
            raw = self._pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise StorageError(f"database unavailable: {_reason(exc)}") from exc
        try:
            cursor = raw.cursor()
            with raw.pipeline():
                raw.execute("SELECT set_config('lock_timeout', %s, true), pg_notify(%s, '')",
                            (f"{LOCK_TIMEOUT_S}s", notify))
                cursor.execute(sql, params)
            return cursor.fetchall()
        except psycopg.Error as exc:
            if raw.broken:
                raise _Lost(f"write failed: {_reason(exc)}") from exc
            raise _write_failed(exc) from exc
        finally:
            self._pool.putconn(raw)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """This thread's writes in the block share one transaction (see
        :meth:`SqliteDatabase.batch`); committed on exit, also when the block raises, except
        for a :class:`~engine.errors.TransactionConflict`: the server chose the transaction
        as a deadlock's loser, and it is rolled back whole, to be run again."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        conn = self._begin()
        try:
            yield
        except BaseException as exc:
            current = getattr(self._local, "conn", None)
            if current is not None:
                with contextlib.suppress(StorageError):
                    self._end(current, commit=not isinstance(exc, TransactionConflict))
            raise
        current = getattr(self._local, "conn", None)
        if current is not None:
            self._end(current, commit=True)
        del conn

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Inside :meth:`batch`: commit what it wrote and give back the locks for the block,
        then begin again. Outside a batch, nothing."""
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            yield
            return
        self._end(conn, commit=True)
        try:
            yield
        finally:
            self._begin()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read-only statement: on this thread's transaction if it has one (it
        sees what it wrote), else on any pooled connection."""
        held: _Connection | None = getattr(self._local, "conn", None)
        for tries in range(1, LOST_TRIES + 1):
            try:
                if held is not None:
                    return held.execute(sql, params).fetchall()
                with self._pool.connection() as raw:
                    try:
                        return _Connection(raw).execute(sql, params).fetchall()
                    except psycopg.Error:
                        if raw.broken and tries < LOST_TRIES:  # a read: run it again
                            continue
                        raise
            except psycopg_pool.PoolTimeout as exc:
                raise StorageError(f"read failed: {_reason(exc)}") from exc
            except psycopg.Error as exc:
                raise StorageError(f"read failed: {_reason(exc)}") from exc
        raise AssertionError("unreachable: the last try returns or raises")

    def listen(self, channel: str, on_notify: Callable[[str], None], stop: threading.Event,
               *, poll_s: float = 1.0) -> None:
        """Call ``on_notify(payload)`` for each NOTIFY on ``channel`` until ``stop`` is set,
        on a connection of its own (outside the pool: it waits for ever). A lost connection
        is opened again after ``poll_s``; meanwhile the callers' polling covers the gap."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True,
                                     connect_timeout=LOCK_TIMEOUT_S) as conn:
                    conn.execute(f"LISTEN {channel}")
                    on_notify("")  # (re)connected: what was sent meanwhile is looked for
                    while not stop.is_set():
                        for note in conn.notifies(timeout=poll_s):
                            on_notify(note.payload)
            except psycopg.Error:
                stop.wait(poll_s)

    def close(self) -> None:
        """Close the pool; the data stays on the server."""
        self._pool.close()


class _Lost(StorageError):
    """A group commit's connection was found ended: whether it committed is not known, and
    running it again is safe (its rows are then duplicates of themselves)."""


def _write_failed(exc: psycopg.Error) -> StorageError:
    """The StorageError of a failed write: a :class:`TransactionConflict` when the server
    rolled it back for another transaction's sake."""
    if exc.sqlstate in CONFLICTS:
        return TransactionConflict(f"write failed: {_reason(exc)} (rolled back, run again)")
    return StorageError(f"write failed: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """The first line of a driver error (its detail lines may quote the statement)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
