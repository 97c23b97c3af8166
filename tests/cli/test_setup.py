"""remediator setup azure | databricks through click's runner: Azure renders files and
commands without any credential in them; Databricks runs the real SDK against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service import jobs as dbx_jobs
from databricks.sdk.service import settings as dbx_settings

from cli import main
from sandbox.server import Sandbox

PLANTED = "rk-planted-7f3e91c2d4"
BASIC_PASSWORD = "dbx-pw-5c0e7a1b93"
TOKEN = "dapi-sandbox-token"
URL = "https://remediator.contoso.com"
DEST_NAME = "Remediator (remediator.contoso.com/databricks-monitor)"


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# -- azure ---------------------------------------------------------------------------------------

def test_setup_azure_writes_both_templates_and_prints_the_deploy_commands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A key planted everywhere the command could pick one up must appear nowhere.
    monkeypatch.setenv("REMEDIATOR_API_KEY", PLANTED)
    monkeypatch.setenv("REMEDIATOR_API_KEYS", PLANTED)
    monkeypatch.setenv("REMEDIATOR_RECEIVER_KEY_AZURE_MONITOR", PLANTED)
    monkeypatch.setenv("REMEDIATOR_RECEIVER_KEYS_AZURE_MONITOR", PLANTED)
    out = tmp_path / "alerts"
    result = _run("setup", "azure", "--subscription", "sub-1", "--resource-group", "rg-1",
                  "--factory", "adf-a", "--synapse", "syn-a", "--url", URL, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["remediator-alerts.bicep",
                                                     "remediator-alerts.json"]
    head = ("az deployment group create --subscription sub-1 --resource-group rg-1 "
            "--name remediator-alerts --template-file ")
    params = ("webhookApiKeyAzureMonitor=$REMEDIATOR_RECEIVER_KEY_AZURE_MONITOR "
              "webhookApiKeySynapseMonitor=$REMEDIATOR_RECEIVER_KEY_SYNAPSE_MONITOR")
    assert result.stdout.splitlines() == [
        f"wrote {out}/remediator-alerts.bicep",
        f"wrote {out}/remediator-alerts.json",
        "2 action group(s), 4 metric alert(s), 2 log search alert(s)",
        "note: the log alerts are scoped to each factory/workspace itself: its diagnostic "
        "settings must send the run logs to Log Analytics in resource-specific tables (pass "
        "--log-workspace to get the commands)",
        "",
        "to deploy:",
        "  # REMEDIATOR_RECEIVER_KEY_AZURE_MONITOR: one of [receivers.azure-monitor] api_keys "
        "(that receiver's key only); set it in the shell, never in a file",
        "  # REMEDIATOR_RECEIVER_KEY_SYNAPSE_MONITOR: one of [receivers.synapse-monitor] "
        "api_keys (that receiver's key only); set it in the shell, never in a file",
        f"  {head}{out}/remediator-alerts.bicep --parameters {params}",
        "  # or, without Bicep:",
        f"  {head}{out}/remediator-alerts.json --parameters {params}",
    ]
    json.loads((out / "remediator-alerts.json").read_text())
    for path in out.iterdir():
        assert PLANTED not in path.read_text()
    assert PLANTED not in result.output


def test_setup_azure_json(tmp_path: Path) -> None:
    out = tmp_path / "alerts"
    result = _run("setup", "azure", "--subscription", "sub-1", "--resource-group", "rg-1",
                  "--factory", "adf-a", "--url", URL, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert {k: v for k, v in answer.items() if k not in ("notes", "commands")} == {
        "files": [f"{out}/remediator-alerts.bicep", f"{out}/remediator-alerts.json"],
        "action_groups": 1, "metric_alerts": 3, "log_alerts": 1}
    assert len(answer["notes"]) == 1
    assert answer["commands"][-1].startswith("az deployment group create --subscription sub-1 ")


def test_setup_azure_with_a_log_workspace_prints_the_diagnostic_settings(
        tmp_path: Path) -> None:
    law = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.OperationalInsights/" \
          "workspaces/law"
    result = _run("setup", "azure", "--subscription", "sub-1", "--resource-group", "rg-1",
                  "--factory", "adf-a", "--url", URL, "--auth", "basic", "--log-workspace", law,
                  "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == (
        "  az monitor diagnostic-settings create --name remediator --resource "
        "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.DataFactory/factories/adf-a"
        f" --workspace {law} --export-to-resource-specific true --logs "
        '\'[{"category":"ActivityRuns","enabled":true},{"category":"PipelineRuns","enabled":true}'
        ',{"category":"TriggerRuns","enabled":true}]\'')
    assert "--parameters webhookPassword=$REMEDIATOR_BASIC_PASSWORD" in lines[-4]


def test_setup_azure_refuses_a_url_with_credentials(tmp_path: Path) -> None:
    result = _run("setup", "azure", "--subscription", "s", "--resource-group", "rg",
                  "--factory", "adf-a", "--url", f"https://u:{PLANTED}@x.example.com",
                  "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert result.stderr == ("remediator setup azure: --url must carry no credentials or query "
                             "string; the credential is a deployment parameter\n")
    assert not (tmp_path / "o").exists()


# -- databricks ----------------------------------------------------------------------------------

@pytest.fixture
def dbx(sandbox: Sandbox, tmp_path: Path) -> tuple[WorkspaceClient, Path]:
    """A workspace client on the sandbox (for arranging and checking) and a settings file."""
    config = tmp_path / "remediator.toml"
    config.write_text(
        f'[basic_users]\ndatabricks = "{BASIC_PASSWORD}"\n\n'
        f'[clouds.databricks.prod]\nhost = "{sandbox.databricks_url}"\ntoken = "{TOKEN}"\n'
        'retry_timeout = 5\n'
    )
    w = WorkspaceClient(config=Config(host=sandbox.databricks_url, token=TOKEN, auth_type="pat"))
    for job_id in (101, 102, 103):
        w.jobs.get(job_id)
    w.clusters.get("0314-021500-abcd1234")
    other = w.notification_destinations.create(
        display_name="PagerDuty bridge",
        config=dbx_settings.Config(generic_webhook=dbx_settings.GenericWebhookConfig(
            url="https://pd.example.com/hook")))
    w.jobs.update(102, new_settings=dbx_jobs.JobSettings(
        webhook_notifications=dbx_jobs.WebhookNotifications(
            on_failure=[dbx_jobs.Webhook(id=other.id)], on_start=[dbx_jobs.Webhook(id=other.id)]),
        email_notifications=dbx_jobs.JobEmailNotifications(on_failure=["oncall@contoso.com"])))
    return w, config


def _settings_of(w: WorkspaceClient, job_id: int) -> dict[str, Any]:
    return w.jobs.get(job_id).settings.as_dict()


def _setup(config: Path, *args: str) -> Result:
    return _run("setup", "databricks", "--workspace", "prod", "--url", URL,
                "--config", str(config), *args)


def test_dry_run_prints_the_plan_and_only_reads(
        dbx: tuple[WorkspaceClient, Path], sandbox: Sandbox) -> None:
    w, config = dbx
    before = {job: _settings_of(w, job) for job in (101, 102, 103)}
    seen = len(sandbox.calls("databricks"))
    result = _setup(config, "--jobs", "101,102")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"destination: would create {DEST_NAME!r} -> {URL}/databricks-monitor (basic auth, "
        "user 'databricks')",
        "job 101 (job_101): would add the destination to webhook_notifications.on_failure",
        "job 102 (job_102): would add the destination to webhook_notifications.on_failure",
        "dry run: nothing changed (add --apply to make these changes)",
        "the cluster-events poller watches no cluster of this workspace "
        "([pollers.databricks.prod] clusters is not set); the workspace's clusters (1):",
        "  0314-021500-abcd1234  etl-0314-021500-abcd1234  TERMINATED  UI",
    ]
    calls = sandbox.calls("databricks")[seen:]
    assert {c["method"] for c in calls} == {"GET"}
    assert {c["path"].split("/api/2.")[-1][2:] for c in calls
            if "/api/" in c["path"]} == {"notification-destinations", "jobs/get", "clusters/list"}
    assert {job: _settings_of(w, job) for job in (101, 102, 103)} == before
    assert BASIC_PASSWORD not in result.output


def test_dry_run_json(dbx: tuple[WorkspaceClient, Path]) -> None:
    _, config = dbx
    result = _setup(config, "--jobs", "101,102", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "destination": {"display_name": DEST_NAME, "url": f"{URL}/databricks-monitor",
                        "username": "databricks", "id": None, "exists": False},
        "jobs": [{"job_id": job, "name": f"job_{job}", "events": ["on_failure"],
                  "missing": ["on_failure"], "changed": True} for job in (101, 102)],
        "applied": False, "destination_id": None,
        "poller": "the cluster-events poller watches no cluster of this workspace "
                  "([pollers.databricks.prod] clusters is not set); the workspace's clusters "
                  "(1):",
        "clusters": [{"cluster_id": "0314-021500-abcd1234", "name": "etl-0314-021500-abcd1234",
                      "state": "TERMINATED", "source": "UI"}]}


def test_apply_creates_the_destination_once_and_keeps_other_settings(
        dbx: tuple[WorkspaceClient, Path], sandbox: Sandbox) -> None:
    w, config = dbx
    before_102 = _settings_of(w, 102)
    before_103 = _settings_of(w, 103)
    first = _setup(config, "--jobs", "101,102", "--apply", "--on-success")
    assert first.exit_code == 0, first.output
    dests = {d.display_name: d.id for d in w.notification_destinations.list()}
    assert sorted(dests) == ["PagerDuty bridge", DEST_NAME]
    ours, other = dests[DEST_NAME], dests["PagerDuty bridge"]
    created = [c for c in sandbox.calls("databricks")
               if c["method"] == "POST" and c["path"].endswith("notification-destinations")]
    assert created[-1]["body"] == {"display_name": DEST_NAME, "config": {"generic_webhook": {
        "url": f"{URL}/databricks-monitor", "username": "databricks",
        "password": BASIC_PASSWORD}}}
    assert first.stdout.splitlines()[-3] == f"done: destination {ours}, 2 job(s) updated"
    assert BASIC_PASSWORD not in first.output

    after_101 = _settings_of(w, 101)
    assert after_101["webhook_notifications"] == {"on_failure": [{"id": ours}],
                                                  "on_success": [{"id": ours}]}
    after_102 = _settings_of(w, 102)
    assert after_102["webhook_notifications"] == {
        "on_failure": [{"id": other}, {"id": ours}], "on_start": [{"id": other}],
        "on_success": [{"id": ours}]}
    assert {k: v for k, v in after_102.items() if k != "webhook_notifications"} == {
        k: v for k, v in before_102.items() if k != "webhook_notifications"}
    assert after_102["email_notifications"] == {"on_failure": ["oncall@contoso.com"]}
    assert _settings_of(w, 103) == before_103  # not chosen, not touched
    assert not [c for c in sandbox.calls("databricks") if c["path"].endswith("jobs/reset")]

    second = _setup(config, "--jobs", "101,102", "--apply", "--on-success")
    assert second.exit_code == 0, second.output
    assert second.stdout.splitlines()[:4] == [
        f"destination: reuse {DEST_NAME!r} (id {ours}) and refresh its URL "
        f"{URL}/databricks-monitor and user 'databricks'",
        "job 101 (job_101): already connected (on_failure, on_success)",
        "job 102 (job_102): already connected (on_failure, on_success)",
        f"done: destination {ours}, 0 job(s) updated",
    ]
    assert sorted(d.display_name for d in w.notification_destinations.list()) == [
        "PagerDuty bridge", DEST_NAME]
    assert _settings_of(w, 101) == after_101
    assert _settings_of(w, 102) == after_102


def test_all_jobs_and_the_three_destination_limit(
        dbx: tuple[WorkspaceClient, Path], sandbox: Sandbox) -> None:
    w, config = dbx
    hooks = []
    for n in range(3):
        dest = w.notification_destinations.create(
            display_name=f"hook {n}", config=dbx_settings.Config(
                generic_webhook=dbx_settings.GenericWebhookConfig(url=f"https://h{n}.example")))
        hooks.append(dbx_jobs.Webhook(id=dest.id))
    w.jobs.update(103, new_settings=dbx_jobs.JobSettings(
        webhook_notifications=dbx_jobs.WebhookNotifications(on_failure=hooks)))
    before = {job: _settings_of(w, job) for job in (101, 102, 103)}
    seen = len(sandbox.calls("databricks"))
    result = _setup(config, "--apply")
    assert result.exit_code == 1
    assert result.stderr == (
        "remediator setup databricks: job 103 (job_103): webhook_notifications.on_failure "
        "already has 3 destinations and Databricks allows at most 3; remove one from the job "
        "or leave the job out (--jobs)\n")
    assert {c["method"] for c in sandbox.calls("databricks")[seen:]} == {"GET"}
    assert {job: _settings_of(w, job) for job in (101, 102, 103)} == before

    result = _setup(config, "--jobs", "101,102", "--apply")
    assert result.exit_code == 0, result.output
    assert "done: destination" in result.stdout


def test_bad_input_is_refused_before_any_call(
        dbx: tuple[WorkspaceClient, Path], sandbox: Sandbox, tmp_path: Path) -> None:
    _, config = dbx
    seen = len(sandbox.calls("databricks"))
    result = _run("setup", "databricks", "--workspace", "dev", "--url", URL,
                  "--config", str(config))
    assert (result.exit_code, result.stderr) == (
        2, "remediator setup databricks: --workspace 'dev': no [clouds.databricks.dev] in the "
           "settings (configured: prod)\n")
    result = _setup(config, "--jobs", "12,x")
    assert (result.exit_code, result.stderr) == (
        2, "remediator setup databricks: --jobs: expected 'all' or job ids like 123,456, got "
           "'12,x'\n")
    no_users = tmp_path / "nousers.toml"
    no_users.write_text(config.read_text().split("\n\n", 1)[1])
    result = _run("setup", "databricks", "--workspace", "prod", "--url", URL,
                  "--config", str(no_users))
    assert (result.exit_code, result.stderr) == (
        2, "remediator setup databricks: the settings have no basic_users; "
           "a Databricks webhook destination can carry only basic auth (user and password)\n")
    assert len(sandbox.calls("databricks")) == seen


@pytest.mark.parametrize(("pollers", "expected"), [
    ('clusters = "all"', [
        "clusters the cluster-events poller will watch (all, 1):",
        "  0314-021500-abcd1234  etl-0314-021500-abcd1234  TERMINATED  UI"]),
    ('clusters = ["0314-021500-abcd1234", "0000-000000-gone"]', [
        "clusters the cluster-events poller will watch (2):",
        "  0314-021500-abcd1234  etl-0314-021500-abcd1234  TERMINATED  UI",
        "  0000-000000-gone  (not in clusters/list)"]),
])
def test_the_clusters_listed_are_the_pollers(dbx: tuple[WorkspaceClient, Path], pollers: str,
                                             expected: list[str]) -> None:
    _, config = dbx
    config.write_text(config.read_text() + f"\n[pollers.databricks.prod]\n{pollers}\n")
    result = _setup(config, "--jobs", "101")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-len(expected):] == expected


def test_a_refusal_by_databricks_exits_1_and_changes_no_job(
        dbx: tuple[WorkspaceClient, Path], sandbox: Sandbox) -> None:
    w, config = dbx
    before = _settings_of(w, 101)
    sandbox.script("databricks", "notification-destinations.create", status=403)
    result = _setup(config, "--jobs", "101", "--apply")
    assert result.exit_code == 1
    assert result.stderr == ("remediator setup databricks: databricks.notification_destinations"
                             ".create: 403 INTERNAL_ERROR: Scripted failure 403\n")
    assert _settings_of(w, 101) == before
    assert BASIC_PASSWORD not in result.output
