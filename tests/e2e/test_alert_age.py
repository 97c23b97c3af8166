"""An alert older than ``[engine] max_alert_age_s`` is recorded but not remediated (red-team
round after issue 14): the 2025 samples, posted today, were acted on, and only the pre-check
stood in the way. Real webhooks over HTTP, the worker, the sandbox's call log; the clock moves
by hand (the blob-missing sample fired at 2025-03-14T02:21:04Z)."""

from __future__ import annotations

from typing import Any

from engine.config import EngineSettings
from engine.store import audit as audit_store
from engine.store import inbox
from tests.e2e.test_precheck_e2e import _one_rule
from tests.e2e.test_remediation import BLOB
from tests.engine.actions.conftest import PIPELINE
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN

RERUN = _one_rule("adf.rerun_pipeline", "{source: adf}")


def test_an_alert_older_than_the_bound_is_recorded_not_remediated(service_rig: Any) -> None:
    rig = service_rig(RERUN, live=True)
    rig.clock.advance(days=1)  # 2025-03-15T09:00Z: the alert is 30 h 39 min old
    event_id = rig.post("azure-monitor", load_sample(BLOB))["event_id"]
    assert rig.run() == 1
    rig.tick(3600)
    assert rig.mutating_calls() == []
    assert rig.incidents() == []
    [guard] = audit_store.list_records(rig.db, event_id=event_id, kind="guard")
    assert guard.data == {"name": "age", "decision": "ignore", "resource": PIPELINE,
                          "reason": "alert from 2025-03-14T02:21:04.663000Z is 110335 s old, "
                                    "older than max_alert_age_s (86400 s): recorded, not "
                                    "remediated"}
    stored = inbox.get(rig.db, event_id)
    assert stored is not None and stored.state == "done"
    metrics = rig.client.get("/metrics", headers=ADMIN).text
    assert 'remediator_guard_blocks_total{decision="ignore",guard="age"} 1' in metrics


def test_the_same_alert_within_the_bound_is_remediated(service_rig: Any) -> None:
    rig = service_rig(RERUN, live=True)  # at 2025-03-14T09:00Z: 6 h 39 min old
    rig.post("azure-monitor", load_sample(BLOB))
    assert rig.run() == 1
    assert [path.rsplit("/", 1)[1] for _, path in rig.mutating_calls()] == ["createRun"]


def test_without_a_bound_an_old_alert_is_remediated(service_rig: Any) -> None:
    rig = service_rig(RERUN, live=True, engine=EngineSettings(max_alert_age_s=0))
    rig.clock.advance(days=400)
    rig.post("azure-monitor", load_sample(BLOB))
    assert rig.run() == 1
    assert [path.rsplit("/", 1)[1] for _, path in rig.mutating_calls()] == ["createRun"]
