"""The settings ``remediator sandbox`` writes can perform every action the shipped playbooks
use (issue 18, item 9): the clouds, the on-call channel and the ticket system (a webhook sink
the command serves and prints), and the LLM (the OpenAI emulator). Before, they had no
channel, ticket or LLM section, and an incident escalated to a ticket system that was not
there."""

from __future__ import annotations

import signal
import subprocess
import tomllib
from pathlib import Path

import httpx
from click.testing import CliRunner

from cli import main
from tests.fixtures.common import ROOT, remediator_command
from tests.reliability.conftest import poll


def test_the_sandbox_settings_leave_no_action_unperformable(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.toml"
    err = tmp_path / "stderr.txt"
    with err.open("w") as stderr:
        process = subprocess.Popen([*remediator_command(), "sandbox", "--config-out",
                                    str(config)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=stderr)
    try:
        poll(lambda: (config.exists() and "[llm]" in config.read_text())
             or process.poll() is not None, bound_s=120, what="the settings written")
        assert process.poll() is None, err.read_text()
        result = CliRunner().invoke(main, ["validate", "--strict", "--config", str(config),
                                           str(ROOT / "playbooks")], catch_exceptions=False)
        assert (result.exit_code, result.stderr) == (0, "")
        settings = tomllib.loads(config.read_text())
        assert sorted(settings["clouds"]) == ["adf", "channels", "databricks", "synapse",
                                              "ticket"]
        assert httpx.URL(settings["llm"]["base_url"]).host == "127.0.0.1"
        assert settings["notifications"]["channels"] == ["data-oncall"]
        channel = settings["clouds"]["channels"]["data-oncall"]["url"]
        assert httpx.post(channel, json={"text": "pl_ingest_sales_daily failed"}).status_code \
            == 200
        assert httpx.post(settings["clouds"]["ticket"]["url"],
                          json={"title": "pl_ingest_sales_daily still failing"}).json() == {
            "id": "INC-1002"}
        poll(lambda: "ticket system <-" in err.read_text(), bound_s=120,
             what="the posts printed")
        assert "channel data-oncall <- pl_ingest_sales_daily failed\n" in err.read_text()
        assert "ticket system <- pl_ingest_sales_daily still failing\n" in err.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
