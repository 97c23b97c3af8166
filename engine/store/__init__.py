"""The only place that speaks SQL: an embedded SQLite database (one file, WAL).

``Database`` owns the connection, the schema and the transaction discipline; each table family
has its own module (``inbox``, ...) whose functions take the ``Database``. Every SQLite failure
leaves as :class:`~engine.errors.StorageError`, which the receivers answer with 503 (a status
Azure Monitor retries). A PostgreSQL backend can follow behind the same functions.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.errors import StorageError

__all__ = ["Database", "new_id"]


def new_id(prefix: str) -> str:
    """A unique id that sorts by creation time: ``evt_0193a1b2c3d4e5f6a7b8c9``."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"


class Database:
    """One SQLite file shared by the receivers, the worker and the scheduler.

    A single connection guarded by a lock: SQLite serializes writers anyway, and one
    connection keeps commits cheap. ``synchronous=NORMAL`` in WAL mode makes every commit
    durable against a crash of the process; ``sync_full=True`` also against power loss.
    """

    def __init__(self, path: str | Path, *, sync_full: bool = False) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
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
        # Imported here: each table module imports Database for its type hints.
        from engine.store import actions, audit, inbox, incidents, metrics, rca, reporting, state

        with self.write():
            for module in (inbox, incidents, actions, audit, state, metrics, reporting, rca):
                module.create_schema(self)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on exit, rolled back on error."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"database unavailable: {exc}") from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"write failed: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # The transaction may already be gone: SQLite rolls back by itself on some errors.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Rows of a read-only statement."""
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"read failed: {exc}") from exc

    def ping(self) -> bool:
        """Whether the database answers a trivial query (for ``/ready``)."""
        try:
            self.query("SELECT 1")
        except StorageError:
            return False
        return True

    def close(self) -> None:
        """Close the connection; the file stays."""
        with self._lock:
            self._conn.close()
