"""The database handle: which backend, its connections and its transactions.

``Database`` is the one interface of both backends: an embedded SQLite file (WAL, this
module's :class:`SqliteDatabase`, the default) and a PostgreSQL server for several replicas
(engine/store/postgres.py). ``Database(target)`` opens the backend ``target`` names: a
``postgresql://`` URL, else a SQLite file. Each table family has its own module (``inbox``,
...) whose functions take the ``Database`` and write the SQL both backends run, with
:class:`Dialect` for the few spellings that differ. Every database failure leaves as
:class:`~engine.errors.StorageError`, which the receivers answer with 503 (a status Azure
Monitor retries).
"""

from __future__ import annotations

import abc
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import sqlite_utils

from engine.errors import StorageError
from engine.store import (
    actions,
    audit,
    handling,
    inbox,
    incidents,
    leases,
    metrics,
    rca,
    replicas,
    reporting,
    silences,
    state,
)

__all__ = ["SQLITE", "Database", "Dialect", "SqliteDatabase", "is_server_url"]

SCHEMA = (inbox, incidents, actions, audit, state, metrics, reporting, rca, replicas, leases,
          handling, silences)
"""The table families whose ``create_schema`` runs when a SQLite database is opened, in order
(each module imports ``Database`` for its annotations only, so this import is one way). A
PostgreSQL database gets the same tables from engine/store/migrations/."""

_SERVER_SCHEMES = ("postgresql://", "postgres://")


def is_server_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL server (a ``postgresql://`` URL), not a file."""
    return str(target).startswith(_SERVER_SCHEMES)


class Dialect(msgspec.Struct, frozen=True):
    """The few spellings the two backends do not share."""

    name: str
    greatest: str
    """The larger of two values: SQLite's scalar ``max``, PostgreSQL's ``GREATEST``."""
    rowid: str
    """The events' insertion order: SQLite's ``rowid``, a PostgreSQL identity column."""
    unindexed: str
    """Put before a column to keep the planner off its index (SQLite's unary ``+``)."""
    skip_locked: str
    """After a claim's SELECT: pass over rows another transaction holds (PostgreSQL)."""


SQLITE = Dialect(name="sqlite", greatest="max", rowid="rowid", unindexed="+", skip_locked="")
POSTGRESQL = Dialect(name="postgresql", greatest="GREATEST", rowid="seq", unindexed="",
                     skip_locked=" FOR UPDATE SKIP LOCKED")


class Database(abc.ABC):
    """The store's handle, whichever backend holds the data.

    ``write()`` is one write transaction (a savepoint inside ``batch()``); ``batch()`` shares
    one transaction among a thread's writes; ``outside()`` commits a batch around a call out;
    ``query()`` reads (inside this thread's transaction: what it wrote). SQLite runs its
    write transactions one at a time; PostgreSQL runs those of several replicas side by
    side, so a check-then-act of the store makes itself safe (engine/store/locks.py).
    """

    dialect: Dialect
    path: str
    """What was opened, fit for a message (a URL without its password)."""

    def __new__(cls, target: str | Path = "", *args: Any, **kwargs: Any) -> Database:
        if cls is Database:
            if is_server_url(target):
                from engine.store.postgres import PostgresDatabase

                cls = PostgresDatabase
            else:
                cls = SqliteDatabase
        return super().__new__(cls)

    @abc.abstractmethod
    def write(self) -> contextlib.AbstractContextManager[Any]:
        """One write transaction, committed on exit, rolled back on error."""

    @abc.abstractmethod
    def batch(self) -> contextlib.AbstractContextManager[None]:
        """This thread's writes in the block share one transaction."""

    @abc.abstractmethod
    def outside(self) -> contextlib.AbstractContextManager[None]:
        """Inside :meth:`batch`: commit, run the block with nothing held, begin again."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read-only statement (each readable by column name and by position)."""

    def ping(self) -> bool:
        """Whether the database answers a trivial query (for ``/ready``)."""
        try:
            self.query("SELECT 1")
        except StorageError:
            return False
        return True

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connections; the data stays."""

    def listen(self, channel: str, on_notify: Callable[[str], None], stop: threading.Event,
               *, poll_s: float = 1.0) -> None:
        """Call ``on_notify`` for each notification on ``channel`` until ``stop``: a server
        backend's wake-ups across replicas. SQLite has none (one process: the intake wakes
        the worker itself), so this returns at once."""
        del channel, on_notify, stop, poll_s


class SqliteDatabase(Database):
    """One SQLite file shared by the receivers, the worker and the scheduler.

    Writes go through a single connection guarded by a lock: SQLite serializes writers
    anyway, and one connection keeps commits cheap. Reads outside a transaction go through a
    read-only connection of their own thread (WAL lets them run beside the writer and see
    every committed write), so that readers do not queue behind writers for the lock.
    ``synchronous=NORMAL`` in WAL mode makes every commit durable against a crash of the
    process; ``sync_full=True`` also against power loss.
    """

    dialect = SQLITE

    def __init__(self, path: str | Path, *, sync_full: bool = False) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._local = threading.local()  # .txn: in write()/batch(); .batch; .reader
        self._readers: dict[threading.Thread, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        self._closed = False
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if sync_full else 'NORMAL'}")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self.utils = sqlite_utils.Database(self._conn)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open database {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        with self.write():
            for module in SCHEMA:
                module.create_schema(self)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on exit, rolled back on error.

        Inside :meth:`batch` it is a savepoint of the batch's transaction instead: rolled back
        alone on error, committed with the batch."""
        if getattr(self._local, "batch", False):
            yield from self._scope("SAVEPOINT w", "RELEASE w", self._undo_savepoint)
            return
        with self._lock:
            self._local.txn = True
            try:
                yield from self._scope("BEGIN IMMEDIATE", "COMMIT", self._rollback)
            finally:
                self._local.txn = False

    def _scope(
        self, begin: str, end: str, undo: Callable[[], None]
    ) -> Iterator[sqlite3.Connection]:
        """``begin``, the block, ``end``; ``undo`` if the block or ``end`` fails. SQLite's
        errors leave as StorageError (a failed ``begin``: the database is unavailable)."""
        try:
            self._conn.execute(begin)
        except sqlite3.Error as exc:
            raise StorageError(f"database unavailable: {exc}") from exc
        try:
            yield self._conn
            self._conn.execute(end)
        except sqlite3.Error as exc:
            undo()
            raise StorageError(f"write failed: {exc}") from exc
        except BaseException:
            undo()
            raise

    def _undo_savepoint(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK TO w")
            self._conn.execute("RELEASE w")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """This thread's writes in the block share one transaction (fewer commits, and the
        lock taken once): each :meth:`write` in it is a savepoint. What was written is
        committed on exit, also when the block raises (as separate writes would have been).
        Other threads wait for the lock meanwhile: keep calls out of the block, or wrap them
        in :meth:`outside`. A batch inside a batch is the outer one."""
        if getattr(self._local, "batch", False):
            yield
            return
        self._begin_batch()
        try:
            yield
        except BaseException:
            self._end_batch(raise_errors=False)  # the block's own error is the one to see
            raise
        self._end_batch(raise_errors=True)

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Inside :meth:`batch`: commit what the batch wrote and release the lock for the
        block (a cloud call: what precedes it, e.g. an action's intent, is committed before
        it), then begin a new batch. Outside a batch, nothing."""
        if not getattr(self._local, "batch", False):
            yield
            return
        self._end_batch(raise_errors=True)
        try:
            yield
        finally:
            self._begin_batch()

    def _begin_batch(self) -> None:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise StorageError(f"database unavailable: {exc}") from exc
        self._local.batch = self._local.txn = True

    def _end_batch(self, *, raise_errors: bool) -> None:
        """Commit the batch (roll back if the commit fails) and release the lock; a failed
        commit raises StorageError when ``raise_errors``."""
        if not getattr(self._local, "batch", False):
            return  # outside() could not begin again: nothing is held
        self._local.batch = self._local.txn = False
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._lock.release()
            if raise_errors:
                raise StorageError(f"write failed: {exc}") from exc
            return
        self._lock.release()

    def _rollback(self) -> None:
        # The transaction may already be gone: SQLite rolls back by itself on some errors.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Rows of a read-only statement (in a transaction of this thread: its connection,
        which sees what the transaction wrote; else this thread's read connection)."""
        reader = None if getattr(self._local, "txn", False) else self._reader()
        if reader is not None:
            try:
                return reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"read failed: {exc}") from exc
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"read failed: {exc}") from exc

    def _reader(self) -> sqlite3.Connection | None:
        """This thread's read-only connection (None for an in-memory database: one only)."""
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if reader is not None or self.path == ":memory:":
            return reader
        with self._readers_lock:
            if self._closed:
                raise StorageError("read failed: Cannot operate on a closed database.")
            try:
                reader = sqlite3.connect(self.path, check_same_thread=False,
                                         isolation_level=None, timeout=5.0)
                reader.row_factory = sqlite3.Row
                reader.execute("PRAGMA busy_timeout=5000")
                reader.execute("PRAGMA query_only=ON")
            except sqlite3.Error as exc:
                raise StorageError(f"read failed: {exc}") from exc
            for thread in [t for t in self._readers if not t.is_alive()]:
                self._readers.pop(thread).close()  # threads come and go (e.g. anyio's)
            self._readers[threading.current_thread()] = reader
        self._local.reader = reader
        return reader

    def close(self) -> None:
        """Close the connections; the file stays."""
        with self._readers_lock:
            self._closed = True
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()
        with self._lock:
            self._conn.close()
