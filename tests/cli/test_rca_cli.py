"""``remediator rca`` through CliRunner: offline on a real-shaped payload, --json, --show-prompt
(redacted, nothing called) and with [llm] pointed at the sandbox's OpenAI emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli import main
from tests.fixtures.common import ROOT

BLOB = ROOT / "playbooks" / "testdata" / "adf-log-alert-blob-missing.json"


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_offline_analysis_of_a_sample() -> None:
    result = _run("rca", "--source", "adf", str(BLOB))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == ("pl_ingest_sales_daily: pl_ingest_sales_daily failed with "
                        "UserErrorSourceBlobNotExist, a known data not landed failure.")
    assert lines[1] == "  engine:     offline"
    assert lines[2] == "  category:   data_not_landed (retryable: yes, confidence 0.8)"
    assert "  next step:  wait for the upstream, then retry; ticket if still missing" in lines
    assert "  note:       no LLM is configured ([llm])" in lines


def test_json_output() -> None:
    result = _run("rca", "--source", "adf", str(BLOB), "--json")
    assert result.exit_code == 0
    [analysis] = json.loads(result.stdout)
    assert (analysis["engine"], analysis["category"], analysis["retryable"]) == (
        "offline", "data_not_landed", True)
    assert analysis["notes"] == ["no LLM is configured ([llm])",
                                 "matched the catalog entry UserErrorSourceBlobNotExist"]


def test_show_prompt_is_redacted_and_calls_nothing(tmp_path: Path, sandbox: Any) -> None:
    payload = json.loads(BLOB.read_text())
    text = json.dumps(payload).replace(
        "The required Blob is missing.",
        "The required Blob is missing. AccountKey=planted0123456789== Password=hunter2;")
    path = tmp_path / "secret.json"
    path.write_text(text)
    config = tmp_path / "remediator.toml"
    config.write_text(f'db = "{tmp_path / "r.db"}"\n[llm]\nprovider = "compatible"\n'
                      f'base_url = "{sandbox.openai_url}"\napi_key = "sk-cli-secret"\n')
    result = _run("rca", "--source", "adf", str(path), "--show-prompt", "--config", str(config))
    assert result.exit_code == 0
    assert result.stdout.startswith("[system]\nYou analyse failures of Azure Data Factory")
    assert "\n[user]\nFailure event:\n" in result.stdout
    assert "AccountKey=*** Password=***;" in result.stdout
    assert "planted0123456789" not in result.stdout and "hunter2" not in result.stdout
    assert "Error trace (head):\nFailure happened on 'Source' side." in result.stdout
    assert sandbox.calls("openai") == []


def test_with_the_llm_configured(tmp_path: Path, sandbox: Any) -> None:
    config = tmp_path / "remediator.toml"
    config.write_text(f'db = "{tmp_path / "r.db"}"\n[llm]\nprovider = "compatible"\n'
                      f'base_url = "{sandbox.openai_url}"\napi_key = "sk-cli-secret"\n'
                      'timeout = 2\nmax_retries = 0\n')
    result = _run("rca", "--source", "adf", str(BLOB), "--json", "--config", str(config))
    assert result.exit_code == 0
    [analysis] = json.loads(result.stdout)
    assert (analysis["engine"], analysis["model"]) == ("llm", "gpt-4o-mini")
    assert len(sandbox.calls("openai")) == 1
    again = json.loads(_run("rca", "--source", "adf", str(BLOB), "--json", "--config",
                            str(config)).stdout)
    assert again[0]["engine"] == "cache"  # the cache lives in the configured database
    assert len(sandbox.calls("openai")) == 1


def test_a_payload_without_a_firing_event(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{}")
    result = CliRunner().invoke(main, ["rca", "--source", "adf", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}: ")
