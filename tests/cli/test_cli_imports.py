"""The commands that make no cloud call start without importing a cloud SDK.

Each case runs in a fresh interpreter (an import already made by another test would hide a
regression) and reports which forbidden modules the command left in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.common import ROOT

FORBIDDEN = ("databricks.sdk", "azure.mgmt", "azure.synapse", "azure.identity", "openai",
             "msal", "litestar", "uvicorn")

PROBE = """
import json, sys
from click.testing import CliRunner
from engine.cli import main
args = json.loads(sys.argv[1])
result = CliRunner().invoke(main, args) if args else None
forbidden = tuple(json.loads(sys.argv[2]))
loaded = sorted(m for m in sys.modules if m.startswith(forbidden))
print(json.dumps({"exit": result.exit_code if result else 0, "loaded": loaded,
                  "output": result.output[-400:] if result else ""}))
"""


def _probe(args: list[str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(FORBIDDEN)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_imports_no_cloud_sdk() -> None:
    assert _probe([]) == {"exit": 0, "loaded": [], "output": ""}


@pytest.mark.parametrize("args", [
    ["--help"],
    ["validate", "playbooks"],
    ["test", "playbooks"],
    ["schema"],
    ["simulate", "--source", "adf", "--playbooks", "playbooks",
     "tests/testdata/samples/azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json"],
], ids=["help", "validate", "test", "schema", "simulate"])
def test_offline_commands_import_no_cloud_sdk(args: list[str]) -> None:
    answer = _probe(args)
    assert (answer["exit"], answer["loaded"]) == (0, []), answer["output"]


def test_audit_verify_imports_no_cloud_sdk(tmp_path: Path) -> None:
    from engine.store import Database

    Database(str(tmp_path / "r.db")).close()
    answer = _probe(["audit", "verify", "--db", str(tmp_path / "r.db")])
    assert (answer["exit"], answer["loaded"]) == (0, []), answer["output"]
