"""``remediator drill`` (issue 15, item 11) against a real ``remediator serve`` whose clouds
are the sandbox, with the shipped playbooks: any error, on any pipeline, job or cluster, ends
in the rule written for it, and the drill says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from cli.sandbox import remediator_toml
from sandbox.server import Sandbox
from tests.e2e.test_serve import ADMIN_KEY, RECEIVER_KEY, _serve
from tests.fixtures.common import ROOT

PLAYBOOKS = ROOT / "playbooks"


@pytest.fixture(scope="module")
def served(sandbox_session: Sandbox, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[str, Path]]:
    """A running ``remediator serve`` (dry-run) whose [clouds] are the sandbox, and the
    settings file, which tells the drill where the sandbox is."""
    tmp = tmp_path_factory.mktemp("drill")
    urls = {key: getattr(sandbox_session, key) for key in (
        "databricks_url", "adf_url", "synapse_url", "openai_url", "ca_file")}
    settings = remediator_toml(urls)
    with _serve(tmp, PLAYBOOKS, settings=settings) as (url, _log, _process):
        yield url, tmp / "remediator.toml"


def _drill(served: tuple[str, Path], *args: str) -> tuple[int, dict[str, Any], str]:
    url, settings = served
    result = CliRunner().invoke(main, [
        "drill", *args, "--url", url, "--key", RECEIVER_KEY, "--admin-key", ADMIN_KEY,
        "--config", str(settings), "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_sql_failed_to_connect_on_a_pipeline_ends_in_its_rule(
        served: tuple[str, Path]) -> None:
    code, report, stderr = _drill(served, "adf", "--error-code", "SqlFailedToConnect",
                                  "--pipeline", "pl_load_dw")
    assert (code, stderr) == (0, "")
    assert report["ok"] is True
    assert report["failure"]["activity"]["error_code"] == "2200"  # the Copy activity's wrapper
    event = report["event"]
    assert (event["state"], event["source"], event["kind"], event["resource"]) == (
        "done", "adf", "activity_run", "pl_load_dw")
    assert (event["received_error_code"], event["error_code"]) == ("2200", "SqlFailedToConnect")
    assert event["run_id"] == report["failure"]["run"]["runId"]
    assert report["rule"]["id"] == "adf-sql-connect"
    assert report["rule"]["where"].startswith(f"{PLAYBOOKS / 'adf.yaml'}:")
    assert report["incident"]["rule_id"] == "adf-sql-connect"
    assert report["incident"]["state"] == "ignored"  # serve runs dry-run by default
    assert [(a["action"], a["state"], a["dry_run"]) for a in report["actions"]] == [
        ("adf.rerun_pipeline", "dry_run", True)]


def test_the_metric_alert_finds_the_run_by_enrichment(served: tuple[str, Path]) -> None:
    code, report, _ = _drill(served, "adf", "--error-code", "2108", "--pipeline",
                             "pl_fx_rates", "--sample", "metric",
                             "--message", "Error calling the endpoint "
                             "'https://api.contoso.com/v2/fx-rates'. Response status code: "
                             "'404'")
    assert code == 0
    event = report["event"]
    assert (event["received_error_code"], event["error_code"]) == ("", "2108")
    assert event["run_id"] == report["failure"]["run"]["runId"]
    assert report["rule"]["id"] == "adf-endpoint-client-error"


def test_driver_unreachable_on_a_cluster_ends_in_its_rule(served: tuple[str, Path]) -> None:
    code, report, _ = _drill(served, "databricks", "--error-code", "DRIVER_UNREACHABLE",
                             "--cluster", "etl-nightly")
    assert code == 0
    event = report["event"]
    assert (event["kind"], event["resource"], event["error_code"]) == (
        "cluster", "etl-nightly", "DRIVER_UNREACHABLE")
    assert report["rule"]["id"] == "dbx-cluster-node-lost"
    assert [a["action"] for a in report["actions"]] == ["databricks.restart_cluster"]


def test_a_job_run_that_died_with_its_cluster(served: tuple[str, Path]) -> None:
    code, report, _ = _drill(served, "databricks", "--error-code", "INSTANCE_UNREACHABLE",
                             "--job", "sales_bronze_to_silver")
    assert code == 0
    event = report["event"]
    assert (event["kind"], event["received_error_code"], event["error_code"]) == (
        "job_run", "", "INSTANCE_UNREACHABLE")
    assert event["error_codes"] == ["INSTANCE_UNREACHABLE", "CLUSTER_ERROR"]
    assert report["rule"]["id"] == "dbx-run-node-lost"


def test_no_rule_is_said_as_such(served: tuple[str, Path]) -> None:
    code, report, _ = _drill(served, "adf", "--error-code", "ERR_SALES_LATE", "--custom",
                             "--pipeline", "pl_sales_late")
    assert code == 0
    assert report["event"]["error_code"] == "ERR_SALES_LATE"
    assert report["rule"] is None
    assert (report["incident"]["state"], report["incident"]["reason"]) == (
        "escalated", "no rule matched")
    url, settings = served
    text = CliRunner().invoke(main, [
        "drill", "adf", "--error-code", "ERR_SALES_LATE", "--custom", "--pipeline",
        "pl_sales_late_2", "--url", url, "--key", RECEIVER_KEY, "--admin-key", ADMIN_KEY,
        "--config", str(settings)])
    lines = text.stdout.splitlines()
    assert lines[0] == "drill: adf ERR_SALES_LATE on pipeline pl_sales_late_2"
    assert lines[3] == ("  event:    done: adf activity_run firing pl_sales_late_2, error code"
                        " ERR_SALES_LATE")
    assert lines[4] == "  rule:     none matched"
    assert lines[5].endswith(" escalated: no rule matched")


@pytest.mark.parametrize(("args", "message"), [
    (("functions", "--error-code", "System.TimeoutException", "--pipeline", "p"),
     "cannot drill 'functions': the sandbox emulates adf, synapse, databricks"),
    (("adls", "--error-code", "X", "--pipeline", "p"),
     "cannot drill 'adls': the sandbox emulates adf, synapse, databricks"),
    (("databricks", "--error-code", "DRIVER_UNREACHABE", "--cluster", "etl"),
     "unknown error code 'DRIVER_UNREACHABE' for a cluster termination; did you mean"
     " DRIVER_UNREACHABLE?"),
    (("adf", "--error-code", "OUR_OWN", "--pipeline", "p"),
     "unknown error code 'OUR_OWN' for a adf pipeline failure; a code of your own (an ADF"
     " Fail activity's): add --custom"),
    (("adf", "--error-code", "2108", "--job", "j"),
     "adf needs exactly one of --pipeline NAME"),
    (("databricks", "--error-code", "DRIVER_UNREACHABLE", "--cluster", "c", "--sample", "job"),
     "--sample: databricks cluster sends cluster"),
])
def test_bad_usage_is_exit_2_with_the_reason(args: tuple[str, ...], message: str) -> None:
    result = CliRunner().invoke(main, ["drill", *args, "--url", "http://127.0.0.1:9",
                                       "--admin-key", "k", "--sandbox-url",
                                       "http://127.0.0.1:9"])
    assert (result.exit_code, result.stderr) == (2, f"remediator drill: {message}\n")


def test_without_a_sandbox_it_says_where_to_find_one() -> None:
    result = CliRunner().invoke(main, ["drill", "adf", "--error-code", "2108", "--pipeline",
                                       "p", "--url", "http://127.0.0.1:9", "--admin-key", "k"])
    assert result.exit_code == 2
    assert result.stderr == (
        "remediator drill: no sandbox to make the failure in: pass --config with the settings"
        " that `remediator sandbox --config-out` writes, or --sandbox-url\n")


def test_a_refused_webhook_is_exit_1_with_the_answer(served: tuple[str, Path]) -> None:
    url, settings = served
    result = CliRunner().invoke(main, [
        "drill", "adf", "--error-code", "2010", "--pipeline", "pl_onprem", "--url", url,
        "--key", "not-the-key", "--admin-key", ADMIN_KEY, "--config", str(settings)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"remediator drill: POST {url}/azure-monitor answered 401:")
    assert result.stderr.endswith(": pass --key or set REMEDIATOR_API_KEY to one of the "
                                  "server's REMEDIATOR_API_KEYS (or the receiver's own "
                                  "REMEDIATOR_RECEIVER_KEYS_<NAME>), or --basic user:password "
                                  "of its REMEDIATOR_BASIC_USERS\n")
    assert result.stdout.splitlines()[0] == "drill: adf 2010 on pipeline pl_onprem"
