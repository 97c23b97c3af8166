"""The leader lease backed by a PostgreSQL session lock (issue 17, item 4: failover under 2 s
for the leader's work): a dead leader's lock is freed by the server at once, so the next
replica leads within a try instead of when the lease row lapses; a leader whose lock session
ends steps down; a lease row lapsing between beats moves nothing while its holder's session
lives. Leases here last minutes, so that only the lock can move the leadership in a test."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime.liveness import Liveness
from engine.store import leases, state
from engine.store.db import Database
from engine.store.lease_lock import LEADER_LOCK, STALE_MS
from engine.store.replicas import now_sql
from tests.fixtures.common import read_elsewhere
from tests.fixtures.engine import EngineRig

ROOT = Path(__file__).resolve().parents[2]
LONG = 600.0  # a heartbeat (and a lease of half of it) that no test waits out
BOUND_S = 30  # how long a test waits for what should take a try (0.25 s)

LEADER = textwrap.dedent("""
    import sys
    from engine.runtime.liveness import Liveness
    from engine.store.db import Database

    liveness = Liveness(Database(sys.argv[1]), "proc_old", ttl_s=600.0)
    liveness.start()
    print(liveness.epoch, file=sys.stderr, flush=True)  # (its logs go to stdout)
    sys.stdin.read()  # leads until killed
""")


@pytest.fixture
def dbs(pg_url: str) -> Iterator[tuple[Database, Database]]:
    """Two replicas' handles on one PostgreSQL database."""
    first, second = Database(pg_url), Database(pg_url)
    yield first, second
    first.close()
    second.close()


def _db_now(db: Database) -> int:
    return int(db.query(f"SELECT {now_sql(db)} AS now")[0]["now"])


def _until(db: Database) -> int:
    return int(db.query("SELECT until_ms FROM leases WHERE name = ?",
                        (leases.LEADER,))[0]["until_ms"])


def _lapse(db: Database, *, by_ms: int = 0) -> None:
    """Wait until the lease row has lapsed for ``by_ms`` on the database's clock."""
    until = _until(db)
    while _db_now(db) <= until + by_ms:
        threading.Event().wait(0.001)


def _lock_session(db: Database) -> int:
    """The server pid of the session holding the leader lock."""
    [(pid,)] = read_elsewhere(
        db, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            f"AND classid = 0 AND objid = {LEADER_LOCK} AND objsubid = 1")
    return int(pid)


def test_a_killed_leader_is_replaced_before_its_lease_would_lapse(
    dbs: tuple[Database, Database],
) -> None:
    db, _ = dbs
    candidate = Liveness(db, "proc_new", ttl_s=LONG)
    elected = threading.Event()
    candidate.on_elected = elected.set
    with subprocess.Popen([sys.executable, "-c", LEADER, db.url], cwd=ROOT,
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as child:
        try:
            assert child.stderr is not None and child.stderr.readline().strip() == "1"
            candidate.start()
            assert not candidate.is_leader()  # the child's lock is held
            lapses = _until(db)  # when the old lease would lapse (the database's clock)
            child.kill()
            assert child.wait(BOUND_S) == -signal.SIGKILL
            assert elected.wait(BOUND_S)  # by its bid thread: no beat (every 2 s) needed
            took = _db_now(db)
            assert candidate.is_leader() and candidate.epoch == 2
            assert leases.current(db, leases.LEADER) == ("proc_new", 2)
            assert took < lapses  # the lock, not the lease's lapse, moved the leadership
        finally:
            child.kill()
            candidate.stop()


def test_a_leader_whose_lock_session_ends_steps_down_and_is_fenced(
    dbs: tuple[Database, Database],
) -> None:
    a = Liveness(dbs[0], "proc_a", ttl_s=LONG, beat_s=LONG, try_s=LONG)  # driven by hand
    b = Liveness(dbs[1], "proc_b", ttl_s=LONG, beat_s=LONG, try_s=LONG)
    a.start()
    b.start()
    try:
        assert (a.epoch, b.epoch) == (1, None)
        state.set_checkpoint(dbs[0], "poller:x", "100", 1, fence=("proc_a", 1))
        read_elsewhere(dbs[0], f"SELECT pg_terminate_backend({_lock_session(dbs[0])}, 5000)")
        assert a.beat() and not a.is_leader()  # alive, but no longer the leader
        assert b.beat() and b.epoch == 2  # the lock is free: B takes the lease unlapsed
        assert a.beat() and not a.is_leader()  # A's bid finds B's lock held
        with pytest.raises(state.NotLeader):
            state.set_checkpoint(dbs[0], "poller:x", "150", 2, fence=("proc_a", 1))
        state.set_checkpoint(dbs[1], "poller:x", "200", 3, fence=("proc_b", 2))
        assert state.get_checkpoint(dbs[0], "poller:x") == "200"
    finally:
        a.stop()
        b.stop()


def test_a_clean_stop_hands_the_lease_over_at_the_next_try(
    dbs: tuple[Database, Database],
) -> None:
    a = Liveness(dbs[0], "proc_a", ttl_s=LONG)
    b = Liveness(dbs[1], "proc_b", ttl_s=LONG, beat_s=LONG)  # no beat: its bid thread alone
    elected = threading.Event()
    b.on_elected = elected.set
    a.start()
    b.start()
    try:
        assert (a.is_leader(), b.is_leader()) == (True, False)
        a.stop()  # SIGTERM: the lease lapses and the lock is freed
        assert elected.wait(BOUND_S)
        assert b.epoch == 2 and leases.current(dbs[1], leases.LEADER) == ("proc_b", 2)
    finally:
        b.stop()


def test_a_lease_lapsing_between_beats_does_not_move_the_leadership(
    dbs: tuple[Database, Database],
) -> None:
    """A lease far shorter than the time between beats (with the lease row alone, the other
    replica took it at each of its beats): the lock keeps one leader and one epoch."""
    a = Liveness(dbs[0], "proc_a", ttl_s=LONG, beat_s=LONG, try_s=LONG, lease_s=0.001)
    b = Liveness(dbs[1], "proc_b", ttl_s=LONG, beat_s=LONG, try_s=LONG, lease_s=0.001)
    a.start()
    b.start()
    try:
        seen = []
        for _ in range(40):
            assert a.beat()
            _lapse(dbs[0])  # B's bid finds the row lapsed
            assert b.beat()
            seen.append((a.epoch, b.epoch))
        assert set(seen) == {(1, None)}
        assert leases.ticked(dbs[0], leases.LEADER)[0] == 1
    finally:
        a.stop()
        b.stop()


def test_a_hung_leaders_session_is_ended_once_its_lease_lapsed(
    dbs: tuple[Database, Database],
) -> None:
    """The lease's lapse stays the fallback for a leader hung but connected: its lock is
    held, its lease not renewed."""
    a = Liveness(dbs[0], "proc_a", ttl_s=LONG, beat_s=LONG, try_s=LONG, lease_s=0.001)
    b = Liveness(dbs[1], "proc_b", ttl_s=LONG, beat_s=LONG, try_s=LONG, lease_s=0.001)
    a.start()
    b.start()
    try:
        assert b.beat() and b.epoch is None  # lapsed a moment ago: A is not ended yet
        _lapse(dbs[0], by_ms=STALE_MS)  # A hangs (no beat) past the grace
        assert b.beat() and b.epoch is None  # A's session ended; the lock frees with it
        assert b.beat() and b.epoch == 2
        assert a.beat() and not a.is_leader()  # A wakes up: its lock session is gone
    finally:
        a.stop()
        b.stop()


def test_a_new_leaders_leader_only_jobs_run_at_once(engine_rig: EngineRig) -> None:
    scheduler = engine_rig.worker("name: engine\nrules: []\n").scheduler
    ran, ticked = threading.Event(), []
    scheduler.add_periodic("hourly", ran.set, 3600, leader_only=True)
    scheduler.leader_ticked = lambda: ticked.append("tick")
    scheduler.start()
    try:
        scheduler.lead_now()
        assert ran.wait(BOUND_S)  # not an hour later
        assert ticked == ["tick"]
    finally:
        scheduler.shutdown()


def test_the_leaders_ticks_are_recorded_under_its_epoch(db: Database) -> None:
    leader = Liveness(db, "proc_a", beat_s=LONG, try_s=LONG)
    leader.start()
    try:
        assert leases.ticked(db, leases.LEADER) == (1, 0)  # elected, no job run yet
        leader.ticked()
        epoch, ticked_ms = leases.ticked(db, leases.LEADER)
        assert epoch == 1 and 0 < ticked_ms <= _db_now(db)
        assert not leases.mark_tick(db, leases.LEADER, "proc_a", 2)  # not its epoch
    finally:
        leader.stop()
