"""Several replicas' write transactions side by side on PostgreSQL (issue 17, item 6): each
check-then-act of the store holds by itself, not by a lock of every writer.

Each test runs two "replicas" (two Database handles, so two server sessions) and makes the
race happen: the first holds its transaction open until the second is seen waiting for it on
the server (or has finished: then the test fails on what the second did without waiting).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from engine import guards, lifecycle
from engine.actions.context import ActionContext
from engine.clock import FakeClock, to_ms
from engine.cloud.clients import Clients
from engine.events import ErrorEvent
from engine.remediation import plan as planner
from engine.remediation import settle
from engine.runtime import deadletter, operators, pipeline
from engine.store import actions, inbox, incidents, rca, transitions
from engine.store import audit as audit_store
from engine.store import metrics as metrics_store
from engine.store import state as state_store
from engine.store.db import Database
from tests.engine.actions.conftest import adf_event, cloud_settings
from tests.engine.test_worker import RERUN
from tests.fixtures.engine import EngineRig
from tests.reliability.conftest import poll

NOOP_BUDGET = """\
name: engine
rules:
  - id: noop-once
    match: {source: adf, error_code: "2200"}
    actions:
      - action: noop
        with: {note: "seen"}
    budget: {max_attempts: 1, window: 24h, per: rule}
"""


@pytest.fixture
def pair(pg_url: str, sandbox: Any, tmp_path: Path) -> Iterator[tuple[EngineRig, EngineRig]]:
    """Two replicas: a rig each, over a Database handle each, on one PostgreSQL database."""
    clients = Clients(cloud_settings(sandbox))
    clock = FakeClock()
    rigs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        rigs.append(EngineRig(db=Database(pg_url), clock=clock, sandbox=sandbox,
                              tmp=tmp_path / name, ctx=ActionContext(clients=clients)))
    yield rigs[0], rigs[1]
    for rig in rigs:
        for built in rig.workers:
            built.stop()
        rig.db.close()
    clients.close()


def _lock_waits(db: Database) -> int:
    """Sessions of this database waiting for a lock another transaction holds."""
    with psycopg.connect(db.url) as conn:  # type: ignore[attr-defined]
        [(waiting,)] = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'").fetchall()
    return int(waiting)


def _race(first: Database, holding: Callable[[], Any], second: Callable[[], Any]) -> tuple[
        Any, Any]:
    """Run ``holding`` in a batch of ``first`` and, before that batch commits, ``second`` in a
    thread, until ``second`` waits on the server for the batch (or is done); then commit.
    Returns what each returned."""
    out: dict[str, Any] = {}

    def run_second() -> None:
        try:
            out["second"] = second()
        except BaseException as exc:  # shown by the test, not lost in the thread
            out["error"] = exc

    thread = threading.Thread(target=run_second)
    with first.batch():
        out["first"] = holding()
        thread.start()
        poll(lambda: not thread.is_alive() or _lock_waits(first) > 0,
             what="the second replica waiting for the first, or done")
    thread.join(timeout=30)
    assert not thread.is_alive()
    if "error" in out:
        raise out["error"]
    return out["first"], out["second"]


def _event(**over: Any) -> ErrorEvent:
    return adf_event(**over).with_fingerprint()


def _open(db: Database, event: ErrorEvent, now_ms: int) -> tuple[incidents.Incident, bool]:
    return transitions.open_or_join(
        db, fingerprint=event.fingerprint, target=pipeline.target_of(event), source="adf",
        resource=event.resource, alert_key="", event_id=event.id, now_ms=now_ms)


def test_the_store_and_the_lifecycle_name_the_same_active_states() -> None:
    assert incidents.ACTIVE_STATES == lifecycle.ACTIVE


def test_two_replicas_opening_one_failure_at_once_make_one_incident(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    a, b = pair
    now_ms = to_ms(a.clock.now())
    first, second = _race(a.db, lambda: _open(a.db, _event(id="evt_a"), now_ms),
                          lambda: _open(b.db, _event(id="evt_b"), now_ms))
    assert (first[1], second[1]) == (True, False)  # opened, joined
    assert second[0].id == first[0].id
    [only] = incidents.list_incidents(a.db)
    assert (only.id, only.events, only.event_id) == (first[0].id, 2, "evt_a")


def test_a_closed_incident_leaves_room_for_the_next_one(pair: tuple[EngineRig, EngineRig]) -> None:
    a, _ = pair
    now_ms = to_ms(a.clock.now())
    first, created = _open(a.db, _event(id="evt_a"), now_ms)
    assert created
    assert lifecycle.resolve(a.db, first, "fixed", now=a.clock.now())
    second, created = _open(a.db, _event(id="evt_b"), now_ms + 1)
    assert created and second.id != first.id


def test_a_budget_of_one_is_taken_by_one_of_two_replicas_at_once(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    a, b = pair
    deps_a, deps_b = (rig.worker(NOOP_BUDGET).deps for rig in (a, b))
    rule = deps_a.playbooks.current.rule("noop-once")
    assert rule is not None
    now_ms = to_ms(a.clock.now())
    one, _ = _open(a.db, _event(id="evt_a", resource="p1"), now_ms)
    two, _ = _open(a.db, _event(id="evt_b", resource="p2"), now_ms)

    def check_and_take() -> guards.Decision:
        decision = guards.check_budget(deps_a, rule, one, now_ms)
        actions.plan(a.db, [actions.NewAction(
            idem_key="k1", incident_id=one.id, event_id="evt_a", rule_id=rule.id,
            reference="noop-once/0", action="noop", index=0, phase="remediate", attempt=1,
            target=one.target, fingerprint=one.fingerprint, state="scheduled",
            dry_run=False, mutating=False, due_ms=now_ms, params={}, description="")], now_ms)
        return decision

    def check_second() -> guards.Decision:
        with b.db.batch():
            return guards.check_budget(deps_b, rule, two, now_ms)

    first, second = _race(a.db, check_and_take, check_second)
    assert (first.decision, first.reason) == (
        "allow", "0 of 1 attempts used in 86400s per rule")
    assert (second.decision, second.reason) == (
        "escalate", "budget spent: 1 of 1 attempts in 86400s per rule")


NOOP_COOLDOWN = NOOP_BUDGET.replace("    budget: {max_attempts: 1, window: 24h, per: rule}",
                                    "    cooldown: 10m")


def test_a_cooldown_is_started_by_one_of_two_replicas_at_once(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    a, b = pair
    deps_a, deps_b = (rig.worker(NOOP_COOLDOWN).deps for rig in (a, b))
    rule = deps_a.playbooks.current.rule("noop-once")
    assert rule is not None
    now_ms = to_ms(a.clock.now())
    # two failures of one target: two incidents, one rule's cooldown on that target
    one, _ = _open(a.db, _event(id="evt_a", message="Copy failed"), now_ms)
    two, _ = _open(a.db, _event(id="evt_b", message="Copy failed again"), now_ms)
    assert one.id != two.id and one.target == two.target

    def check_and_start() -> guards.Decision:
        decision = guards.check_cooldown(deps_a, rule, one, now_ms)
        [(row, _)] = actions.plan(a.db, [actions.NewAction(
            idem_key="k1", incident_id=one.id, event_id="evt_a", rule_id=rule.id,
            reference="noop-once/0", action="noop", index=0, phase="remediate", attempt=1,
            target=one.target, fingerprint=one.fingerprint, state="scheduled",
            dry_run=False, mutating=False, due_ms=now_ms, params={}, description="")], now_ms)
        assert actions.start(a.db, row.id, owner=deps_a.owner, now_ms=now_ms)
        return decision

    def check_second() -> guards.Decision:
        with b.db.batch():
            return guards.check_cooldown(deps_b, rule, two, now_ms)

    first, second = _race(a.db, check_and_start, check_second)
    assert first.decision == "allow"
    assert (second.decision, second.reason) == (
        "ignore", f"cooldown: rule noop-once acted on {two.target} 0s ago (cooldown 600s)")


def test_the_llm_budgets_last_call_goes_to_one_replica(pair: tuple[EngineRig, EngineRig]) -> None:
    a, b = pair
    now_ms = to_ms(a.clock.now())
    first, second = _race(a.db, lambda: rca.take_call(a.db, now_ms=now_ms, limit=1),
                          lambda: rca.take_call(b.db, now_ms=now_ms, limit=1))
    assert (first, second) == (True, False)
    assert rca.calls_in_hour(a.db, now_ms=now_ms) == 1
    assert not rca.take_call(a.db, now_ms=now_ms, limit=0)


def _failed_attempt(rig: EngineRig) -> incidents.Incident:
    """An incident remediating under RERUN whose first attempt's row failed."""
    deps = rig.workers[0].deps
    rule = deps.playbooks.current.rule("adf-copy-failed")
    assert rule is not None
    event, now = _event(id="evt_1"), rig.clock.now()
    opened, _ = lifecycle.open_or_join(rig.db, event, target=pipeline.target_of(event),
                                       alert_key="", now=now)
    incidents.set_rule(rig.db, opened.id, rule.id, event.id,
                       msgspec.json.encode(event).decode(), to_ms(now),
                       matches={rule.id: {}})
    incidents.add_attempt(rig.db, opened.id, to_ms(now))
    fresh = incidents.get(rig.db, opened.id)
    assert fresh is not None
    [row] = planner.plan_attempt(deps, fresh, planner.match_of(fresh, rule, event), event,
                                 phase="remediate", state="scheduled", dry_run=False)
    assert lifecycle.remediate(rig.db, fresh, reason="actions planned", now=now)
    assert actions.start(rig.db, row.id, owner=deps.owner, now_ms=to_ms(now))
    actions.finish(rig.db, row.id, "failed", now_ms=to_ms(now), error="boom")
    found = incidents.get(rig.db, opened.id)
    assert found is not None
    return found


def test_an_attempt_settled_by_two_replicas_at_once_is_followed_by_one_next_attempt(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    a, b = pair
    deps_a, deps_b = (rig.worker(RERUN).deps for rig in (a, b))
    incident = _failed_attempt(a)
    first, second = _race(a.db, lambda: settle.settle(deps_a, incident.id, 1),
                          lambda: settle.settle(deps_b, incident.id, 1))
    assert (first, second) == (True, False)  # the second found attempt 1 settled already
    after = incidents.get(a.db, incident.id)
    assert after is not None
    assert (after.state, after.attempts) == ("remediating", 2)
    assert [(r.attempt, r.state) for r in actions.for_incident(a.db, incident.id)] == [
        (1, "failed"), (2, "scheduled")]


def test_two_replicas_process_events_of_two_lanes_at_once_under_one_budget(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    a, b = pair
    workers = [rig.worker(NOOP_BUDGET) for rig in (a, b)]
    ids = [a.deliver(adf_event(resource=name, dedup_key=name)) for name in ("p1", "p2")]
    claimed = [deadletter.claim(w.deps, 1) for w in workers]  # one event each
    assert sorted(s.event.id for [s] in claimed) == sorted(ids)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def process(worker: Any, stored: inbox.StoredEvent) -> None:
        start.wait()
        try:
            pipeline.process(worker.deps, stored)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=process, args=(w, s))
               for w, [s] in zip(workers, claimed, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert [inbox.get(a.db, i).state for i in ids] == ["done", "done"]
    states = sorted((i.state, i.reason) for i in incidents.list_incidents(a.db))
    assert states == [
        ("escalated", "budget spent: 1 of 1 attempts in 86400s per rule"),
        ("resolved", "actions succeeded; nothing to verify")]
    assert len([r for i in incidents.list_incidents(a.db)
                for r in actions.for_incident(a.db, i.id)]) == 1
    assert audit_store.verify_chain(a.db).ok


def test_an_event_whose_transaction_loses_a_deadlock_is_run_again(
    pair: tuple[EngineRig, EngineRig], pg_url: str,
) -> None:
    a, _ = pair
    with psycopg.connect(pg_url, autocommit=True) as admin:
        # The worker's sessions look for a deadlock 2 s into a wait (once): by then the cycle
        # below is made; the other session never looks, so the worker is the one rolled back.
        admin.execute("ALTER DATABASE " + pg_url.rsplit("/", 1)[1]
                      + " SET deadlock_timeout = '2s'")
    rig = EngineRig(db=Database(pg_url), clock=a.clock, sandbox=a.sandbox, tmp=a.tmp,
                    ctx=a.ctx)
    try:
        _deadlock(rig)
    finally:
        for built in rig.workers:
            built.stop()
        rig.db.close()


def _deadlocks(db: Database) -> int:
    rows = db.query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0]["deadlocks"])


def _deadlock(rig: EngineRig) -> None:
    worker = rig.worker(RERUN)
    held, _ = _open(rig.db, _event(id="evt_0"), to_ms(rig.clock.now()))  # the event joins it
    event_id = rig.deliver(adf_event(dedup_key="again"))
    done = threading.Event()
    drained: list[int] = []

    def drain() -> None:
        drained.append(worker.drain())
        done.set()

    deadlocks = _deadlocks(rig.db)
    with psycopg.connect(rig.db.url) as other:  # type: ignore[attr-defined]
        # Another replica's transaction: the incident's row, then (once the worker waits
        # for that row) a record under the seq of the worker's uncommitted ``received``
        # record, which waits for the worker's transaction: a cycle.
        other.execute("SET deadlock_timeout = '60s'")
        other.execute("SELECT 1 FROM incidents WHERE id = %s FOR UPDATE", (held.id,))
        thread = threading.Thread(target=drain)
        thread.start()
        poll(lambda: done.is_set() or _lock_waits(rig.db) > 0, what="the worker waiting")
        other.execute("INSERT INTO audit (seq, ts, ts_ms, kind, data) SELECT last_value, "
                      "'', 0, 'received', '{}' FROM audit_seq_seq")
        other.rollback()
    thread.join(timeout=60)
    assert not thread.is_alive() and drained == [1]
    # the server broke one (the worker's); its statistics reach the view within seconds
    poll(lambda: _deadlocks(rig.db) > deadlocks, what="the deadlock counted")
    assert _deadlocks(rig.db) == deadlocks + 1
    stored = inbox.get(rig.db, event_id)
    assert stored is not None and stored.state == "done"
    joined = incidents.get(rig.db, held.id)
    assert joined is not None and joined.events == 2
    # The lost run's writes were rolled back, not committed beside the second run's.
    received = audit_store.list_records(rig.db, event_id=event_id, kind="received")
    assert [r.data["claim"] for r in received] == [1]
    assert audit_store.verify_chain(rig.db).ok


def test_two_replicas_claiming_at_once_keep_a_lanes_order(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    a, b = pair
    # lanes in arrival order: M, L, N, O, L; a claim of one looks at four (and locks them)
    ids = [a.deliver(adf_event(resource=lane, dedup_key=str(n)))
           for n, lane in enumerate(("m", "l", "n", "o", "l"))]
    now_ms = to_ms(a.clock.now())

    def claim(db: Database) -> list[str]:
        return [s.event.id for s in inbox.claim(db, limit=1, lease_ms=60_000, now_ms=now_ms,
                                                owner=db.path)]

    first, second = _race(a.db, lambda: claim(a.db), lambda: claim(b.db))
    # the second takes lane L's first event, never its second one past it
    assert (first, second) == ([ids[0]], [ids[1]])


def test_two_replicas_scraping_at_once_fold_each_record_once(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    a, b = pair
    audit_store.append(a.db, "matched", ts=a.clock.now(), data={"rules": ["r1"]})
    assert audit_store.link(a.db) == 1
    # Both read the folding cursor before either commits: each would add the record.
    _race(a.db, lambda: metrics_store.refresh(a.db), lambda: metrics_store.refresh(b.db))
    assert [(c.labels, c.value) for c in metrics_store.counts(a.db, "matches")] == [
        ({"rule": "r1"}, 1)]


def _plan_without_acting(deps: Any, event: ErrorEvent) -> pipeline.Job:
    """An event's stages up to its plan (the act stage would call out: commit and go on)."""
    job = pipeline.Job(event=event)
    for stage in pipeline.STAGES[:-1]:
        stage(deps, job)
        if job.done:
            break
    return job


def test_a_resolve_by_hand_against_planning_on_its_incident_waits_and_wins(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    # Planning holds the incident's row (its rule set) and then takes the target's lock; a
    # resolve by hand on another replica takes the row, then deletes the lock: one order, so
    # the resolve waits for the plan and then cancels what it planned (no deadlock).
    a, b = pair
    deps = a.worker(RERUN, live=True).deps
    event = _event(id="evt_1")
    held, _ = _open(a.db, event, to_ms(a.clock.now()))  # an open incident the event joins
    deadlocks = _deadlocks(a.db)
    job, closed = _race(a.db, lambda: _plan_without_acting(deps, event),
                        lambda: operators.resolve(b.db, held.id, "fixed it", "alice"))
    assert job.incident is not None and job.incident.state == "remediating"
    assert (closed.id, closed.state) == (held.id, "resolved")
    assert [r.state for r in actions.for_incident(a.db, held.id)] == ["cancelled"]
    assert state_store.get_lock(a.db, held.target, to_ms(a.clock.now())) is None
    assert _deadlocks(a.db) == deadlocks
    assert audit_store.verify_chain(a.db).ok


def test_an_event_of_an_incident_resolved_by_hand_meanwhile_opens_the_next_one(
    pair: tuple[EngineRig, EngineRig],
) -> None:
    # The resolve holds the incident's row and the target's lock row; the next event of the
    # failure, on another replica, waits on the row (open-or-join's ON CONFLICT), then opens
    # a new incident (the held one is no longer active) and plans it under a fresh lock.
    a, b = pair
    deps_a, deps_b = (rig.worker(RERUN, live=True).deps for rig in (a, b))
    first = _plan_without_acting(deps_a, _event(id="evt_1"))
    assert first.incident is not None and first.incident.state == "remediating"
    incident_id = first.incident.id
    deadlocks = _deadlocks(a.db)
    closed, job = _race(a.db, lambda: operators.resolve(a.db, incident_id, "fixed", "alice"),
                        lambda: _plan_without_acting(deps_b, _event(id="evt_2",
                                                                    dedup_key="again")))
    assert closed.state == "resolved"
    assert job.incident is not None and job.incident.id != incident_id
    assert job.incident.state == "remediating"
    assert [r.state for r in actions.for_incident(a.db, incident_id)] == ["cancelled"]
    assert [r.state for r in actions.for_incident(a.db, job.incident.id)] == ["scheduled"]
    lock = state_store.get_lock(a.db, job.incident.target, to_ms(a.clock.now()))
    assert lock is not None and lock.holder == job.incident.id
    assert _deadlocks(a.db) == deadlocks
    assert audit_store.verify_chain(a.db).ok
