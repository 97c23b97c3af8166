"""A replica frozen (SIGSTOP: a paused VM, a stuck GC, a debugger) in the middle of a write
transaction on PostgreSQL holds that transaction's locks for as long as it is frozen: the
inbox's claims lock stops every replica's claims, the leader lease's row (held FOR SHARE by a
fenced write: the audit chainer's) stops every election. The server ends such a transaction
once it has been idle for ``IDLE_TX_TIMEOUT_S`` (engine/store/postgres.py): the others go on,
and the frozen replica, continued, finds its transaction gone and commits nothing of it.

The frozen replica is a real process, stopped with SIGSTOP while it holds the lock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from engine.store import leases, locks
from engine.store.db import Database
from engine.store.lease_lock import LeaseLock

_FREEZE = textwrap.dedent("""
    import sys, time
    from engine.errors import StorageError
    from engine.store import leases, locks, postgres
    from engine.store.db import Database

    postgres.IDLE_TX_TIMEOUT_S = 1  # the test's bound (the product's: the heartbeat's TTL)
    db = Database(sys.argv[1])
    try:
        with db.batch():
            if sys.argv[2] == "claims":
                locks.hold(db, "claims")
            else:
                with db.write() as conn:
                    assert conn.execute(leases.fence_sql(db),
                                        (leases.LEADER, "frozen", 1)).fetchone()
            with db.write() as conn:
                conn.execute("INSERT INTO state (key, value) VALUES ('frozen', 'x')")
            print("held", flush=True)
            sys.stdin.readline()  # frozen here (SIGSTOP), then continued
            with db.write() as conn:
                conn.execute("SELECT 1")
        print("committed", flush=True)
    except StorageError as exc:
        print(f"refused: {exc}", flush=True)
""")


@contextmanager
def _frozen(pg_url: str, what: str) -> Iterator[subprocess.Popen[str]]:
    """A replica process holding ``what`` in an open transaction, stopped by SIGSTOP."""
    proc = subprocess.Popen([sys.executable, "-c", _FREEZE, pg_url, what], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        os.kill(proc.pid, signal.SIGSTOP)
        yield proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.communicate(timeout=30)  # reaped, its pipes closed


def _continue(proc: subprocess.Popen[str]) -> str:
    """SIGCONT the frozen replica and let it try to go on; what it says then."""
    assert proc.stdin is not None and proc.stdout is not None
    os.kill(proc.pid, signal.SIGCONT)
    proc.stdin.write("\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def test_a_replica_frozen_in_a_claim_stops_no_other_replicas_claims(pg_url: str) -> None:
    other = Database(pg_url)
    try:
        with _frozen(pg_url, "claims") as proc:
            with other.batch():  # waited for the frozen transaction, then got the lock
                locks.hold(other, "claims")
            said = _continue(proc)
        assert said.startswith("refused: "), said
        assert other.query("SELECT key FROM state WHERE key = 'frozen'") == []
    finally:
        other.close()


def test_a_leader_frozen_in_a_fenced_write_stops_no_election(pg_url: str) -> None:
    other = Database(pg_url)
    with other.write() as conn:  # the frozen replica leads under epoch 1
        conn.execute("INSERT INTO leases (name, holder, epoch, until_ms, ticked_ms) "
                     "VALUES (?, 'frozen', 1, 9000000000000, 0)", (leases.LEADER,))
    candidate = LeaseLock(other, "next")  # type: ignore[arg-type]
    try:
        with _frozen(pg_url, "lease") as proc:
            epoch = candidate.try_take(ttl_s=5)  # waited for the frozen write, then took it
            said = _continue(proc)
        assert epoch == 2
        assert said.startswith("refused: "), said
        assert leases.current(other, leases.LEADER) == ("next", 2)
        assert other.query("SELECT key FROM state WHERE key = 'frozen'") == []
    finally:
        candidate.close()
        other.close()
