"""Several replicas on one database (issue 17, item 3): a replica's work is taken over only
once its heartbeat (on the database's clock) expired; outcome writes are compare-and-sets on
(state, owner); a replica whose heartbeat expired starts no call."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.config import Settings
from engine.errors import StorageError
from engine.events import ErrorEvent
from engine.runtime.liveness import Liveness
from engine.runtime.service import Service
from engine.store import actions, inbox, incidents, leases, replicas
from engine.store import audit as audit_store
from engine.store.db import Database
from tests.fixtures.common import read_elsewhere, reopen
from tests.fixtures.engine import EngineRig

NOW = 1_741_950_000_000


def _row(db: Database, key: str = "k1") -> str:
    new = actions.NewAction(
        idem_key=key, incident_id="inc_1", event_id="evt_1", rule_id="r", reference="r/0",
        action="adf.rerun_pipeline", index=0, phase="remediate", attempt=1, target="t",
        fingerprint="f", state="scheduled", dry_run=False, mutating=True, due_ms=NOW,
        params={}, description="")
    [(row, _)] = actions.plan(db, [new], NOW)
    return row.id


def _interrupted(db: Database, owner: str) -> list[str]:
    return [r.id for r in actions.interrupted(db, owner=owner, now_ms=NOW, lease_ms=60_000)]


def test_a_live_replicas_call_is_not_reconciled_until_its_heartbeat_expires(
    db: Database,
) -> None:
    replicas.register(db, "proc_a")
    replicas.register(db, "proc_b")
    row_id = _row(db)
    assert actions.start(db, row_id, owner="proc_a", now_ms=NOW)
    assert _interrupted(db, "proc_b") == []  # A's call is in flight, A is alive
    assert replicas.live(db) == ["proc_a", "proc_b"]
    replicas.resign(db, "proc_a")  # A is gone (its heartbeat ran out)
    assert _interrupted(db, "proc_b") == [row_id]


def test_only_the_replica_that_takes_a_row_over_reconciles_it(db: Database) -> None:
    row_id = _row(db)
    assert actions.start(db, row_id, owner="proc_a", now_ms=NOW)  # A has no heartbeat: dead
    assert actions.take_over(db, row_id, from_owner="proc_a", owner="proc_b")
    assert not actions.take_over(db, row_id, from_owner="proc_a", owner="proc_c")
    assert actions.get(db, row_id).owner == "proc_b"


def test_an_outcome_is_written_only_by_the_rows_owner(db: Database) -> None:
    row_id = _row(db)
    assert actions.start(db, row_id, owner="proc_a", now_ms=NOW)
    assert actions.take_over(db, row_id, from_owner="proc_a", owner="proc_b")
    with pytest.raises(actions.NotOwner) as caught:
        actions.finish(db, row_id, "succeeded", now_ms=NOW, owner="proc_a")
    assert str(caught.value) == (
        f"action {row_id}: its succeeded outcome is not recorded: the row is no longer "
        "started by proc_a (another replica took it over)")
    with pytest.raises(actions.NotOwner):
        actions.reschedule(db, row_id, due_ms=NOW, error="x", owner="proc_a")
    assert actions.get(db, row_id).state == "started"
    actions.finish(db, row_id, "succeeded", now_ms=NOW, owner="proc_b")
    assert actions.get(db, row_id).state == "succeeded"


def test_a_replica_whose_heartbeat_expired_starts_no_call_and_stays_fenced(
    db: Database,
) -> None:
    replicas.register(db, "proc_a")
    replicas.resign(db, "proc_a")
    row_id = _row(db)
    assert not actions.start(db, row_id, owner="proc_a", now_ms=NOW)
    assert not replicas.beat(db, "proc_a")  # an expired heartbeat is not renewed
    assert actions.get(db, row_id).state == "scheduled"
    assert actions.start(db, row_id, owner="proc_b", now_ms=NOW)  # a live one may


def test_the_liveness_thread_beats_and_resigns(db: Database) -> None:
    liveness = Liveness(db, "proc_a", beat_s=0.01)
    liveness.start()
    try:
        assert replicas.live(db) == ["proc_a"]
        assert liveness.beat()
    finally:
        liveness.stop()
    assert replicas.live(db) == []
    assert not liveness.beat() and liveness.fenced


def _event(n: int) -> ErrorEvent:
    return ErrorEvent(id="", source="adf", kind="pipeline_run", status="firing",
                      resource=f"pl_{n}", message="boom", dedup_key=f"key-{n}")


def test_a_live_replicas_events_are_not_reclaimed_when_their_lease_runs_out(
    db: Database,
) -> None:
    inbox.insert(db, [_event(1)], {}, "/test")
    replicas.register(db, "proc_a")
    [claimed] = inbox.claim(db, limit=10, lease_ms=1, now_ms=NOW, owner="proc_a")
    later = NOW + 60_000
    assert inbox.claim(db, limit=10, lease_ms=1000, now_ms=later, owner="proc_b") == []
    assert inbox.exhausted(db, max_claims=1, now_ms=later, owner="proc_b") == []
    replicas.resign(db, "proc_a")
    [again] = inbox.claim(db, limit=10, lease_ms=1000, now_ms=later, owner="proc_b")
    assert again.event.id == claimed.event.id and again.attempts == 2


def test_replicas_claiming_at_once_never_share_an_event(db: Database) -> None:
    inbox.insert(db, [_event(n) for n in range(60)], {}, "/test")
    handles = [reopen(db) for _ in range(3)]
    got: list[list[str]] = [[] for _ in handles]

    def claim_all(i: int) -> None:
        while claimed := inbox.claim(handles[i], limit=3, lease_ms=60_000, now_ms=NOW,
                                     owner=f"proc_{i}"):
            got[i].extend(s.event.id for s in claimed)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for handle in handles:
        handle.close()
    every = [event_id for ids in got for event_id in ids]
    assert len(every) == len(set(every)) == 60


def _on(target: str, n: int) -> ErrorEvent:
    return ErrorEvent(id="", source="adf", kind="pipeline_run", status="firing",
                      resource=target, message="boom", dedup_key=f"{target}-{n}",
                      attributes={"factory": "f1"})


def test_postgres_claims_one_event_per_lane_across_replicas(pg_url: str) -> None:
    a, b = Database(pg_url), Database(pg_url)
    try:
        x1, x2, y1 = (r.event_id for r in inbox.insert(
            a, [_on("pl_x", 1), _on("pl_x", 2), _on("pl_y", 1)], {}, "/test"))
        first = inbox.claim(a, limit=10, lease_ms=60_000, now_ms=NOW, owner="proc_a")
        assert sorted(s.event.id for s in first) == sorted([x1, y1])
        assert inbox.claim(b, limit=10, lease_ms=60_000, now_ms=NOW, owner="proc_b") == []
        inbox.finish(a, x1)  # pl_x's first is done: its second may run
        [second] = inbox.claim(b, limit=10, lease_ms=60_000, now_ms=NOW, owner="proc_b")
        assert second.event.id == x2
    finally:
        a.close()
        b.close()


def test_postgres_itself_refuses_two_events_of_one_lane_in_processing(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        inbox.insert(db, [_on("pl_x", 1), _on("pl_x", 2)], {}, "/test")
        with pytest.raises(StorageError) as caught, db.write() as conn:
            conn.execute("UPDATE events SET state = 'processing'")
        assert "events_one_per_lane" in str(caught.value)
    finally:
        db.close()


def test_one_leader_at_a_time_and_the_epoch_counts_each_new_one(db: Database) -> None:
    assert leases.hold(db, leases.LEADER, "proc_a", ttl_s=30) == 1
    assert leases.hold(db, leases.LEADER, "proc_b", ttl_s=30) is None
    assert leases.hold(db, leases.LEADER, "proc_a", ttl_s=30) == 1  # renewed
    leases.release(db, leases.LEADER, "proc_a")
    assert leases.current(db, leases.LEADER) is None
    assert leases.hold(db, leases.LEADER, "proc_b", ttl_s=30) == 2
    assert leases.hold(db, leases.LEADER, "proc_a", ttl_s=30) is None
    assert leases.current(db, leases.LEADER) == ("proc_b", 2)


def test_the_next_replica_leads_once_the_leader_stops(db: Database) -> None:
    first = Liveness(db, "proc_a", beat_s=60)
    second = Liveness(db, "proc_b", beat_s=60)
    first.start()
    second.start()
    try:
        assert (first.is_leader(), second.is_leader()) == (True, False)
        first.stop()  # SIGTERM: it resigns the lease with its heartbeat
        assert second.beat() and second.is_leader() and second.epoch == 2
    finally:
        second.stop()


def test_leader_only_jobs_run_on_the_leader_alone(engine_rig: EngineRig) -> None:
    scheduler = engine_rig.worker("name: engine\nrules: []\n").scheduler
    ran: list[str] = []
    job = scheduler._if_leader(lambda: ran.append("polled"))
    scheduler.is_leader = lambda: False
    job()
    assert ran == []
    scheduler.is_leader = lambda: True
    job()
    assert ran == ["polled"]


def test_an_intake_commit_on_one_replica_wakes_the_others(pg_url: str) -> None:
    """One NOTIFY per intake transaction reaches every listening replica (issue 17, item 7);
    polling stays the fallback."""
    intake, other = Database(pg_url), Database(pg_url)
    heard: list[str] = []
    connected, woken, stop = threading.Event(), threading.Event(), threading.Event()

    def on_notify(payload: str) -> None:
        heard.append(payload)
        (woken if connected.is_set() else connected).set()

    listener = threading.Thread(target=other.listen,
                                args=(inbox.WAKE_CHANNEL, on_notify, stop))
    listener.start()
    try:
        assert connected.wait(30)  # listening (the callback's first call)
        inbox.insert_batch(intake, [([_event(n)], {}, "/test") for n in range(5)])
        assert woken.wait(30)
    finally:
        stop.set()
        listener.join(timeout=30)
        intake.close()
        other.close()
    assert heard == ["", ""]  # connected, then one notification for the batch of five


def test_sqlite_has_no_notifications_to_listen_for(tmp_path: Path) -> None:
    db = Database(tmp_path / "one.db")
    try:
        db.listen(inbox.WAKE_CHANNEL, lambda payload: None, threading.Event())  # returns
    finally:
        db.close()


RULES = """\
name: engine
rules:
  - id: {rule}
    match: {{source: adf}}
    actions: [{{action: noop}}]
"""


def test_a_playbook_reload_reaches_every_replica(pg_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "rules.yaml").write_text(RULES.format(rule="first"))
    settings = Settings(db=pg_url, playbooks=str(folder))
    dbs = [Database(pg_url), Database(pg_url)]
    here, there = (Service(settings, db, clock=FakeClock()) for db in dbs)
    try:
        (folder / "rules.yaml").write_text(RULES.format(rule="second"))
        assert here.reload("admin") == []
        assert [r.id for r in there.playbooks.current.rules] == ["first"]
        assert there.follow_reloads()
        assert [r.id for r in there.playbooks.current.rules] == ["second"]
        assert not there.follow_reloads() and not here.follow_reloads()
        reloads = audit_store.list_records(dbs[0], kind="playbooks_reload")
        assert [r.actor for r in reloads] == ["admin", "broadcast"]
    finally:
        for service in (here, there):
            service.stop()
        for db in dbs:
            db.close()


def test_postgres_write_transactions_of_two_replicas_run_side_by_side(pg_url: str) -> None:
    """No write holds a lock of every replica any more (each check-then-act makes itself safe:
    engine/store/locks.py): a replica's write commits while another's is open."""
    here, there = Database(pg_url), Database(pg_url)
    try:
        with here.write() as conn:
            conn.execute("INSERT INTO state (key, value, updated_ms) VALUES ('a', '1', 1)")
            with there.write() as other:  # used to wait for the writer lock, then fail (503)
                other.execute("INSERT INTO state (key, value, updated_ms) VALUES ('b', '2', 1)")
            assert read_elsewhere(here, "SELECT key FROM state ORDER BY key") == [("b",)]
        assert read_elsewhere(here, "SELECT key FROM state ORDER BY key") == [("a",), ("b",)]
    finally:
        here.close()
        there.close()


def test_a_due_probe_is_polled_by_the_one_replica_that_takes_it(db: Database) -> None:
    row_id = _row(db)
    assert actions.start(db, row_id, owner="proc_a", now_ms=NOW)
    actions.finish(db, row_id, "succeeded", now_ms=NOW, probe=(NOW, NOW + 600_000, 15.0),
                   owner="proc_a")
    [due] = actions.probes_due(db, NOW)  # both replicas' ticks read it
    assert actions.claim_probe(db, row_id, due_ms=due.probe_due_ms, until_ms=NOW + 120_000)
    assert not actions.claim_probe(db, row_id, due_ms=due.probe_due_ms, until_ms=NOW + 120_000)
    assert actions.probes_due(db, NOW) == []
    assert [r.id for r in actions.probes_due(db, NOW + 120_000)] == [row_id]  # if it died


def test_an_expired_approval_is_expired_by_the_one_replica_that_takes_it(db: Database) -> None:
    incident_id = "inc_wait"
    with db.write() as conn:
        conn.execute(
            "INSERT INTO incidents (id, fingerprint, target, state, approval_due_ms, "
            "opened_ms, updated_ms) VALUES (?, 'f', 't', 'waiting_approval', ?, ?, ?)",
            (incident_id, NOW, NOW, NOW))
    assert incidents.claim_expiry(db, incident_id, due_ms=NOW, until_ms=NOW + 120_000)
    assert not incidents.claim_expiry(db, incident_id, due_ms=NOW, until_ms=NOW + 120_000)
    assert incidents.get(db, incident_id).approval_due_ms == NOW + 120_000  # if it died


def test_a_checkpoint_written_under_a_lost_lease_is_refused(db: Database) -> None:
    """Item 4: the leader's poller checkpoints are fenced by its epoch; a leader that lost
    the lease (a pause longer than it) cannot move a checkpoint its successor owns."""
    from engine.store import state

    assert leases.hold(db, leases.LEADER, "proc_a", ttl_s=30) == 1
    state.set_checkpoint(db, "poller:x", "100", 1, fence=("proc_a", 1))
    leases.release(db, leases.LEADER, "proc_a")  # as if it lapsed
    assert leases.hold(db, leases.LEADER, "proc_b", ttl_s=30) == 2
    state.set_checkpoint(db, "poller:x", "200", 2, fence=("proc_b", 2))
    with pytest.raises(state.NotLeader) as caught:
        state.set_checkpoint(db, "poller:x", "150", 3, fence=("proc_a", 1))
    assert str(caught.value) == ("checkpoint poller:x not written: proc_a no longer holds the "
                                 "leader lease of epoch 1")
    assert state.get_checkpoint(db, "poller:x") == "200"
    state.set_checkpoint(db, "poller:y", "1", 4)  # unfenced: a poller run by hand
    assert state.get_checkpoint(db, "poller:y") == "1"
