"""The commands that make no cloud call start without importing a cloud SDK.

One fresh interpreter (an import already made by another test would hide a regression) runs
the commands one after the other and reports, after each, which forbidden modules are loaded:
the first command that pulls one in is the one named.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.common import ROOT

FORBIDDEN = ("databricks.sdk", "azure.mgmt", "azure.synapse", "azure.identity", "openai",
             "msal", "litestar", "uvicorn")

PROBE = """
import json, sys
forbidden = tuple(json.loads(sys.argv[2]))
loaded = lambda: sorted(m for m in sys.modules if m.startswith(forbidden))
report = []
from cli import main
report.append({"args": ["import cli"], "exit": 0, "loaded": loaded()})
from click.testing import CliRunner
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args)
    report.append({"args": args, "exit": result.exit_code, "loaded": loaded()})
print(json.dumps(report))
"""

SAMPLE = "tests/testdata/samples/azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json"


def test_the_offline_commands_import_no_cloud_sdk(tmp_path: Path) -> None:
    from engine.store.db import Database

    Database(str(tmp_path / "r.db")).close()
    commands = [
        ["--help"],
        ["validate", "playbooks"],
        ["test", "playbooks"],
        ["schema"],
        ["simulate", "--source", "adf", "--playbooks", "playbooks", SAMPLE],
        ["audit", "verify", "--db", str(tmp_path / "r.db")],
        ["audit", "list", "--db", str(tmp_path / "r.db")],
    ]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands),
                           json.dumps(FORBIDDEN)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    # `audit verify` of a database with no audit record is exit 1 (issue 18, item 11).
    assert report == [{"args": args, "exit": int(args[:2] == ["audit", "verify"]), "loaded": []}
                      for args in [["import cli"], *commands]]
