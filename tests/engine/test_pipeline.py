"""The pipeline's paths beyond one rule and one rerun: rules matched through
``continue: true``, the ``ignore`` action, playbook hashes in the audit log, ``[engine]``
settings and the worker's clock, ``jobs.on_success`` resolving, cluster tags from
enrichment, and a polled cluster event through the shipped playbooks."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from engine.actions.registry import action_table
from engine.clock import to_ms
from engine.cloud.enrich import enrich
from engine.config import (
    DatabricksPollSettings,
    EngineSettings,
    PollerSettings,
    Settings,
    load_settings,
)
from engine.events import ErrorEvent
from engine.rules.active import ActivePlaybooks
from engine.runtime.pollers import DatabricksPoller
from engine.runtime.worker import Worker
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from receivers.databricks import parse, parse_cluster_events_page
from tests.engine.actions.conftest import WORKSPACE_ID, adf_event, cloud_settings
from tests.engine.test_worker import RERUN, kinds, only_incident, reruns
from tests.fixtures.common import load_sample
from tests.fixtures.engine import EngineRig

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "0314-020004-k3x9wq2e"


CONTINUED = """\
name: engine
rules:
  - id: tell-oncall
    continue: true
    match: {source: adf}
    actions:
      - action: noop
        with: {note: "adf failure on {{ event.resource }}"}
  - id: adf-copy-failed
    match: {source: adf, error_code: "2200"}
    actions:
      - action: adf.rerun_pipeline
        with: {start_from_failure: true}
"""


def test_rules_matched_through_continue_plan_into_one_incident(engine_rig: EngineRig) -> None:
    rig = engine_rig
    worker = rig.worker(CONTINUED, live=True)
    rig.deliver(adf_event())
    worker.drain()
    incident = only_incident(rig)
    assert incident.rule_id == "tell-oncall"  # the first matched rule owns the incident
    # Planned in the same millisecond, both at index 0: their order among themselves is free.
    rows = sorted(actions_store.for_incident(rig.db, incident.id), key=lambda r: r.rule_id)
    assert [(r.rule_id, r.action, r.state) for r in rows] == [
        ("adf-copy-failed", "adf.rerun_pipeline", "succeeded"),
        ("tell-oncall", "noop", "succeeded")]
    assert rows[0].idem_key.endswith("|remediate|1|adf-copy-failed")
    assert len(reruns(rig.sandbox)) == 1
    assert incident.state == "verifying"  # the primary's verification defaults apply


def test_continued_rules_are_dry_run_too(engine_rig: EngineRig) -> None:
    rig = engine_rig
    worker = rig.worker(CONTINUED)
    rig.deliver(adf_event())
    worker.drain()
    rows = actions_store.for_incident(rig.db, only_incident(rig).id)
    assert sorted((r.action, r.state) for r in rows) == [("adf.rerun_pipeline", "dry_run"),
                                                         ("noop", "succeeded")]
    assert reruns(rig.sandbox) == []
    incident = only_incident(rig)
    assert incident.state == "ignored"
    assert incident.reason.startswith("dry-run: would do: ")


IGNORE = """\
name: engine
rules:
  - id: expected
    match: {source: adf}
    actions:
      - action: ignore
        with: {reason: "nightly maintenance window"}
"""


def test_the_ignore_action_closes_the_incident_as_ignored(engine_rig: EngineRig) -> None:
    rig = engine_rig
    worker = rig.worker(IGNORE)  # dry-run: ignore touches no cloud, so it runs
    rig.deliver(adf_event())
    worker.drain()
    incident = only_incident(rig)
    assert (incident.state, incident.reason) == (
        "ignored", "engine.yaml:expected/actions[0]: closed as expected: "
                   "nightly maintenance window")
    assert kinds(rig, incident.id)[-2:] == ["action_succeeded", "resolution"]
    [resolution] = audit_store.list_records(rig.db, kind="resolution")
    assert resolution.data["state"] == "ignored"


def test_planned_and_started_records_name_the_playbook_and_its_hash(
        engine_rig: EngineRig) -> None:
    rig = engine_rig
    worker = rig.worker(RERUN, live=True)
    digest = "sha256:" + hashlib.sha256(
        (rig.tmp / "playbooks" / "engine.yaml").read_bytes()).hexdigest()
    rig.deliver(adf_event())
    worker.drain()
    for kind in ("action_planned", "action_started"):
        [record] = audit_store.list_records(rig.db, kind=kind)
        assert record.data["playbook"] == str(rig.tmp / "playbooks" / "engine.yaml")
        assert record.data["playbook_hash"] == digest


def test_engine_options_come_from_the_settings(engine_rig: EngineRig) -> None:
    settings = load_settings(None, env={}, engine={"retry_limit": 7, "breaker_threshold": 2,
                                                   "approval_timeout_s": 600, "threads": 2})
    worker = Worker(engine_rig.db, None, {}, engine_rig.ctx, settings, engine_rig.clock)
    engine_rig.workers.append(worker)
    assert worker.deps.options == EngineSettings(retry_limit=7, breaker_threshold=2,
                                                 approval_timeout_s=600, threads=2)


REPAIR = """\
name: engine
rules:
  - id: dbx-job-failed
    match: {source: databricks, kind: job_run}
    actions:
      - action: databricks.repair_run
        delay: 10m
"""


def test_jobs_on_success_resolves_the_jobs_open_incident(engine_rig: EngineRig) -> None:
    rig = engine_rig
    worker = rig.worker(REPAIR, live=True)
    failure = load_sample("databricks/databricks-job-on-failure.json")
    [failed] = parse(failure)
    rig.deliver(failed)
    worker.drain()
    assert only_incident(rig).state == "remediating"
    [success] = parse({**failure, "event_type": "jobs.on_success",
                       "run": {"run_id": "447120999"}})
    rig.deliver(success)
    worker.drain()
    incident = only_incident(rig)
    assert incident.state == "resolved"
    assert incident.reason.endswith("(jobs.on_success)")
    [row] = actions_store.for_incident(rig.db, incident.id)
    assert row.state == "cancelled"
    rig.clock.advance(minutes=10)
    assert worker.scheduler.tick().ran == 0
    repairs = [c for c in rig.sandbox.calls("databricks") if c["path"].endswith("runs/repair")]
    assert repairs == []


def test_enrichment_gives_cluster_events_their_tags(engine_rig: EngineRig) -> None:
    clients = engine_rig.ctx.clients
    workspace = clients.databricks(clients.databricks_route(WORKSPACE_ID))
    cluster = CLUSTER
    workspace.clusters.edit(cluster, "15.4.x-scala2.12",
                            custom_tags={"keep-alive": "true", "team": "data-eng"})
    event = ErrorEvent(source="databricks", kind="cluster", status="firing",
                       dedup_key=f"dbx-cluster:{cluster}:1", resource=f"etl-{cluster}",
                       resource_id=cluster, error_code="INACTIVITY",
                       attributes={"cluster_id": cluster, "workspace_id": WORKSPACE_ID})
    [enriched] = enrich(event, clients).events
    assert enriched.attributes["cluster_tags"] == {"keep-alive": "true", "team": "data-eng"}


def test_leases_follow_the_workers_clock(engine_rig: EngineRig) -> None:
    rig = engine_rig
    worker = rig.worker(RERUN, options=EngineSettings(event_lease_s=300))
    event_id = rig.deliver(adf_event())
    now_ms = to_ms(rig.clock.now())
    [claimed] = inbox.claim(rig.db, limit=5, lease_ms=300_000, now_ms=now_ms)
    assert claimed.event.id == event_id
    # Leased until fake now + 300 s: invisible until then on the fake clock.
    assert inbox.claim(rig.db, limit=5, lease_ms=1, now_ms=now_ms + 299_999) == []
    assert worker.drain() == 0
    rig.clock.advance(301)
    assert worker.drain() == 1
    assert inbox.get(rig.db, event_id).state == "done"


def test_a_polled_inactivity_of_a_keep_alive_cluster_is_started_again(
        engine_rig: EngineRig) -> None:
    """Poller -> inbox -> worker with enrichment -> the shipped keep-alive rule (dry-run)."""
    rig = engine_rig
    clients = rig.ctx.clients
    workspace = clients.databricks(clients.databricks_route(WORKSPACE_ID))
    workspace.clusters.edit(CLUSTER, "15.4.x-scala2.12",
                            custom_tags={"remediator-keep-alive": "TRUE"})
    rig.clock.set(datetime(2025, 3, 14, 9, 30, tzinfo=UTC))  # sees 09:42 and 14:38
    table = action_table()
    worker = Worker(rig.db, ActivePlaybooks([ROOT / "playbooks"], table), table, rig.ctx,
                    load_settings(None, env={}), rig.clock,
                    enrich=lambda event: enrich(event, clients))
    rig.workers.append(worker)
    settings = Settings(clouds=cloud_settings(rig.sandbox), pollers=PollerSettings(
        databricks={"ws": DatabricksPollSettings(clusters=(CLUSTER,))}))
    report = DatabricksPoller(worker.deps, clients, settings,
                              parse_cluster_events_page).poll_cluster_events()
    assert report.inserted == 2
    assert worker.drain() == 2
    by_rule = {i.rule_id: i for i in incidents_store.list_incidents(rig.db)}
    assert sorted(by_rule) == ["dbx-cluster-keep-alive", "dbx-cluster-node-lost"]
    [row] = actions_store.for_incident(rig.db, by_rule["dbx-cluster-keep-alive"].id)
    assert (row.action, row.state) == ("databricks.start_cluster", "dry_run")
    starts = [c for c in rig.sandbox.calls("databricks") if c["path"].endswith("clusters/start")]
    assert starts == []
