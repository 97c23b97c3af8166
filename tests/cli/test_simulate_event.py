"""``remediator simulate --event FILE`` and ``--enrich`` (issue 15, item 11): an event written
by hand in YAML or JSON, every problem of it at its line and column; enrichment through the
sandbox before the rules are tried."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from cli.sandbox import RESOURCE_GROUP, SUBSCRIPTION, remediator_toml
from sandbox.server import Sandbox
from tests.fixtures.common import ROOT

PLAYBOOKS = str(ROOT / "playbooks")
FACTORY_ID = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
              "Microsoft.DataFactory/factories/adf-contoso-prod")
EVENT_YAML = f"""\
source: adf
kind: activity_run
resource: pl_load_dw
resource_id: {FACTORY_ID}
run_id: 7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11
error_code: SqlFailedToConnect
message: "Cannot connect to SQL Database: 'sql-contoso-dw.database.windows.net'"
attributes:
  factory: adf-contoso-prod
  pipeline: pl_load_dw
"""
EVENT: dict[str, Any] = {
    "source": "adf", "kind": "activity_run", "resource": "pl_load_dw",
    "resource_id": FACTORY_ID, "run_id": "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11",
    "error_code": "SqlFailedToConnect",
    "message": "Cannot connect to SQL Database: 'sql-contoso-dw.database.windows.net'",
    "attributes": {"factory": "adf-contoso-prod", "pipeline": "pl_load_dw"},
}


def _run(*args: str):
    return CliRunner().invoke(main, ["simulate", *args], catch_exceptions=False)


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


@pytest.mark.parametrize(("name", "text"), [("event.yaml", EVENT_YAML),
                                            ("event.json", json.dumps(EVENT, indent=2))])
def test_an_event_in_yaml_or_json_is_matched_like_a_payload(tmp_path: Path, name: str,
                                                            text: str) -> None:
    path = _write(tmp_path, name, text)
    result = _run("--event", path, "--playbooks", PLAYBOOKS, "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    [item] = json.loads(result.stdout)["events"]
    assert {k: item["event"][k] for k in EVENT} == EVENT
    assert (item["event"]["status"], item["event"]["dedup_key"]) == (
        "firing", f"simulate:{name}")
    assert item["matched"] == ["adf-sql-connect"]
    assert [a["action"] for a in item["plan"][0]["actions"]] == ["adf.rerun_pipeline"]
    assert "enrichment" not in item


@pytest.mark.parametrize(("text", "problem"), [
    (EVENT_YAML.replace("resource: pl_load_dw", "resorce: pl_load_dw"),
     "3:1: unknown event field `resorce`; did you mean `resource`?"),
    (EVENT_YAML + "pipeline: pl_load_dw\n",
     "11:1: unknown event field `pipeline`; expected one of " + ", ".join([
         "source", "kind", "status", "dedup_key", "id", "resource", "resource_id", "run_id",
         "error_code", "error_codes", "message", "failure_type", "severity", "occurred_at",
         "attributes", "fingerprint"])),
    (EVENT_YAML + "severity: high\n", "11:11: severity: Expected `int | null`, got `str`"),
    (EVENT_YAML + "error_codes: [2200, [SqlFailedToConnect]]\n",
     "11:14: error_codes: Expected `str`, got `int` (quote codes: \"2200\")"),
    (EVENT_YAML.replace("source: adf", "source: adls"),
     "1:9: source: Invalid enum value 'adls'"),
    (EVENT_YAML.replace("  pipeline: pl_load_dw", "- pl_load_dw"),
     "10:1: YAML syntax error: while parsing a block mapping: expected <block end>, but found"
     " '-'"),
    ("- source: adf\n", "1:1: expected a mapping of event fields"),
    (EVENT_YAML.replace("kind: activity_run\n", ""),
     "1:1: Object missing required field `kind`"),
])
def test_every_problem_of_an_event_is_named_where_it_is(tmp_path: Path, text: str,
                                                        problem: str) -> None:
    path = _write(tmp_path, "event.yaml", text)
    result = _run("--event", path, "--playbooks", PLAYBOOKS)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"{path}:{problem}\n"


@pytest.mark.parametrize(("args", "problem"), [
    ((), "give a raw PAYLOAD (with --source) or --event FILE"),
    (("{payload}",), "--source is needed with a raw PAYLOAD: which sender sent it"),
    (("--source", "adf", "--event", "{event}"),
     "--source is for a raw PAYLOAD: an event names its own source"),
    (("--source", "adf", "{payload}", "--event", "{event}"),
     "give a raw PAYLOAD (with --source) or --event FILE"),
])
def test_a_payload_or_an_event_not_both(tmp_path: Path, args: tuple[str, ...],
                                        problem: str) -> None:
    files = {"payload": _write(tmp_path, "p.json", "{}"),
             "event": _write(tmp_path, "e.yaml", EVENT_YAML)}
    result = _run(*[a.format(**files) for a in args], "--playbooks", PLAYBOOKS)
    assert (result.exit_code, result.stderr) == (2, f"remediator simulate: {problem}\n")


def test_enrich_turns_the_wrapper_into_the_real_code(tmp_path: Path, sandbox: Sandbox) -> None:
    failed = sandbox.failure("adf", "pipeline-run", pipeline="pl_load_dw",
                             error_code="SqlFailedToConnect", subscription=SUBSCRIPTION,
                             resource_group=RESOURCE_GROUP, factory="adf-contoso-prod")
    wrapper = {**EVENT, "run_id": failed["run"]["runId"], "error_code": "2200",
               "message": "Failure happened on 'Sink' side."}
    event = _write(tmp_path, "wrapper.json", json.dumps(wrapper))
    urls = {key: getattr(sandbox, key) for key in (
        "databricks_url", "adf_url", "synapse_url", "openai_url", "ca_file")}
    settings = _write(tmp_path, "sandbox.toml", remediator_toml(urls))

    plain = _run("--event", event, "--playbooks", PLAYBOOKS, "--json")
    [item] = json.loads(plain.stdout)["events"]
    assert (item["event"]["error_code"], item["matched"]) == (
        "2200", ["adf-copy-failure-unclassified"])
    assert sandbox.calls("adf") == []  # without --enrich, no cloud is asked

    result = _run("--event", event, "--enrich", "--config", settings, "--playbooks",
                  PLAYBOOKS, "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    [item] = json.loads(result.stdout)["events"]
    assert (item["event"]["error_code"], item["event"]["error_codes"]) == (
        "SqlFailedToConnect", ["2200", "SqlFailedToConnect"])
    assert item["event"]["attributes"]["activity"] == "Copy_Sales_To_Dw"
    assert item["matched"] == ["adf-sql-connect"]
    assert item["enrichment"]["received"]["error_code"] == "2200"
    assert [(n["call"], n["ok"]) for n in item["enrichment"]["notes"]] == [
        ("adf client", True),
        (f"adf pipeline_runs.get {failed['run']['runId']}", True),
        (f"adf activity_runs.query_by_pipeline_run {failed['run']['runId']}", True),
    ]
    assert all(c["method"] in ("GET", "POST") and "createRun" not in c["path"]
               for c in sandbox.calls("adf"))

    text = _run("--event", event, "--enrich", "--config", settings, "--playbooks", PLAYBOOKS)
    assert text.stdout.splitlines()[0] == (
        "enrichment: adf client ok")
