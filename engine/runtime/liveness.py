"""This replica's heartbeat (engine/store/replicas.py): registered when the service starts,
renewed every :data:`~engine.store.replicas.BEAT_S` in a thread of its own, resigned on stop.

While the heartbeat lives, no other replica reclaims this one's events or reconciles its
calls in flight. If it cannot be renewed in time (the database unreachable, the process
starved), it expires: the others take the work over, and the database refuses this replica
any new call (``actions.start``) and any outcome on a row taken over. It stays fenced (the
row is not renewed once expired); ``fenced`` says so, and the process must restart.
"""

from __future__ import annotations

import threading

import structlog

from engine.errors import StorageError
from engine.store import leases, replicas
from engine.store.db import Database

__all__ = ["Liveness"]

log = structlog.get_logger("remediator.liveness")


class Liveness:
    """The heartbeat of one replica (``owner``)."""

    def __init__(self, db: Database, owner: str, *, beat_s: float = replicas.BEAT_S,
                 ttl_s: float = replicas.TTL_S) -> None:
        self.db, self.owner, self.beat_s, self.ttl_s = db, owner, beat_s, ttl_s
        self.fenced = False
        self.epoch: int | None = None
        """The leader lease's epoch while this replica leads, else None."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Register (StorageError if the database refuses: the service must not start) and
        begin beating."""
        replicas.register(self.db, self.owner, ttl_s=self.ttl_s)
        self._lead()
        self._thread = threading.Thread(target=self._run, name="remediator-heartbeat",
                                        daemon=True)
        self._thread.start()

    def beat(self) -> bool:
        """Renew once; False once fenced (or while the database cannot be reached)."""
        try:
            alive = replicas.beat(self.db, self.owner, ttl_s=self.ttl_s)
        except StorageError as exc:
            log.warning("heartbeat_failed", owner=self.owner, error=str(exc))
            self.epoch = None  # a leader that cannot reach the database leads no more
            return False
        if not alive and not self.fenced:
            self.fenced = True
            log.error("heartbeat_expired", owner=self.owner,
                      detail="other replicas take this one's work over; it starts no call "
                             "and must be restarted")
        if alive:
            self._lead()
        else:
            self.epoch = None
        return alive

    def _lead(self) -> None:
        """Take or renew the leader lease (it lasts half a heartbeat's life, so that a dead
        leader's work moves sooner than its events)."""
        was = self.epoch
        try:
            self.epoch = leases.hold(self.db, leases.LEADER, self.owner,
                                     ttl_s=self.ttl_s / 2)
        except StorageError as exc:
            self.epoch = None
            log.warning("leader_lease_failed", owner=self.owner, error=str(exc))
        if self.epoch is not None and self.epoch != was:
            log.info("leader_elected", owner=self.owner, epoch=self.epoch)

    def is_leader(self) -> bool:
        """Whether this replica holds the leader lease (as of its last beat)."""
        return self.epoch is not None and not self.fenced

    def _run(self) -> None:
        while not self._stop.wait(self.beat_s):
            if not self.beat() and self.fenced:
                return

    def stop(self) -> None:
        """Stop beating and resign: what is left is the others' at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.beat_s + 5)
        try:
            if self.epoch is not None:
                leases.release(self.db, leases.LEADER, self.owner)
                self.epoch = None
            replicas.resign(self.db, self.owner)
        except StorageError as exc:
            log.warning("resign_failed", owner=self.owner, error=str(exc))
