"""The incident outbox: one notification per state change, shaped per channel (Slack, Teams,
generic JSON), posted over real HTTP to a local sink, retried with backoff and audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from cli.drive import Sink
from engine import lifecycle
from engine.actions.context import ActionContext
from engine.clock import FakeClock, from_ms, to_ms
from engine.cloud.clients import Clients
from engine.config import Settings, load_settings
from engine.runtime.notifications import Notifier, register
from engine.runtime.scheduler import Scheduler
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store.db import Database
from tests.engine.actions.conftest import adf_event, cloud_settings

PUBLIC = "https://remediator.example"


def make_settings(sandbox: Any, sink: Sink, channels: tuple[str, ...],
                  **notifications: Any) -> Settings:
    base = load_settings(None, env={}, public_url=PUBLIC,
                         notifications={"channels": list(channels), "backoff_s": 30,
                                        "retries": 2, **notifications},
                         clouds={"channels": {name: {"url": f"{sink.url}/{name}"}
                                              for name in channels}})
    clouds = cloud_settings(sandbox, channels={
        "slack": {"url": f"{sink.url}/hooks/T0/B0/slacksecret", "format": "slack"},
        "teams": {"url": f"{sink.url}/workflows/teamssecret?sig=abc", "format": "teams"},
        "generic": {"url": f"{sink.url}/generic", "format": "json",
                    "headers": {"x-api-key": "generic-key-1"}},
    })
    return msgspec.structs.replace(base, clouds=clouds)


@pytest.fixture
def rig(sandbox: Any, sink: Sink, db: Database) -> Iterator[Any]:
    made: list[Clients] = []

    def build(*channels: str, **notifications: Any) -> Notifier:
        settings = make_settings(sandbox, sink, channels, **notifications)
        clients = Clients(settings.clouds)
        made.append(clients)
        return Notifier(db, ActionContext(clients=clients), settings, FakeClock())

    yield build
    for clients in made:
        clients.close()


def open_incident(db: Database, clock_ms: int = 1_000, **event_over: Any) -> str:
    event = adf_event(id="evt_1", **event_over).with_fingerprint()
    incident, _ = lifecycle.open_or_join(db, event, target="adf:pipeline:f/p", alert_key="",
                                         now=from_ms(clock_ms))
    incidents_store.set_rule(db, incident.id, "", event.id, msgspec.json.encode(event).decode(),
                             clock_ms)
    return incident.id


def sent(db: Database) -> list[dict[str, Any]]:
    """The notification audit records (their resource aside: always the pipeline)."""
    records = audit_store.list_records(db, kind="notification")
    assert {r.data["resource"] for r in records} <= {"pl_ingest_sales_daily"}
    return [{k: v for k, v in r.data.items() if k != "resource"} for r in records]


def test_a_storm_gives_one_notification_per_state_change(rig: Any, sink: Sink,
                                                         db: Database) -> None:
    notifier = rig("generic")
    incident_id = open_incident(db)
    for n in range(999):  # 999 more events of the same failure join the incident
        lifecycle.open_or_join(db, adf_event(id=f"evt_{n + 2}").with_fingerprint(),
                               target="adf:pipeline:f/p", alert_key="", now=from_ms(2_000 + n))
    assert incidents_store.get(db, incident_id).events == 1000
    assert notifier.tick() == 1
    assert notifier.tick() == 0
    assert [r["body"]["incident"]["state"] for r in sink.received] == ["open"]
    lifecycle.remediate(db, incidents_store.get(db, incident_id), reason="actions planned",
                        now=from_ms(5_000))
    lifecycle.escalate(db, incidents_store.get(db, incident_id), "no rule matched",
                       now=from_ms(6_000))
    assert notifier.tick() == 1  # two changes between ticks: one message, the latest state
    assert notifier.tick() == 0
    assert [r["body"]["incident"]["state"] for r in sink.received] == ["open", "escalated"]
    assert [(d["state"], d["outcome"]) for d in sent(db)] == [("open", "sent"),
                                                               ("escalated", "sent")]
    assert sink.received[0]["headers"]["Idempotency-Key"] == f"incident:{incident_id}:open:generic"


def test_payload_shapes_with_rca_summary_and_link(rig: Any, sink: Sink,
                                                  db: Database) -> None:
    notifier = rig("slack", "teams", "generic",
                   text="{{ incident.resource }} {{ incident.state }}: {{ rca.summary }}")
    incident_id = open_incident(
        db, error_code="UserErrorSourceBlobNotExist", severity=2,
        message="Blob missing; DefaultEndpointsProtocol=https;AccountKey=leakme0123==;")
    audit_store.append(db, "rca", ts=FakeClock().now(), incident_id=incident_id,
                       data={"analysis": {"summary": "The upstream file is late."}})
    lifecycle.escalate(db, incidents_store.get(db, incident_id), "no rule matched",
                       now=from_ms(2_000))
    assert notifier.tick() == 1
    slack, teams, generic = sink.received
    link = f"{PUBLIC}/incidents/{incident_id}"
    text = "pl_ingest_sales_daily escalated: The upstream file is late."
    title = "[escalated] pl_ingest_sales_daily: UserErrorSourceBlobNotExist"
    assert slack["path"] == "/hooks/T0/B0/slacksecret"
    assert slack["body"] == {"text": f"{title}: {text}", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": "*Source*\nadf"},
            {"type": "mrkdwn", "text": "*Resource*\npl_ingest_sales_daily"},
            {"type": "mrkdwn", "text": "*Run*\n7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"},
            {"type": "mrkdwn", "text": "*Error code*\nUserErrorSourceBlobNotExist"},
            {"type": "mrkdwn", "text": "*Severity*\nSev2"},
            {"type": "mrkdwn", "text": "*State*\nescalated"},
            {"type": "mrkdwn", "text": "*Events*\n1"}]},
        {"type": "context", "elements": [
            {"type": "mrkdwn", "text": "*Root cause:* The upstream file is late."}]},
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open incident"},
             "url": link}]},
    ]}
    [attachment] = teams["body"]["attachments"]
    assert teams["body"]["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0] == {"type": "TextBlock", "text": title, "weight": "Bolder",
                               "size": "Medium", "wrap": True}
    assert card["body"][1] == {"type": "TextBlock", "text": text, "wrap": True}
    assert card["body"][2]["type"] == "FactSet"
    assert card["body"][2]["facts"][3] == {"title": "Error code",
                                           "value": "UserErrorSourceBlobNotExist"}
    assert card["body"][3]["text"] == "Root cause: The upstream file is late."
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open incident",
                                "url": link}]
    body = generic["body"]
    assert (body["text"], body["title"], body["link"], body["rca"]) == (
        text, title, link, "The upstream file is late.")
    assert body["incident"] == {"id": incident_id, "state": "escalated",
                                "reason": "no rule matched", "events": 1}
    assert body["event"]["message"] == ("Blob missing; DefaultEndpointsProtocol=https;"
                                        "AccountKey=***;")
    assert generic["headers"]["x-api-key"] == "generic-key-1"
    assert all("leakme0123" not in str(r) for r in sink.received)


def test_a_failing_endpoint_is_retried_with_backoff_and_recorded(rig: Any, sink: Sink,
                                                                 db: Database) -> None:
    notifier = rig("generic")
    incident_id = open_incident(db)
    start = FakeClock().now()
    sink.status = 503
    assert notifier.tick(start) == 1
    assert notifier.tick(start + timedelta(seconds=29)) == 0  # not due yet
    assert notifier.tick(start + timedelta(seconds=30)) == 1
    sink.status = 200
    assert notifier.tick(start + timedelta(seconds=89)) == 0
    assert notifier.tick(start + timedelta(seconds=90)) == 1
    assert notifier.tick(start + timedelta(seconds=900)) == 0
    error = "notify.webhook[channel=generic]: 503 Service Unavailable"
    assert sent(db) == [
        {"state": "open", "outcome": "failed", "error": error, "attempt": 1,
         "retry_at": to_ms(start + timedelta(seconds=30))},
        {"state": "open", "outcome": "failed", "error": error, "attempt": 2,
         "retry_at": to_ms(start + timedelta(seconds=90))},
        {"state": "open", "outcome": "sent", "channels": ["generic"], "attempt": 3},
    ]
    assert len(sink.received) == 3
    assert {r["headers"]["Idempotency-Key"] for r in sink.received} == {
        f"incident:{incident_id}:open:generic"}


def test_retries_run_out_and_a_permanent_error_gives_up_at_once(rig: Any, sink: Sink,
                                                                db: Database) -> None:
    notifier = rig("generic", retries=1)
    open_incident(db)
    start = FakeClock().now()
    sink.status = 500
    notifier.tick(start)
    notifier.tick(start + timedelta(seconds=30))
    assert [(d["outcome"], d["attempt"]) for d in sent(db)] == [("failed", 1), ("gave_up", 2)]
    assert notifier.tick(start + timedelta(hours=1)) == 0
    sink.status = 404
    incident_id = incidents_store.list_incidents(db)[0].id
    lifecycle.escalate(db, incidents_store.get(db, incident_id), "x", now=start)
    notifier.tick(start + timedelta(hours=1))
    assert sent(db)[-1] == {"state": "escalated", "outcome": "gave_up", "attempt": 1,
                            "error": "notify.webhook[channel=generic]: 404 Not Found"}
    assert incidents_store.notifications_due(db, now_ms=to_ms(start) + 10**9) == []


def test_only_the_configured_states_are_announced(rig: Any, sink: Sink,
                                                  db: Database) -> None:
    notifier = rig("generic", states=["escalated", "resolved"])
    incident_id = open_incident(db)
    assert notifier.tick() == 1
    assert sink.received == []
    lifecycle.resolve(db, incidents_store.get(db, incident_id), "verified", now=from_ms(3_000))
    notifier.tick()
    assert [r["body"]["incident"]["state"] for r in sink.received] == ["resolved"]


def test_register_adds_the_job_only_with_channels(sandbox: Any, sink: Sink,
                                                  engine_rig: Any) -> None:
    worker = engine_rig.worker("name: p\nrules: []\n")
    scheduler: Scheduler = worker.scheduler
    assert register(scheduler, worker.deps, load_settings(None, env={})) is None
    settings = make_settings(sandbox, sink, ("generic",), every_s=7)
    assert isinstance(register(scheduler, worker.deps, settings), Notifier)
    assert [(name, every) for name, _, every in scheduler._extra] == [("notifications", 7)]


DELAYED_RERUN = """
name: adf
rules:
  - id: blob-missing
    match: {source: adf, error_code: UserErrorSourceBlobNotExist}
    actions:
      - action: adf.rerun_pipeline
        delay: 15m
"""


def test_a_storm_through_the_worker_is_one_notification(engine_rig: Any, sink: Sink,
                                                        sandbox: Any) -> None:
    worker = engine_rig.worker(DELAYED_RERUN, live=True)
    settings = make_settings(sandbox, sink, ("slack",))
    clients = Clients(settings.clouds)
    notifier = Notifier(engine_rig.db, ActionContext(clients=clients), settings,
                        engine_rig.clock)
    for n in range(100):
        engine_rig.deliver(adf_event(error_code="UserErrorSourceBlobNotExist",
                                     dedup_key=f"azmon:alert-{n}:Fired"))
    while worker.drain():
        pass
    [incident] = incidents_store.list_incidents(engine_rig.db)
    assert (incident.state, incident.events) == ("remediating", 100)
    assert notifier.tick() == 1
    assert notifier.tick() == 0
    [message] = sink.received
    assert message["body"]["blocks"][0]["text"]["text"] == (
        "[remediating] pl_ingest_sales_daily: UserErrorSourceBlobNotExist")
    assert message["body"]["text"] == ("[remediating] pl_ingest_sales_daily: "
                                       "UserErrorSourceBlobNotExist: pl_ingest_sales_daily is "
                                       "remediating: actions planned "
                                       "(UserErrorSourceBlobNotExist)")
    clients.close()


def test_replicas_ticking_at_once_send_each_state_once(rig: Any, sink: Sink,
                                                       db: Database) -> None:
    """Several replicas tick the outbox (issue 17): the one that takes an announcement sends
    it; the others pass over it."""
    replicas = [rig("generic") for _ in range(3)]
    for n in range(5):
        open_incident(db, clock_ms=1_000 + n, resource=f"pl_{n}", dedup_key=f"key-{n}")
    moment = from_ms(5_000)
    due = incidents_store.notifications_due(db, now_ms=to_ms(moment))
    assert len(due) == 5
    for item in due:  # each replica read the same due list before any of them sent
        for notifier in replicas:
            notifier._announce(item, moment)
    assert len(sink.received) == 5
    assert incidents_store.notifications_due(db, now_ms=to_ms(moment)) == []
