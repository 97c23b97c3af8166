"""simulate shows the policies (issue 18, item 7): whether a remediation waits for approval
and why (a rule's or a playbook policy's), and which silences in force would hold it, from
the CLI (``--db``) and from ``POST /api/simulate``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli import main
from engine import silences
from engine.events import utcnow
from engine.rules.silences import parse_matcher
from engine.store.db import Database
from tests.fixtures.common import load_sample
from tests.fixtures.playbooks import PLAYBOOK_DATA
from tests.fixtures.service import ADMIN

POLICIES = PLAYBOOK_DATA / "policies"
FINANCE = {"source": "adf", "kind": "activity_run", "resource": "pl_finance_close",
           "error_code": "2200", "run_id": "5e1c4a2e-0000-4000-8000-000000000002",
           "attributes": {"factory": "adf-fin", "pipeline": "pl_finance_close",
                          "subscription": "00000000-0000-0000-0000-000000000001",
                          "resource_group": "rg-data"}}
WHY = f"policy finance-needs-approval ({POLICIES}/finance.yaml:4) requires approval"


def _simulate(tmp_path: Path, *extra: str) -> Any:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(FINANCE))
    return CliRunner().invoke(main, ["simulate", "--event", str(event), "--playbooks",
                                     str(POLICIES), *extra], catch_exceptions=False)


def test_simulate_shows_the_approval_a_policy_requires(tmp_path: Path) -> None:
    result = _simulate(tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    [item] = json.loads(result.stdout)["events"]
    assert item["approval"] == {"required": True, "reason": WHY,
                                "policies": ["finance-needs-approval"]}
    assert item["silenced_by"] == []
    shown = _simulate(tmp_path)
    assert f"approval: required ({WHY})" in shown.stdout.splitlines()


def test_simulate_with_a_database_shows_the_silence_that_would_hold_it(tmp_path: Path) -> None:
    db = Database(tmp_path / "r.db")
    now = utcnow()
    made = silences.create(db, [parse_matcher("attributes.factory=adf-fin")], author="alice",
                           comment="month-end freeze", now=now, ends=now + timedelta(hours=3))
    silences.create(db, [parse_matcher("resource=pl_other")], author="bob", comment="other",
                    now=now, ends=now + timedelta(hours=3))
    db.close()
    result = _simulate(tmp_path, "--json", "--db", str(tmp_path / "r.db"))
    [item] = json.loads(result.stdout)["events"]
    assert [s["id"] for s in item["silenced_by"]] == [made["id"]]
    shown = _simulate(tmp_path, "--db", str(tmp_path / "r.db"))
    assert (f"silenced by {made['id']} (attributes.factory=adf-fin) until {made['ends_at']}, "
            "alice: month-end freeze: recorded, not remediated") in shown.stdout.splitlines()


def test_the_api_simulates_with_the_silences_in_force(service_rig: Any) -> None:
    rig = service_rig("""
        name: t
        policies:
          - id: copy-needs-approval
            match: {resource: {glob: "Copy_*"}}
        rules:
          - id: rerun-blob
            match: {source: adf, error_code: UserErrorSourceBlobNotExists}
            actions: [{action: noop, with: {note: would rerun}}]
        """)
    made = rig.client.post("/api/silences", headers=ADMIN, json={
        "matchers": ["resource=Copy_Data_Pipeline"], "comment": "upgrade",
        "duration": "1h"}).json()
    answer = rig.client.post("/api/simulate", headers=ADMIN, json={
        "source": "adf", "payload": load_sample("seed/adf-action-group-alert.json")}).json()
    [item] = answer["events"]
    assert item["approval"]["policies"] == ["copy-needs-approval"]
    assert item["approval"]["required"] is True
    assert [s["id"] for s in item["silenced_by"]] == [made["id"]]


def test_the_api_lists_the_policies_in_force(service_rig: Any) -> None:
    rig = service_rig("""
        name: t
        policies:
          - id: copy-needs-approval
            description: copies wait for a person
            match: {resource: {glob: "Copy_*"}}
        rules:
          - id: rerun-blob
            match: {source: adf}
            actions: [{action: noop, with: {note: x}}]
        """)
    listed = rig.client.get("/api/playbooks", headers=ADMIN).json()
    assert listed["policies"] == [{
        "id": "copy-needs-approval", "file": f"{rig.playbooks}/rules.yaml", "line": 4,
        "description": "copies wait for a person", "match": {"resource": {"glob": "Copy_*"}},
        "approval": "required"}]
