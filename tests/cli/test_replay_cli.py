"""``remediator replay``: the seeded events through another playbook set, dry-run."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from tests.engine.actions.conftest import adf_event
from tests.fixtures.dashboard import Seeded

OTHER = """\
name: other
rules:
  - id: adf-copy-failed
    match: {source: adf, error_code: "2200"}
    actions:
      - action: noop
        with: {note: "copy failed"}
  - id: dbx-task-failed-v2
    match: {source: databricks, kind: task_run}
    actions:
      - action: noop
        with: {note: "task failed"}
  - id: adf-unknown
    match: {source: adf, error_code: UserErrorUnknown}
    actions:
      - action: noop
        with: {note: "unknown"}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def other_playbooks(tmp_path: Path) -> str:
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "other.yaml").write_text(OTHER)
    return str(folder)


def test_replay_reports_changed_rules_and_actions(seeded: Seeded, tmp_path: Path) -> None:
    seeded.rig.deliver(adf_event(dedup_key="azmon:later:Fired", resource="pl_later"))
    audit_before = audit_store.head(seeded.rig.db)
    actions_before = actions_store.due(seeded.rig.db, 2**62, limit=1000)
    code, out, err = run("replay", "--since", "1h", "--playbooks", other_playbooks(tmp_path),
                         "--db", seeded.rig.db.path, "--json")
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert (report["events"], report["unchanged"], report["unprocessed"]) == (5, 0, 1)
    changes = {c["resource"]: (c["rules_before"], c["rules_after"], c["actions_before"],
                               c["actions_after"]) for c in report["changed"]}
    assert changes == {
        "pl_archive_weekly": (["adf-copy-failed"], ["adf-copy-failed"],
                              ["adf.rerun_pipeline"], ["noop"]),
        "pl_ingest_sales_daily": (["adf-copy-failed"], ["adf-copy-failed"],
                                  ["adf.rerun_pipeline"], ["noop"]),
        "sales_bronze_to_silver": (["dbx-task-failed"], ["dbx-task-failed-v2"], ["noop"],
                                   ["noop"]),
        seeded.unmatched.resource: ([], ["adf-unknown"], [], ["noop"]),
    }
    # nothing was executed or written
    assert audit_store.head(seeded.rig.db) == audit_before
    assert actions_store.due(seeded.rig.db, 2**62, limit=1000) == actions_before


def test_replay_through_the_same_playbooks_changes_nothing(seeded: Seeded) -> None:
    code, out, _ = run("replay", "--since", "1h", "--playbooks", str(seeded.rig.tmp / "playbooks"),
                       "--db", seeded.rig.db.path)
    assert code == 0
    assert out == "4 events since 1h: 0 would change, 4 unchanged, 0 not yet processed\n"


def test_replay_prints_a_table(seeded: Seeded, tmp_path: Path) -> None:
    code, out, _ = run("replay", "--since", "1h", "--playbooks", other_playbooks(tmp_path),
                       "--db", seeded.rig.db.path)
    assert code == 1
    assert out.startswith("4 events since 1h: 4 would change, 0 unchanged, 0 not yet "
                          "processed\n")
    assert "dbx-task-failed-v2" in out and "adf.rerun_pipeline" in out


def test_replay_refuses_bad_input(seeded: Seeded, tmp_path: Path) -> None:
    assert run("replay", "--since", "later", "--db", seeded.rig.db.path)[0::2] == (
        2, "--since: invalid duration 'later': expected a number and a unit, like 30s, 15m, "
           "2h, 1d or 1h30m\n")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.yaml").write_text("name: bad\nrules:\n  - id: x\n    match: {sourc: adf}\n")
    code, _, err = run("replay", "--since", "1h", "--playbooks", str(broken),
                       "--db", seeded.rig.db.path)
    assert code == 2 and "bad.yaml:4:" in err


POLICY_CHANGES = """\
name: engine
policies:
  - id: jobs-need-approval
    match: {source: databricks}
rules:
  - id: adf-copy-failed
    match: {source: adf, error_code: "2200"}
    actions:
      - action: adf.rerun_pipeline
        with: {start_from_failure: false}
        delay: 10m
    verify: {timeout: 30m, interval: 1m}
  - id: dbx-task-failed
    match: {source: databricks, kind: task_run}
    actions:
      - action: noop
        with: {note: "task {{ event.attributes.task_key }} failed again"}
"""


def test_replay_reports_changed_approval_delays_and_parameters(seeded: Seeded,
                                                               tmp_path: Path) -> None:
    folder = tmp_path / "changed"
    folder.mkdir()
    (folder / "engine.yaml").write_text(POLICY_CHANGES)
    code, out, err = run("replay", "--since", "4d", "--playbooks", str(folder),
                         "--db", seeded.rig.db.path, "--json")
    assert (code, err) == (1, "")
    report = json.loads(out)
    changes = {c["resource"]: (c["approval_before"], c["approval_after"], c["differences"])
               for c in report["changed"]}
    adf = (True, False, ["approval: required -> none",
                         "adf.rerun_pipeline [0] delay: 0s -> 10m",
                         "adf.rerun_pipeline [0] start_from_failure: true -> false"])
    assert changes == {
        "pl_archive_weekly": adf,
        "pl_ingest_sales_daily": adf,
        "sales_bronze_to_silver": (False, True, [
            "approval: none -> required",
            'noop [0] note: "task transform_orders failed" -> "task transform_orders failed '
            'again"']),
    }
    code, out, _ = run("replay", "--since", "4d", "--playbooks", str(folder),
                       "--db", seeded.rig.db.path)
    assert code == 1
    dbx = seeded.dbx.event_id
    assert f"{dbx} sales_bronze_to_silver: approval: none -> required" in out.splitlines()
