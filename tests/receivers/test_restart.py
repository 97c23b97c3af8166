"""The inbox outlives the process: events stored by one app are there for the next."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from engine.config import Settings
from engine.store.db import Database
from receivers.app import create_app
from tests.fixtures.app import ENDPOINT_OF_SAMPLE, admin_headers, receiver_headers
from tests.fixtures.common import load_sample


def test_a_restart_keeps_the_inbox(app_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    samples = ["seed/adf-test-alert.json", "databricks/databricks-job-on-failure.json"]
    db = Database(path)
    with TestClient(create_app(app_settings, db)) as client:
        ids = []
        for sample in samples:
            endpoint = ENDPOINT_OF_SAMPLE[sample]
            response = client.post(f"/{endpoint}", json=load_sample(sample),
                                   headers=receiver_headers(endpoint))
            ids.append(response.json()["event_id"])
    db.close()

    db = Database(path)
    try:
        with TestClient(create_app(app_settings, db)) as client:
            listed = client.get("/api/events", headers=admin_headers()).json()
            assert [item["id"] for item in listed["items"]] == sorted(ids, reverse=True)
            first = client.get(f"/api/events/{ids[0]}", headers=admin_headers()).json()
            assert (first["resource"], first["run_id"]) == ("Test_ETL_Pipeline", "test-run-12345")
            assert first["raw"] == load_sample(samples[0])
            # A redelivery after the restart is still recognized as a duplicate.
            again = client.post("/azure-monitor", json=load_sample(samples[0]),
                                headers=receiver_headers("azure-monitor")).json()
            assert again == {"event_id": ids[0], "duplicate": True, "status": "firing"}
    finally:
        db.close()
