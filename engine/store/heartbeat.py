"""The intake's write probe: one row written again to prove that a write commits now.

``/ready`` has the intake's writer make it when no webhook was committed lately
(:meth:`receivers.group_commit.GroupCommitter.ready`). It is a real write, not
``BEGIN IMMEDIATE; ROLLBACK``: on a file system that went read-only under SQLite (ext4's
``errors=remount-ro``) the write lock is still taken and released without error; only writing
a page fails (tests/reliability/test_storage_faults.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["KEY", "beat"]

KEY = "intake:heartbeat"
"""The row of the ``state`` table (engine/store/state.py) that the probe writes."""


def beat(db: Database) -> None:
    """Write the heartbeat row (the time, in ms) and commit. Raises StorageError."""
    now_ms = time.time_ns() // 1_000_000
    with db.write() as conn:
        conn.execute(
            "INSERT INTO state (key, value, updated_ms) VALUES (?, ?, ?) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
            (KEY, str(now_ms), now_ms),
        )
