"""The audit chainer: on PostgreSQL the leader links the records every replica appended
unlinked (engine/store/audit.py, ``link``), every :data:`EVERY_S`.

It runs on the leader only (``leader_only``), fenced by the leader lease's epoch: a replica
that lost the lease (a pause longer than it) links nothing, and the new leader links on from
the head. A tick links in bounded batches (each its own short transaction, the head row held
only meanwhile) until nothing waits or :data:`MAX_BATCHES` are done; the rest waits for the
next tick. SQLite links inline and registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from engine.errors import StorageError
from engine.store import audit as audit_store
from engine.store.db import Database

if TYPE_CHECKING:
    from engine.runtime.scheduler import Scheduler

__all__ = ["EVERY_S", "MAX_BATCHES", "link_pending", "register"]

log = structlog.get_logger("remediator.chainer")

EVERY_S = 0.5
"""How often the leader links: the chain's lag is about this, under any load it keeps up with
(a batch of 500 records took 65 ms on the 2-core test box: about 7,700 records/s)."""
MAX_BATCHES = 20
"""Batches per tick at most (10,000 records), so that a tick ends and the lag stays measured."""


def link_pending(db: Database, fence: Callable[[], tuple[str, int]], *,
                 batch: int = audit_store.LINK_BATCH, max_batches: int = MAX_BATCHES) -> int:
    """Link what waits, batch after batch, while this replica holds the lease ``fence()``
    names; returns how many records were linked. A fenced batch (the lease lost) or a
    database failure ends the tick (logged, never raised: the next tick tries again)."""
    linked = 0
    for _ in range(max_batches):
        try:
            done = audit_store.link(db, fence=fence(), limit=batch)
        except StorageError as exc:
            log.warning("audit_chain_failed", error=str(exc))
            break
        if done is None:
            log.warning("audit_chain_fenced", detail="the leader lease was lost: the new "
                        "leader links on from the head")
            break
        linked += done
        if done < batch:
            break
    return linked


def register(scheduler: Scheduler, db: Database,
             fence: Callable[[], tuple[str, int]]) -> Callable[[], int] | None:
    """Add the chainer to ``scheduler`` as a leader's job (PostgreSQL only); returns it."""
    if db.dialect.name != "postgresql":
        return None

    def job() -> int:
        return link_pending(db, fence)

    scheduler.add_periodic("audit-chain", job, EVERY_S, leader_only=True)
    return job
