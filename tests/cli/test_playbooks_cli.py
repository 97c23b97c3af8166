"""remediator validate | test | simulate | schema, through click's runner and the real
action registry and parsers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine.actions.registry import action_table
from engine.rules.schema import schema_json
from tests.fixtures.common import ROOT, assert_wrapped
from tests.fixtures.playbooks import PLAYBOOK_DATA

GOOD = PLAYBOOK_DATA / "good"
SEED = ROOT / "tests" / "testdata" / "samples" / "seed"


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_validate_good_playbooks() -> None:
    result = _run("validate", str(GOOD))
    assert (result.exit_code, result.stdout) == (0, "ok: 6 rule(s) in 2 file(s), 6 test(s)\n")


def test_validate_reports_every_problem_of_every_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PLAYBOOK_DATA / "bad")
    result = _run("validate", "two-files")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "two-files/a.yaml:5:37: invalid duration 'soon': expected a number and a unit, like"
        " 30s, 15m, 2h, 1d or 1h30m",
        "two-files/b.yaml:3:9: duplicate rule id `shared-id`; first defined at"
        " two-files/a.yaml:3:9",
        "two-files/b.yaml:5:24: unknown action `nope`; did you mean `noop`?",
        "3 problem(s)",
    ]


def test_test_passes_the_good_playbooks() -> None:
    result = _run("test", str(GOOD))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"PASSED {GOOD}/adf.yaml::a missing blob is rerun after 15 minutes"
    assert sum(line.startswith("PASSED ") for line in lines) == 6
    assert lines[-1] == "6 passed, 0 failed"


def test_test_exits_1_on_a_failure_and_2_on_broken_playbooks(tmp_path: Path) -> None:
    shutil.copytree(GOOD, tmp_path / "good")
    shutil.copytree(PLAYBOOK_DATA / "payloads", tmp_path / "payloads")
    test_file = tmp_path / "good" / "databricks.test.yaml"
    text = test_file.read_text().replace("rule: dbx-inactivity", "rule: adf-user-errors")
    test_file.write_text(text)
    result = _run("test", str(tmp_path / "good"))
    assert result.exit_code == 1
    assert f"FAILED {test_file}::inactivity is normal (line 2)" in result.stdout
    assert '      expected: "adf-user-errors"\n      got:      "dbx-inactivity"\n' in result.stdout
    assert result.stdout.splitlines()[-1] == "5 passed, 1 failed"

    (tmp_path / "good" / "zz.yaml").write_text("name: zz\nrules: [{id: x, match: {sorce: adf}}]\n")
    result = _run("test", str(tmp_path / "good"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{tmp_path}/good/zz.yaml:2:25: unknown event field `sorce`")


def test_test_of_files_without_tests_fails_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "name: x\nrules:\n  - id: noted\n    match: {source: adf}\n"
        "    actions: [{action: noop}]\n")
    result = _run("test", str(tmp_path))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1, "", f"remediator test: no tests in {tmp_path}: write cases under `tests:` in a "
               "playbook or in a `*.test.yaml` file beside it (docs/PLAYBOOKS.md)\n")


def test_test_json_lists_every_case(tmp_path: Path) -> None:
    shutil.copytree(GOOD, tmp_path / "good")
    shutil.copytree(PLAYBOOK_DATA / "payloads", tmp_path / "payloads")
    test_file = tmp_path / "good" / "databricks.test.yaml"
    test_file.write_text(test_file.read_text().replace("rule: dbx-inactivity",
                                                       "rule: adf-user-errors"))
    result = _run("test", str(tmp_path / "good"), "--json")
    answer = json.loads(result.stdout)
    assert (result.exit_code, answer["ok"], answer["passed"], answer["failed"]) == (
        1, False, 5, 1)
    [failed] = [t for t in answer["tests"] if not t["passed"]]
    assert (failed["file"], failed["line"], failed["name"]) == (
        str(test_file), 2, "inactivity is normal")
    assert failed["failures"][0].startswith("rule:\n  expected: \"adf-user-errors\"\n")
    assert sorted(answer["tests"][0]) == ["failures", "file", "line", "name", "passed"]


def test_validate_json(monkeypatch: pytest.MonkeyPatch) -> None:
    good = _run("validate", str(GOOD), "--json")
    assert (good.exit_code, json.loads(good.stdout)) == (0, {
        "ok": True, "problems": [], "findings": [], "rules": 6, "files": 2, "tests": 6,
        "settings_checked": False})
    monkeypatch.chdir(PLAYBOOK_DATA / "bad")
    bad = _run("validate", "two-files", "--json")
    answer = json.loads(bad.stdout)
    assert (bad.exit_code, answer["ok"], len(answer["problems"])) == (1, False, 3)
    assert answer["problems"][2] == "two-files/b.yaml:5:24: unknown action `nope`; did you " \
        "mean `noop`?"


def test_simulate_json_shows_rules_groups_actions_and_guards() -> None:
    result = _run(
        "simulate", "--source", "adf", str(SEED / "adf-action-group-alert.json"),
        "--playbooks", str(GOOD), "--json", "--attempts", "2",
    )
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)["events"]
    assert item["event"]["error_code"] == "UserErrorSourceBlobNotExists"
    assert item["matched"] == ["adf-source-blob-missing"]
    assert [(r["id"], r["matched"]) for r in item["rules"]] == [
        ("adf-source-blob-missing", True), ("adf-copy-wrapper", False),
        ("adf-user-errors", False), ("dbx-cluster-unreachable", False),
        ("dbx-inactivity", False), ("dbx-disabled", False),
    ]
    assert item["rules"][0]["groups"] == {"what": "blob"}
    assert item["rules"][5]["reason"] == "disabled"
    [plan] = item["plan"]
    assert plan["guards"] == {
        "mode": "live only with --live (dry-run by default)",
        "approval": "none",
        "budget": {"max_attempts": 3, "window": "24h", "per": "target"},
        "cooldown": "10m",
        "verify": {"timeout": "2h", "interval": "1m"},
    }
    [rerun] = plan["actions"]
    assert (rerun["action"], rerun["delay"], rerun["mutating"]) == (
        "adf.rerun_pipeline", "15m", True
    )
    assert rerun["ref"] == "adf.yaml:adf-source-blob-missing/actions[0]"
    assert {k: rerun["params"][k] for k in ("factory", "pipeline", "run_id")} == {
        "factory": "your-adf", "pipeline": "Copy_Data_Pipeline", "run_id": "abc123-def456-789"
    }
    assert plan["on_failure"][0]["params"]["title"] == (
        "Copy_Data_Pipeline still failing after 2 reruns"
    )


def test_simulate_table_and_bad_payload(tmp_path: Path) -> None:
    result = _run(
        "simulate", "--source", "databricks", str(SEED / "databricks-cluster-terminated.json"),
        "--playbooks", str(GOOD),
    )
    assert result.exit_code == 0
    assert "dbx-inactivity" in result.stdout and "MATCH" in result.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = _run("simulate", "--source", "adf", str(bad), "--playbooks", str(GOOD))
    assert result.exit_code == 1
    assert_wrapped(result.stderr, f"{bad}: the body is not valid JSON: ")


def test_the_committed_schema_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "playbook.schema.json").read_text()
    # if this fails: remediator schema -o docs/playbook.schema.json
    assert committed == schema_json(action_table())
    result = _run("schema")
    assert result.exit_code == 0 and result.stdout == committed
    schema = json.loads(committed)
    step = schema["$defs"]["ActionStep"]
    assert step["properties"]["action"]["enum"] == sorted(action_table())
    assert {b["if"]["properties"]["action"]["const"] for b in step["allOf"]} == set(action_table())
    # target fields come from the event, so they are not required in `with`
    assert "required" not in schema["$defs"]["with.adf.rerun_pipeline"]
    assert schema["$defs"]["with.ticket.create"]["required"] == ["title"]


CLOUD_API = ROOT / "tests" / "testdata" / "samples" / "cloud-api"


def test_simulate_and_test_read_a_page_of_cluster_events(tmp_path: Path) -> None:
    page = CLOUD_API / "databricks-cluster-events-instance-unreachable.json"
    result = _run(
        "simulate", "--source", "databricks", str(page), "--playbooks", str(GOOD), "--json"
    )
    assert result.exit_code == 0, result.output
    # only the TERMINATING event of the page becomes an event, as the poller would make it
    [item] = json.loads(result.stdout)["events"]
    event = item["event"]
    assert (event["kind"], event["status"], event["resource_id"], event["error_code"]) == (
        "cluster", "firing", "0601-182128-dcbte59m", "DRIVER_UNREACHABLE"
    )
    assert event["dedup_key"] == "dbx-cluster:0601-182128-dcbte59m:1741963104552"

    (tmp_path / "p.yaml").write_text(
        "name: p\nrules:\n"
        "  - {id: lost, match: {kind: cluster, error_code: DRIVER_UNREACHABLE},"
        " actions: [{action: databricks.restart_cluster}]}\n"
        "  - {id: idle, match: {kind: cluster, error_code: INACTIVITY},"
        " actions: [{action: ignore}]}\n"
        "tests:\n"
        f"  - {{name: page, source: databricks, payload: {page},"
        " expect: {rule: lost, params: {databricks.restart_cluster:"
        " {cluster_id: 0601-182128-dcbte59m}}}}\n"
        f"  - {{name: idle page, source: databricks,"
        f" payload: {CLOUD_API / 'databricks-cluster-events-terminated-inactivity.json'},"
        " expect: {rule: idle, actions: [ignore]}}\n"
        "  - {name: empty page, source: databricks, payload: empty.json, expect: {rule: null}}\n"
        "  - {name: no events key, source: databricks, payload: webhook.json,"
        " expect: {rule: null}}\n"
    )
    (tmp_path / "empty.json").write_text('{"events": [], "total_count": 0}')
    # an object with `event_type` is a webhook body even if it has `events`
    (tmp_path / "webhook.json").write_text('{"event_type": "x", "events": []}')
    result = _run("test", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"PASSED {tmp_path}/p.yaml::page",
        f"PASSED {tmp_path}/p.yaml::idle page",
        f"FAILED {tmp_path}/p.yaml::empty page (line 8)",
        "    payload gave no firing event (0 event(s)); use `index:`",
        f"FAILED {tmp_path}/p.yaml::no events key (line 9)",
        "    payload webhook.json does not parse: unknown event_type 'x'; known: jobs.on_start,"
        " jobs.on_success, jobs.on_failure, jobs.on_duration_warning_threshold_exceeded,"
        " jobs.on_streaming_backlog_exceeded, job.failure, cluster.terminated,"
        " cluster.failed_to_start - at `$.event_type`",
        "2 passed, 2 failed",
    ]


def test_simulate_says_how_many_events_of_a_long_page_it_left_out(tmp_path: Path) -> None:
    page = json.loads((CLOUD_API / "databricks-cluster-events-instance-unreachable.json")
                      .read_text())
    [terminating] = [e for e in page["events"] if e["type"] == "TERMINATING"]
    page["events"] = [{**terminating, "cluster_id": f"0601-182128-{n:08d}"} for n in range(105)]
    (tmp_path / "page.json").write_text(json.dumps(page))
    result = _run("simulate", "--source", "databricks", str(tmp_path / "page.json"),
                  "--playbooks", str(GOOD))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(
        "5 more event(s) left out: only the first 100 are simulated\n")
