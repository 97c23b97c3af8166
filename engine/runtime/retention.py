"""Retention: raw payloads older than ``[retention] raw_payload_days`` are dropped (nulled).

Only the inbox's ``raw`` column is touched; the normalized events, the incidents and the audit
log stay whole, so the audit chain verifies before and after (its rows are never updated).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from engine.clock import Clock, SystemClock, to_ms
from engine.config import Settings
from engine.store import retention as retention_store
from engine.store.db import Database

if TYPE_CHECKING:
    from engine.runtime.scheduler import Scheduler

__all__ = ["register", "run_retention"]


def run_retention(db: Database, settings: Settings, *, now: datetime) -> int:
    """Drop the raw payloads received before ``now - raw_payload_days``; returns how many.

    ``raw_payload_days = 0`` keeps everything. Raises StorageError if the database fails.
    """
    days = settings.retention.raw_payload_days
    if days <= 0:
        return 0
    return retention_store.drop_raw_payloads(db, before_ms=to_ms(now - timedelta(days=days)))


def register(scheduler: Scheduler, db: Database, settings: Settings,
             clock: Clock | None = None) -> Callable[[], int]:
    """Add retention to ``scheduler`` (``add_periodic(name, func, every_s)``) every
    ``[retention] every_s`` seconds; returns the job function."""
    source = clock or SystemClock()

    def job() -> int:
        return run_retention(db, settings, now=source.now())

    scheduler.add_periodic("retention", job, settings.retention.every_s, leader_only=True)
    return job
