"""``remediator demo --once --json``: the whole scenario, as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from engine.store import incidents as incidents_store
from engine.store.db import Database
from tests.fixtures.common import remediator_command

STEPS = [
    "blob-missing",
    "duplicate-webhook",
    "resolved-cancels-rerun",
    "instance-unreachable",
    "instance-type-unavailable",
    "quota-notify",
    "rerun-budget-ticket",
    "unknown-error-rca",
]


def test_demo_once_passes_every_step(tmp_path: Path) -> None:
    db_file = tmp_path / "demo.db"
    # Generous: a loaded machine takes long to import the SDKs; idle, it is well under 60 s.
    done = subprocess.run([*remediator_command(), "demo", "--once", "--json", "--db", str(db_file)],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["ok"] is True
    assert [s["name"] for s in answer["steps"]] == STEPS
    missed = [s for s in answer["steps"] if s["ok"] is not True]
    assert missed == []
    assert all(set(s) == {"name", "expected", "actual", "ok"} for s in answer["steps"])
    # The outcomes are in the database the demo was given, not only in its report.
    db = Database(str(db_file))
    try:
        rules = sorted(i.rule_id for i in incidents_store.list_incidents(db, limit=100))
    finally:
        db.close()
    assert rules == sorted([
        "adf-source-blob-missing", "adf-source-blob-missing", "adf-source-blob-missing",
        "adf-source-blob-missing", "dbx-run-node-lost-all-purpose",
        "dbx-run-instance-type-unavailable", "dbx-cluster-quota-exceeded", "",
    ])
    # The demo's audit chain verifies, and stops verifying once a record is edited in the file
    # behind the engine's back (issue "Audit": the done criterion, on the demo's own database).
    verified = subprocess.run([*remediator_command(), "audit", "verify", "--db", str(db_file)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ok: ")
    with sqlite3.connect(db_file) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        [seq] = conn.execute("SELECT min(seq) FROM audit WHERE kind = 'matched'").fetchone()
        conn.execute("UPDATE audit SET data = replace(data, 'adf-source-blob-missing', 'x') "
                     "WHERE seq = ?", (seq,))
    tampered = subprocess.run([*remediator_command(), "audit", "verify", "--db", str(db_file)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert tampered.returncode == 1
    assert tampered.stderr.startswith(
        f"FAILED: record {seq}: hash does not match its content: it was edited\n")
