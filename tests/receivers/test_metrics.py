"""/metrics after the real worker handled a few events: each series with its exact value."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from engine.store import metrics as metrics_store
from engine.store.db import Database
from tests.engine.actions.conftest import adf_event
from tests.fixtures.app import ADMIN_KEY, admin_headers, basic_header, receiver_headers
from tests.fixtures.dashboard import Seeded

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient[Any], headers: dict[str, str] | None = None) -> Samples:
    response = client.get("/metrics", headers=headers or {"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def test_metrics_need_the_admin_credential(client: TestClient[Any]) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}, receiver_headers("azure-monitor")):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="remediator-admin"'
    scrape(client, admin_headers())
    scrape(client, basic_header("prometheus", ADMIN_KEY))


def test_rejections_by_reason(client: TestClient[Any]) -> None:
    headers = receiver_headers("synapse-monitor")
    post = client.post
    assert post("/synapse-monitor", content=b"{not json", headers=headers).status_code == 400
    assert post("/synapse-monitor", content=b"[]", headers=headers).status_code == 422
    assert post("/synapse-monitor", content=b"{}", headers={
        **headers, "content-type": "application/xml"}).status_code == 415
    assert post("/synapse-monitor", content=b"{}").status_code == 401
    assert post("/synapse-monitor", content=b" " * (64 * 1024 + 1),
                headers=headers).status_code == 413
    s = scrape(client)
    for reason in ("malformed", "unknown_schema", "unsupported_media", "unauthorized",
                   "too_large"):
        assert value(s, "remediator_rejections_total", reason=reason) == 1, reason
    assert value(s, "remediator_rejections_total", reason="storage") == 0


def test_each_series_after_a_few_events(dash: TestClient[Any], seeded: Seeded) -> None:
    s = scrape(dash)
    assert value(s, "remediator_events_total", source="adf", status="firing") == 3
    assert value(s, "remediator_events_total", source="databricks", status="firing") == 1
    assert value(s, "remediator_rule_matches_total", rule="adf-copy-failed") == 2
    assert value(s, "remediator_rule_matches_total", rule="dbx-task-failed") == 1
    assert value(s, "remediator_actions_total", action="adf.rerun_pipeline",
                 outcome="planned") == 2
    assert value(s, "remediator_actions_total", action="noop", outcome="planned") == 1
    assert value(s, "remediator_actions_total", action="noop", outcome="succeeded") == 1
    assert value(s, "remediator_guard_blocks_total", guard="approval", decision="wait") == 2
    assert value(s, "remediator_rca_calls_total") == 1
    assert value(s, "remediator_rca_cache_hits_total") == 0
    assert value(s, "remediator_queue_depth") == 0
    assert value(s, "remediator_duplicates_total") == 0
    # the noop ran 90 s (of the engine's clock) after the events were received
    assert value(s, "remediator_first_action_seconds_count") == 1
    assert value(s, "remediator_first_action_seconds_bucket", le="60") == 0
    assert value(s, "remediator_first_action_seconds_bucket", le="300") == 1

    seeded.rig.deliver(adf_event(dedup_key="azmon:new:Fired", resource="pl_new"))
    seeded.rig.deliver(adf_event(dedup_key="azmon:new:Fired", resource="pl_new"))
    s = scrape(dash)
    assert value(s, "remediator_queue_depth") == 1
    assert value(s, "remediator_duplicates_total") == 1
    assert value(s, "remediator_events_total", source="adf", status="firing") == 4
    # a second scrape does not count anything twice
    assert value(scrape(dash), "remediator_rule_matches_total", rule="adf-copy-failed") == 2


def test_a_scrape_folds_at_most_a_batch(seeded: Seeded) -> None:
    db: Database = seeded.rig.db
    metrics_store.refresh(db, batch=3)
    matched = {tuple(c.labels.items()): c.value for c in metrics_store.counts(db, "matches")}
    # the first three records are the old incident's received, matched, incident
    assert matched == {(("rule", "adf-copy-failed"),): 1.0}
    metrics_store.refresh(db, batch=1_000)
    matched = {tuple(c.labels.items()): c.value for c in metrics_store.counts(db, "matches")}
    assert matched == {(("rule", "adf-copy-failed"),): 2.0, (("rule", "dbx-task-failed"),): 1.0}
