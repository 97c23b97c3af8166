"""The leader killed (kill -9) in the middle of an audit chainer batch on PostgreSQL: the
batch is one transaction, so the server rolls it back when the process's connection closes;
the next leader takes the lease under the next epoch and links on from the head, each
record once, and the chain verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from engine.events import utcnow
from engine.runtime import chainer
from engine.store import audit as audit_store
from engine.store import leases
from engine.store.db import Database
from engine.store.lease_lock import LeaseLock

_LEADER = textwrap.dedent("""
    import sys
    from engine.store import audit
    from engine.store.db import Database

    db = Database(sys.argv[1])
    assert audit.link(db, fence=("old", 1), limit=100) == 100  # committed
    with db.batch():
        assert audit.link(db, fence=("old", 1), limit=500) == 500  # killed before the commit
        print("linking", flush=True)
        sys.stdin.readline()
""")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_a_leader_killed_mid_batch_leaves_the_next_one_a_whole_chain(pg_url: str) -> None:
    db = Database(pg_url)
    with db.write() as conn:  # the leader to be killed leads under epoch 1
        conn.execute("INSERT INTO leases (name, holder, epoch, until_ms, ticked_ms) "
                     "VALUES (?, 'old', 1, 9000000000000, 0)", (leases.LEADER,))
    now = utcnow()
    with db.batch():
        for i in range(1200):
            audit_store.append(db, "note", ts=now, data={"i": i}, incident_id=f"inc_{i % 7}")
    proc = subprocess.Popen([sys.executable, "-c", _LEADER, pg_url], text=True, cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    candidate = LeaseLock(db, "next")  # type: ignore[arg-type]
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "linking\n"
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        epoch = candidate.try_take(ttl_s=5)  # the killed batch's FOR SHARE ended with it
        assert epoch == 2
        assert chainer.link_pending(db, lambda: ("next", 2)) == 1100
        result = audit_store.verify_chain(db)
        assert (result.ok, result.checked, result.pending) == (True, 1200, 0), result
        [row] = db.query("SELECT count(DISTINCT chain) AS n, min(chain) AS lo, "
                         "max(chain) AS hi FROM audit")
        assert (row["n"], row["lo"], row["hi"]) == (1200, 1, 1200)
        audit_store.append(db, "note", ts=now, data={"i": 1200})
        assert audit_store.link(db, fence=("old", 1)) is None  # the killed one's epoch: fenced
        assert audit_store.link(db, fence=("next", 2)) == 1
    finally:
        proc.kill()
        candidate.close()
        db.close()
