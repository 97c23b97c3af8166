"""Databricks pollers against the sandbox through the real SDK: cluster events become inbox
events once, checkpoints live in the database, missed failed runs become the webhook's own
event, and a failing poll is survived."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.config import DatabricksPollSettings, PollerSettings, Settings
from engine.deps import Deps
from engine.runtime.pollers import ENDPOINT, DatabricksPoller, PollReport, register
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store import state as state_store
from engine.store.db import Database
from receivers.databricks import parse, parse_cluster_events_page
from tests.engine.actions.conftest import WORKSPACE_ID, cloud_settings
from tests.engine.test_worker import RERUN
from tests.fixtures.common import load_sample, reopen
from tests.fixtures.engine import EngineRig

CLUSTER = "0314-020004-k3x9wq2e"
CHECKPOINT = f"databricks-cluster-events:ws:{CLUSTER}"
DRIVER_UNREACHABLE_MS = 1741963104552  # the sandbox's last TERMINATING event of a cluster
RUN_ID = "447120398"  # the failed run of the Databricks job-failure sample


def settings_for(sandbox: Any, clusters: Any = (CLUSTER,), reconcile: bool = True) -> Settings:
    poll = DatabricksPollSettings(clusters=clusters, reconcile_runs=reconcile)
    return Settings(clouds=cloud_settings(sandbox),
                    pollers=PollerSettings(databricks={"ws": poll}))


def poller(rig: EngineRig, db: Database | None = None, **kw: Any) -> DatabricksPoller:
    deps = rig.worker(RERUN).deps
    if db is not None:
        deps = Deps(db=db, playbooks=deps.playbooks, actions=deps.actions, ctx=deps.ctx,
                    live=False, clock=rig.clock)
    return DatabricksPoller(deps, rig.ctx.clients, settings_for(rig.sandbox, **kw),
                            parse_cluster_events_page)


def event_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls("databricks") if c["path"].endswith("/clusters/events")]


@pytest.fixture
def afternoon(engine_rig: EngineRig) -> EngineRig:
    """14:00 on the sandbox's day: a one-hour look-back sees only the 14:38 termination."""
    engine_rig.clock.set(datetime(2025, 3, 14, 14, 0, tzinfo=UTC))
    workspace = engine_rig.ctx.clients.databricks(
        engine_rig.ctx.clients.databricks_route(WORKSPACE_ID))
    workspace.clusters.get(CLUSTER)  # the workspace knows the cluster (and its name)
    return engine_rig


def test_a_terminated_cluster_becomes_one_event_once(afternoon: EngineRig) -> None:
    rig = afternoon
    assert poller(rig).poll_cluster_events() == PollReport(inserted=1)

    [stored] = inbox.list_events(rig.db)
    event = stored.event
    assert stored.endpoint == ENDPOINT
    assert (event.kind, event.status, event.error_code, event.resource) == (
        "cluster", "firing", "DRIVER_UNREACHABLE", f"etl-{CLUSTER}")
    assert event.dedup_key == f"dbx-cluster:{CLUSTER}:{DRIVER_UNREACHABLE_MS}"
    assert event.attributes["workspace"] == WORKSPACE_ID
    assert state_store.get_checkpoint(rig.db, CHECKPOINT) == str(DRIVER_UNREACHABLE_MS + 1)
    [call] = event_calls(rig.sandbox)
    assert call["path"] == "/api/2.1/clusters/events"
    assert call["body"] == {"cluster_id": CLUSTER, "start_time": 1741957200000,
                            "order": "ASC", "event_types": ["TERMINATING"], "limit": 100}

    assert poller(rig).poll_cluster_events() == PollReport()
    assert len(inbox.list_events(rig.db)) == 1
    assert event_calls(rig.sandbox)[-1]["body"]["start_time"] == DRIVER_UNREACHABLE_MS + 1


def test_the_checkpoint_persists_in_the_database_file(afternoon: EngineRig) -> None:
    rig = afternoon
    poller(rig).poll_cluster_events()
    reopened = reopen(rig.db)
    try:
        assert state_store.get_checkpoint(reopened, CHECKPOINT) == str(DRIVER_UNREACHABLE_MS + 1)
        assert poller(rig, db=reopened).poll_cluster_events() == PollReport()
        assert event_calls(rig.sandbox)[-1]["body"]["start_time"] == DRIVER_UNREACHABLE_MS + 1
    finally:
        reopened.close()


def test_every_page_is_followed_and_all_lists_the_clusters(engine_rig: EngineRig) -> None:
    # 09:00 with a one-hour look-back: the 09:42 INACTIVITY and the 14:38 termination.
    rig = engine_rig
    rig.ctx.clients.databricks(rig.ctx.clients.databricks_route(WORKSPACE_ID)) \
        .clusters.get(CLUSTER)
    from engine.cloud import poll
    pages = list(poll.cluster_event_pages(
        rig.ctx.clients, rig.ctx.clients.databricks_route(WORKSPACE_ID), CLUSTER, 0))
    assert [len(p["events"]) for p in pages] == [2]

    assert poller(rig, clusters="all").poll_cluster_events() == PollReport(inserted=2)
    codes = sorted(s.event.error_code for s in inbox.list_events(rig.db))
    assert codes == ["DRIVER_UNREACHABLE", "INACTIVITY"]
    assert [c["path"] for c in rig.sandbox.calls("databricks")][-2:] == [
        "/api/2.1/clusters/list", "/api/2.1/clusters/events"]


def test_a_503_on_the_poll_is_survived(afternoon: EngineRig) -> None:
    rig = afternoon
    rig.sandbox.script("databricks", "clusters.events", status=503, retry_after=30)
    report = poller(rig).poll_cluster_events()
    assert report.inserted == 0
    [error] = report.errors
    where = f"databricks:ws:cluster:{CLUSTER}"
    assert error == (f"{where}: databricks clusters.events [cluster_id={CLUSTER}]: gave up "
                     "retrying: 503 TEMPORARILY_UNAVAILABLE: Scripted failure 503 "
                     "(retry after 30 s)")
    [record] = audit_store.list_records(rig.db, kind="poll")
    assert record.data == {"poller": "cluster-events", "ok": False, "error": error,
                           "resource": where}
    assert inbox.list_events(rig.db) == []
    # The first look-back was stored before the call; the failure did not move it.
    assert state_store.get_checkpoint(rig.db, CHECKPOINT) == "1741957200000"

    assert poller(rig).poll_cluster_events() == PollReport(inserted=1)


def seed_failed_run(rig: EngineRig) -> None:
    """The sandbox's workspace learns of the sample's failed run (no webhook was sent)."""
    workspace = rig.ctx.clients.databricks(rig.ctx.clients.databricks_route(WORKSPACE_ID))
    workspace.jobs.get_run(int(RUN_ID))


def test_a_failed_run_without_webhook_becomes_the_webhooks_event(engine_rig: EngineRig) -> None:
    rig = engine_rig
    seed_failed_run(rig)
    assert poller(rig).reconcile_runs() == PollReport(inserted=1)
    [stored] = inbox.list_events(rig.db)
    event = stored.event
    assert event.dedup_key == f"dbx:jobs.on_failure:{RUN_ID}"
    assert (event.kind, event.status, event.run_id, event.resource_id, event.resource) == (
        "job_run", "firing", RUN_ID, "816305927331", "sales_bronze_to_silver")
    assert event.attributes["detected_by"] == "reconciler"
    assert event.attributes["result_state"] == "FAILED"
    [call] = [c for c in rig.sandbox.calls("databricks") if c["path"].endswith("runs/list")]
    assert call["query"]["completed_only"] == "true"
    assert call["query"]["start_time_from"] == str(1741942800000 - 24 * 3600 * 1000)

    # The webhook for the same run arrives afterwards: a duplicate, same fingerprint.
    [webhook] = parse(load_sample("databricks/databricks-job-on-failure.json"))
    assert webhook.fingerprint == event.fingerprint
    [receipt] = inbox.insert(rig.db, [webhook], {}, "/databricks-monitor")
    assert (receipt.duplicate, receipt.event_id) == (True, event.id)
    # And the next reconciliation finds it again: a duplicate too.
    assert poller(rig).reconcile_runs() == PollReport(duplicates=1)
    assert len(inbox.list_events(rig.db)) == 1


def test_a_webhook_first_makes_the_reconciled_run_a_duplicate(engine_rig: EngineRig) -> None:
    rig = engine_rig
    [webhook] = parse(load_sample("databricks/databricks-job-on-failure.json"))
    inbox.insert(rig.db, [webhook], {}, "/databricks-monitor")
    seed_failed_run(rig)
    assert poller(rig).reconcile_runs() == PollReport(duplicates=1)
    assert len(inbox.list_events(rig.db)) == 1


def test_a_run_the_in_house_sender_reported_is_not_reconciled_again(
    engine_rig: EngineRig,
) -> None:
    # The in-house `job.failure` shape (a seed payload) for the same run, under its own key.
    rig = engine_rig
    payload = load_sample("seed/databricks-job-failure.json")
    payload["run"]["run_id"] = int(RUN_ID)
    [reported] = parse(payload)
    assert reported.dedup_key == f"dbx:job.failure:{RUN_ID}"
    inbox.insert(rig.db, [reported], {}, "/databricks-monitor")
    seed_failed_run(rig)
    assert poller(rig).reconcile_runs() == PollReport(duplicates=1)
    assert [e.event.dedup_key for e in inbox.list_events(rig.db)] == [reported.dedup_key]


def test_the_run_checkpoint_keeps_the_look_back(engine_rig: EngineRig) -> None:
    rig = engine_rig
    key = "databricks-runs:ws"
    poller(rig).reconcile_runs()
    assert state_store.get_checkpoint(rig.db, key) == str(1741942800000 - 24 * 3600 * 1000)
    rig.clock.advance(hours=2)
    poller(rig).reconcile_runs()
    assert state_store.get_checkpoint(rig.db, key) == str(1741950000000 - 24 * 3600 * 1000)


def test_register_adds_the_periodic_jobs(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN)
    register(worker.scheduler, worker.deps, engine_rig.ctx.clients,
             settings_for(engine_rig.sandbox), parse_cluster_events_page)
    assert [(name, every) for name, _, every in worker.scheduler._extra] == [
        ("databricks-cluster-events", 60.0), ("databricks-missed-runs", 300.0)]
    idle = engine_rig.worker(RERUN)
    register(idle.scheduler, idle.deps, engine_rig.ctx.clients, Settings(),
             parse_cluster_events_page)
    assert idle.scheduler._extra == []


def test_what_a_poll_stores_is_redacted_like_a_webhook(afternoon: EngineRig) -> None:
    """A cluster's termination parameters and a run's state message are the clouds' own text:
    they are stored redacted, as the receivers store a sender's text."""
    rig = afternoon
    secret = "Hunter2-Planted-S3cret"
    token = "dapi0123456789abcdef0123456789abcdef"
    rig.sandbox.script("databricks", "clusters.events", body={"total_count": 1, "events": [{
        "cluster_id": CLUSTER, "timestamp": DRIVER_UNREACHABLE_MS, "type": "TERMINATING",
        "details": {"reason": {"code": "DRIVER_UNREACHABLE", "type": "CLOUD_FAILURE",
                               "parameters": {"databricks_error_message":
                                              f"init script: password={secret} {token}"}}}}]})
    assert poller(rig).poll_cluster_events() == PollReport(inserted=1)
    seed_failed_run(rig)
    rig.sandbox.script("databricks", "jobs.runs.list", body={"runs": [{
        "job_id": 816305927331, "run_id": int(RUN_ID), "run_name": "sales_bronze_to_silver",
        "start_time": 1741942800000, "end_time": 1741942900000,
        "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                  "state_message": f"Task failed: password={secret} token {token}"}}]})
    assert poller(rig).reconcile_runs() == PollReport(inserted=1)
    stored = rig.db.query("SELECT event, raw FROM events")
    assert len(stored) == 2
    text = repr([tuple(row) for row in stored])
    assert secret not in text and token not in text
    assert "password=***" in text


def test_a_leader_that_lost_the_lease_leaves_the_checkpoint_to_its_successor(
        engine_rig: EngineRig) -> None:
    """Item 4 of issue 17: the pollers' checkpoints are written under the leader's epoch; a
    replica that still runs a tick after losing the lease ends it without moving them."""
    from engine.store import leases

    rig, key = engine_rig, "databricks-runs:ws"
    assert leases.hold(rig.db, leases.LEADER, "proc_old", ttl_s=30) == 1
    leases.release(rig.db, leases.LEADER, "proc_old")  # as if it lapsed in a long pause
    assert leases.hold(rig.db, leases.LEADER, "proc_new", ttl_s=30) == 2
    state_store.set_checkpoint(rig.db, key, "1741900000000", 0, fence=("proc_new", 2))

    def reconciler(fence: tuple[str, int]) -> Any:
        worker = rig.worker(RERUN)
        register(worker.scheduler, worker.deps, rig.ctx.clients,
                 settings_for(rig.sandbox, clusters=()), parse_cluster_events_page,
                 fence=lambda: fence)
        [(name, job, _)] = worker.scheduler._extra
        assert name == "databricks-missed-runs"
        return job

    def checkpoint() -> tuple[str, int]:
        [row] = rig.db.query("SELECT value, updated_ms FROM state WHERE key = ?",
                             (f"checkpoint:{key}",))
        return row["value"], row["updated_ms"]

    assert reconciler(("proc_old", 1))() is None  # fenced: the tick ends, nothing raised
    assert checkpoint() == ('"1741900000000"', 0)
    assert reconciler(("proc_new", 2))() == PollReport()
    assert checkpoint() == ('"1741900000000"', 1741942800000)  # written by the leader
