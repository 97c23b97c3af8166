"""``remediator validate`` warnings (issue 15, item 10): what it says without and with
``--config``, and what ``--strict`` makes of the warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine.rules.lint import NOT_CHECKED
from tests.fixtures.playbooks import PLAYBOOK_DATA

PLAYBOOK = """\
name: settings
rules:
  - id: tell
    match: {source: adf, error_code: SqlFailedToConnect}
    actions:
      - action: notify.webhook
        with: {channel: data-oncal, text: "{{ event.resource }} cannot reach SQL"}
      - action: notify.webhook
        with: {url: "https://hooks.evil.example/{{ event.resource }}", text: "x"}
      - action: adf.rerun_pipeline
    on_failure:
      - action: ticket.create
        with: {title: "{{ event.resource }} still failing"}
  - id: explain
    match: {source: databricks, kind: cluster}
    actions:
      - action: rca.analyze
        with: {channel: data-oncall}
      - action: databricks.restart_cluster
      - action: rca.analyze
"""
SETTINGS = """\
[clouds.channels.data-oncall]
url = "https://hooks.example.com/T000/B000/xyz"
"""


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "rules.yaml").write_text(PLAYBOOK)
    (tmp_path / "remediator.toml").write_text(SETTINGS)
    return tmp_path / "rules.yaml", tmp_path / "remediator.toml"


def test_without_config_the_actions_are_not_checked_and_it_says_so(
        files: tuple[Path, Path]) -> None:
    playbook, _ = files
    result = _run("validate", str(playbook))
    assert result.exit_code == 0
    assert result.stdout == "ok: 2 rule(s) in 1 file(s), 0 test(s)\n"
    assert result.stderr == f"note: {NOT_CHECKED}\n"


def test_with_config_every_name_the_settings_lack_is_a_warning(
        files: tuple[Path, Path]) -> None:
    playbook, settings = files
    result = _run("validate", "--config", str(settings), str(playbook))
    assert result.exit_code == 0
    assert result.stdout == "ok: 2 rule(s) in 1 file(s), 0 test(s)\n"
    assert result.stderr.splitlines() == [
        f"{playbook}:7:25: warning: `notify.webhook`: channel `data-oncal` is not in"
        f" [clouds.channels] of {settings}; did you mean `data-oncall`?",
        f"{playbook}:9:21: warning: `notify.webhook`: host 'hooks.evil.example' is not"
        " allowed; add it to [clouds] allowed_hosts or post to a configured channel",
        f"{playbook}:10:17: warning: `adf.rerun_pipeline`: {settings} has no [clouds.adf]"
        " entry: the action could not reach any",
        f"{playbook}:12:17: warning: `ticket.create`: {settings} has no [clouds.ticket]:"
        " no ticket would be opened",
        f"{playbook}:17:17: note: `rca.analyze`: {settings} has no [llm]: the analyses will"
        " be offline (the error catalog only)",
        f"{playbook}:19:17: warning: `databricks.restart_cluster`: {settings} has no"
        " [clouds.databricks] entry: the action could not reach any",
        "5 warning(s)",
    ]


def test_strict_makes_warnings_errors_but_not_notes(files: tuple[Path, Path]) -> None:
    playbook, settings = files
    result = _run("validate", "--strict", "--config", str(settings), str(playbook))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 6 and all(": warning: " in line for line in lines[:5])
    assert lines[-1] == "5 problem(s) (warnings are errors under --strict)"

    settings.write_text(SETTINGS.replace("data-oncall", "data-oncal") + """
[clouds.channels.data-oncall]
url = "https://hooks.example.com/T000/B000/abc"
[clouds.ticket]
url = "https://tickets.example.com/api"
[clouds.adf.prod]
subscription_id = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
resource_group = "rg-dataplatform-prod"
credential = {type = "managed_identity"}
[clouds.databricks.ws]
host = "https://adb-1.azuredatabricks.net"
token = "dapi-x"
""")
    playbook.write_text(PLAYBOOK.replace("hooks.evil.example", "hooks.example.com"))
    result = _run("validate", "--strict", "--config", str(settings), str(playbook))
    assert result.exit_code == 0
    assert result.stderr == (f"{playbook}:17:17: note: `rca.analyze`: {settings} has no"
                             " [llm]: the analyses will be offline (the error catalog only)\n")


def test_a_warning_without_strict_does_not_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PLAYBOOK_DATA / "bad")
    result = _run("validate", "warn-codes.yaml")
    assert result.exit_code == 0
    expected = (PLAYBOOK_DATA / "bad" / "warn-codes.errors").read_text().splitlines()
    assert result.stderr.splitlines() == [*expected, "5 warning(s)", f"note: {NOT_CHECKED}"]
    assert result.stdout == "ok: 8 rule(s) in 1 file(s), 0 test(s)\n"


def test_a_policys_match_is_checked_as_a_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelled attribute or error code in a policy's ``match:`` would make the policy
    never hold (no approval asked): warned at its file:line:col with what was meant."""
    monkeypatch.chdir(PLAYBOOK_DATA / "bad")
    result = _run("validate", "warn-policies.yaml")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "warn-policies.yaml:8:26: warning: `attributes.factroy`: no sender or enrichment sets "
        "this attribute on adf events; did you mean `attributes.factory`?",
        "warn-policies.yaml:14:24: warning: `DRIVER_UNREACHABE`: no sender produces this "
        "error code; did you mean `DRIVER_UNREACHABLE`?",
        "2 warning(s)", f"note: {NOT_CHECKED}"]
    result = _run("validate", "--strict", "warn-policies.yaml")
    assert result.exit_code == 1


def test_a_settings_file_that_does_not_load_is_exit_2(tmp_path: Path,
                                                      files: tuple[Path, Path]) -> None:
    playbook, settings = files
    settings.write_text("[clouds]\nhttp_timeout = 'soon'\n")
    result = _run("validate", "--config", str(settings), str(playbook))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"remediator validate: {settings}: Expected `float`")


def test_a_cloud_entry_whose_credential_is_incomplete_is_a_warning(
        files: tuple[Path, Path]) -> None:
    playbook, settings = files
    settings.write_text(SETTINGS + """
[clouds.ticket]
url = "https://tickets.example.com/api"
[clouds.adf.prod]
subscription_id = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
resource_group = "rg-dataplatform-prod"
credential = {type = "client_secret", tenant_id = "t", client_id = "c"}
[clouds.adf.test]
subscription_id = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
resource_group = "rg-dataplatform-test"
credential = {type = "managed_identity"}
[clouds.databricks.ws]
host = "https://adb-1.azuredatabricks.net"
auth = "oauth-m2m"
client_id = "sp"
""")
    playbook.write_text(PLAYBOOK.replace("data-oncal,", "data-oncall,")
                        .replace("hooks.evil.example", "hooks.example.com")
                        + "      - action: databricks.restart_cluster\n")
    result = _run("validate", "--config", str(settings), str(playbook), "--json")
    assert result.exit_code == 0
    warnings = [(f["line"], f["message"]) for f in json.loads(result.stdout)["findings"]
                if f["level"] == "warning"]
    assert warnings == [
        (10, f"`adf.rerun_pipeline`: [clouds.adf.prod] of {settings}: credential type "
             "'client_secret' needs client_secret: every call through it would be refused"),
        (19, f"`databricks.restart_cluster`: [clouds.databricks.ws] of {settings}: auth "
             "'oauth-m2m' needs client_secret: every call through it would be refused"),
    ]


def test_an_llm_without_the_key_its_provider_needs_is_a_warning(
        files: tuple[Path, Path]) -> None:
    playbook, settings = files
    settings.write_text(SETTINGS + '[llm]\nprovider = "openai"\n')
    result = _run("validate", "--config", str(settings), str(playbook), "--json")
    llm = [(f["line"], f["level"], f["message"]) for f in json.loads(result.stdout)["findings"]
           if "rca.analyze" in f["message"]]
    assert llm == [(17, "warning", f"`rca.analyze`: [llm] of {settings}: provider 'openai' "
                    "needs api_key: every call to the LLM would be refused (the analyses fall "
                    "back to the error catalog)")]
    settings.write_text(SETTINGS + '[llm]\nprovider = "openai"\napi_key = "sk-0123456789"\n')
    result = _run("validate", "--config", str(settings), str(playbook), "--json")
    assert [f for f in json.loads(result.stdout)["findings"]
            if "rca.analyze" in f["message"]] == []
