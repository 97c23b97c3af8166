"""This replica's heartbeat (engine/store/replicas.py): registered when the service starts,
renewed every :data:`~engine.store.replicas.BEAT_S` in a thread of its own, resigned on stop;
and its bid for the leader lease (engine/store/leases.py).

While the heartbeat lives, no other replica reclaims this one's events or reconciles its
calls in flight. If it cannot be renewed in time (the database unreachable, the process
starved), it expires: the others take the work over, and the database refuses this replica
any new call (``actions.start``) and any outcome on a row taken over. It stays fenced (the
row is not renewed once expired); ``fenced`` says so, and the process must restart.

The leader lease: on SQLite (one ``serve`` per file) it is taken and renewed at each beat. On
PostgreSQL a session lock backs it (engine/store/lease_lock.py), tried every
:data:`TRY_S` by a thread of its own: a killed leader's lock is freed by the server at once,
so the next leader takes over within a try, without a shorter lease that a stalled (not dead)
leader would lose. A leader whose lock session breaks steps down at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from engine.errors import StorageError
from engine.store import leases, replicas
from engine.store.db import Database
from engine.store.lease_lock import LeaseLock
from engine.store.postgres import PostgresDatabase

__all__ = ["TRY_S", "Liveness"]

log = structlog.get_logger("remediator.liveness")

TRY_S = 0.25
"""How often a replica on PostgreSQL tries the leader lock (and the leader checks it)."""


class Liveness:
    """The heartbeat of one replica (``owner``) and its bid for the leader lease."""

    def __init__(self, db: Database, owner: str, *, beat_s: float = replicas.BEAT_S,
                 ttl_s: float = replicas.TTL_S, try_s: float = TRY_S,
                 lease_s: float | None = None) -> None:
        self.db, self.owner, self.beat_s, self.ttl_s, self.try_s = (db, owner, beat_s, ttl_s,
                                                                   try_s)
        self.lease_s = ttl_s / 2 if lease_s is None else lease_s
        """How long the leader lease lasts unrenewed: half a heartbeat's life, so that a dead
        leader's work moves sooner than its events (on PostgreSQL only a hung leader's)."""
        self.fenced = False
        self.epoch: int | None = None
        """The leader lease's epoch while this replica leads, else None."""
        self.on_elected: Callable[[], object] = lambda: None
        """Called when this replica becomes the leader (the scheduler's leader-only jobs run
        at once: engine/runtime/scheduler.py ``lead_now``)."""
        self.lock = LeaseLock(db, owner) if isinstance(db, PostgresDatabase) else None
        self._leading = threading.RLock()  # one step of the bid at a time (two threads bid)
        self._renewed = float("-inf")  # time.monotonic() when the last renewal was sent
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Register (StorageError if the database refuses: the service must not start) and
        begin beating."""
        sent = time.monotonic()
        replicas.register(self.db, self.owner, ttl_s=self.ttl_s)
        self._renewed = sent
        self._lead(renew=True)
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, name="remediator-heartbeat",
                                          daemon=True)]
        if self.lock is not None:
            self._threads.append(threading.Thread(target=self._bid, name="remediator-leader",
                                                  daemon=True))
        for thread in self._threads:
            thread.start()

    def beat(self) -> bool:
        """Renew once (and bid for the lease); False once fenced (or while the database
        cannot be reached)."""
        sent = time.monotonic()
        try:
            alive = replicas.beat(self.db, self.owner, ttl_s=self.ttl_s)
        except StorageError as exc:
            log.warning("heartbeat_failed", owner=self.owner, error=str(exc))
            self._step_down("heartbeat_failed")  # it cannot reach the database: it leads no more
            return False
        if not alive and not self.fenced:
            self.fenced = True
            log.error("heartbeat_expired", owner=self.owner,
                      detail="other replicas take this one's work over; it starts no call "
                             "and must be restarted")
        if alive:
            self._renewed = max(self._renewed, sent)
            self._lead(renew=True)
        else:
            self._step_down("heartbeat_expired")
        return alive

    def may_call(self) -> bool:
        """Whether this replica may make a call out now: not fenced, and its heartbeat renewed
        (by this process's own monotonic clock, which runs on while it is paused) less than a
        life minus a beat ago, or renewed now. A replica paused past its heartbeat (SIGSTOP, a
        frozen VM) between the decision to call and the call would otherwise call after
        another replica took the row over and made the call itself; a renewal that succeeds
        proves the heartbeat never expired, so no other replica took anything over."""
        if self.fenced:
            return False
        if not self._threads:  # not started (a service driven by hand): no heartbeat to lose
            return True
        if time.monotonic() - self._renewed < self.ttl_s - self.beat_s:
            return True
        return self.beat()

    def _lead(self, *, renew: bool) -> None:
        """One step of the bid: take the leader lease, or renew it (``renew``: each beat) or
        check it (each try) as its holder."""
        with self._leading:
            if self.fenced:
                return
            was = self.epoch
            if self.lock is None:
                self._hold()
            else:
                self._lock_step(renew=renew)
            if self.epoch is not None and self.epoch != was:
                log.info("leader_elected", owner=self.owner, epoch=self.epoch)
                self.on_elected()

    def _hold(self) -> None:
        """SQLite: take or renew the lease row."""
        try:
            self.epoch = leases.hold(self.db, leases.LEADER, self.owner, ttl_s=self.lease_s)
        except StorageError as exc:
            self.epoch = None
            log.warning("leader_lease_failed", owner=self.owner, error=str(exc))

    def _lock_step(self, *, renew: bool) -> None:
        """PostgreSQL: as the leader, check the lock's session (or renew the row on it: its
        lapse is the fallback for a leader hung but connected); else try the lock, and end a
        hung holder's session."""
        assert self.lock is not None
        if self.epoch is not None:
            held = (self.lock.renew(self.epoch, ttl_s=self.lease_s) if renew
                    else self.lock.alive())
            if not held:
                self._step_down("leader_lock_lost")
            return
        try:
            epoch = self.lock.try_take(ttl_s=self.lease_s)
            if epoch is None:
                if self.lock.end_stale():
                    log.warning("leader_hung_ended", owner=self.owner,
                                detail="the leader lease lapsed while its lock was held")
                return
        except StorageError as exc:
            log.warning("leader_lease_failed", owner=self.owner, error=str(exc))
            return
        self.epoch = epoch

    def _step_down(self, why: str) -> None:
        """Lead no more (the lock, if any, is freed with its session)."""
        with self._leading:
            if self.epoch is not None:
                log.warning("leader_stepped_down", owner=self.owner, epoch=self.epoch,
                            reason=why)
            self.epoch = None
            if self.lock is not None:
                self.lock.close()

    def is_leader(self) -> bool:
        """Whether this replica holds the leader lease (as of its last beat or try)."""
        return self.epoch is not None and not self.fenced

    def ticked(self) -> None:
        """A leader-only job begins: recorded on the lease (``leases.ticked_ms``), fenced by
        this replica's epoch."""
        epoch = self.epoch
        if epoch is None:
            return
        try:
            leases.mark_tick(self.db, leases.LEADER, self.owner, epoch)
        except StorageError as exc:
            log.warning("leader_tick_not_recorded", owner=self.owner, error=str(exc))

    def _run(self) -> None:
        while not self._stop.wait(self.beat_s):
            if not self.beat() and self.fenced:
                return

    def _bid(self) -> None:
        while not self._stop.wait(self.try_s):
            try:
                self._lead(renew=False)
            except Exception:  # the bid must go on: a replica that stops bidding never leads
                log.exception("leader_bid_failed", owner=self.owner)

    def stop(self) -> None:
        """Stop beating and resign: what is left is the others' at once."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.beat_s + 10)
        try:
            with self._leading:
                if self.epoch is not None:
                    if self.lock is not None:
                        self.lock.release(self.epoch)
                    else:
                        leases.release(self.db, leases.LEADER, self.owner)
                    self.epoch = None
                elif self.lock is not None:
                    self.lock.close()
            replicas.resign(self.db, self.owner)
        except StorageError as exc:
            log.warning("resign_failed", owner=self.owner, error=str(exc))
