"""One ``serve`` per SQLite file: a second one refuses to start instead of racing the first.

A SQLite file has one writer process by design (docs/DEPLOY.md): two services on one file
would each reconcile the other's in-flight actions as crashed and run the same lanes twice.
``serve`` holds an exclusive ``flock`` on ``<file>-serve.lock`` while it runs; the kernel drops
it when the process ends, however it ends (kill -9 too), so a stale lock never blocks a restart.
The other commands (audit, incidents, ...) do not take it: they may read and write beside a
running service. PostgreSQL needs no such lock: its replicas share the database safely.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from engine.errors import StorageError

__all__ = ["ServeLock"]


class ServeLock:
    """The lock of one SQLite file for one ``serve`` process."""

    def __init__(self, db_path: str) -> None:
        self.path = Path(f"{db_path}-serve.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; StorageError naming the holder's pid if another serve has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StorageError(
                f"another `remediator serve` (pid {holder}) is running on "
                f"{self.path.name.removesuffix('-serve.lock')}: one service per SQLite file; "
                "run several replicas on PostgreSQL (--db postgresql://..., docs/DEPLOY.md)"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot lock {self.path}: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (the file stays: removing it would race a starting serve)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
