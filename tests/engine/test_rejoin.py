"""A storm of one unmatched failure is one incident, one RCA and one notification: later
events of the same failure (fingerprint and target) join the incident escalated as unmatched
within ``[engine] rejoin_window_s``, counted and audited as ``repeat``; after the window a new
occurrence opens a new incident (real worker, real database, notifications to a local sink)."""

from __future__ import annotations

from typing import Any

import msgspec

from cli.drive import Sink
from engine.actions.context import ActionContext
from engine.cloud.clients import Clients
from engine.config import EngineSettings, load_settings
from engine.runtime.notifications import Notifier
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from tests.engine.actions.conftest import adf_event, cloud_settings

PLAYBOOK = """\
name: other
rules:
  - id: databricks-only
    match: {source: databricks}
    actions: [{action: noop}]
"""
HOUR = 3600


def deliver(rig: Any, first: int, count: int) -> None:
    events = [adf_event(id=f"evt_{n}", run_id=f"run-{n}", dedup_key=f"alert-{n}",
                        error_code="UserErrorSqlTimeout").with_fingerprint()
              for n in range(first, first + count)]
    inbox.insert(rig.db, events, {}, "/test")


def drain(worker: Any) -> None:
    for _ in range(100):
        if not worker.drain():
            return
    raise AssertionError("the inbox did not drain")


def test_a_storm_of_one_unmatched_failure_is_one_incident(engine_rig: Any,
                                                           sandbox: Any) -> None:
    analysed: list[str] = []

    def rca(event: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
        analysed.append(event.run_id)
        return {"summary": "the SQL source timed out", "history": len(history)}

    worker = engine_rig.worker(PLAYBOOK, rca=rca,
                               options=EngineSettings(batch=500, rejoin_window_s=6 * HOUR))
    sink = Sink()
    clients = Clients(cloud_settings(sandbox, channels={"oncall": {"url": sink.url + "/oncall"}}))
    settings = load_settings(None, env={}, notifications={"channels": ["oncall"]},
                             clouds={"channels": {"oncall": {"url": sink.url + "/oncall"}}})
    notifier = Notifier(engine_rig.db, ActionContext(clients=clients), settings,
                        engine_rig.clock)
    try:
        deliver(engine_rig, 0, 1000)
        drain(worker)
        assert notifier.tick() == 1
        [first] = incidents_store.list_incidents(engine_rig.db)
        assert (first.state, first.reason, first.events) == ("escalated", "no rule matched",
                                                             1000)
        assert len(analysed) == 1 and analysed[0].startswith("run-")  # whichever came first
        assert len(audit_store.list_records(engine_rig.db, kind="rca", limit=5000)) == 1
        repeats = audit_store.list_records(engine_rig.db, kind="repeat", limit=5000)
        assert len(repeats) == 999
        assert {r.incident_id for r in repeats} == {first.id}
        assert repeats[-1].data["events"] == 1000
        assert [r["path"] for r in sink.received] == ["/oncall"]

        # Five hours later, still within the window: joins, nothing new to announce.
        engine_rig.clock.advance(5 * HOUR)
        deliver(engine_rig, 1000, 1)
        drain(worker)
        assert notifier.tick() == 0
        [again] = incidents_store.list_incidents(engine_rig.db)
        assert (again.id, again.state, again.events) == (first.id, "escalated", 1001)
        assert len(analysed) == 1

        # After the window (6 h from the escalation): a new incident, analysed and announced.
        engine_rig.clock.advance(1 * HOUR)
        deliver(engine_rig, 1001, 1)
        drain(worker)
        assert notifier.tick() == 1
        newest, older = incidents_store.list_incidents(engine_rig.db)
        assert older.id == first.id
        assert (newest.state, newest.events, newest.fingerprint) == ("escalated", 1,
                                                                     first.fingerprint)
        assert analysed[1:] == ["run-1001"]
        assert len(sink.received) == 2
        assert sink.received[1]["body"]["incident"]["id"] == newest.id
    finally:
        clients.close()
        sink.close()


def test_a_zero_window_opens_an_incident_per_event(engine_rig: Any) -> None:
    worker = engine_rig.worker(PLAYBOOK, options=EngineSettings(rejoin_window_s=0))
    deliver(engine_rig, 0, 3)
    drain(worker)
    found = incidents_store.list_incidents(engine_rig.db)
    assert [(i.state, i.events) for i in found] == [("escalated", 1)] * 3
    assert audit_store.list_records(engine_rig.db, kind="repeat") == []


def test_the_default_window_is_six_hours() -> None:
    assert load_settings(None, env={}).engine.rejoin_window_s == 6 * HOUR
    assert msgspec.structs.replace(EngineSettings(), rejoin_window_s=60).rejoin_window_s == 60
