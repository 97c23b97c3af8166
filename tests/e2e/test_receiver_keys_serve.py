"""Receiver keys scoped per receiver in a real ``remediator serve`` (issue 14, item 4): the
start-up log warns about a key that opens several receivers, and a key scoped to
``/azure-monitor`` opens nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.test_serve import ADMIN_KEY, RECEIVER_KEY, _serve
from tests.fixtures.common import ROOT, load_sample

SCOPED = "rk-azmon-only-5e71c0"


def test_serve_warns_about_a_shared_key_and_a_scoped_key_opens_only_its_receiver(
        tmp_path: Path) -> None:
    env = {"REMEDIATOR_RECEIVER_KEYS_AZURE_MONITOR": SCOPED}
    with _serve(tmp_path, ROOT / "playbooks", env) as (url, log_path, _):
        azure = load_sample("seed/adf-action-group-alert.json")
        dbx = load_sample("databricks/databricks-job-on-failure.json")
        assert httpx.post(f"{url}/azure-monitor", params={"api_key": SCOPED},
                          json=azure).status_code == 202
        assert httpx.post(f"{url}/databricks-monitor", params={"api_key": SCOPED},
                          json=dbx).status_code == 401
        # The global key no longer opens the receiver that has keys of its own.
        assert httpx.post(f"{url}/azure-monitor", params={"api_key": RECEIVER_KEY},
                          json=azure).status_code == 401
        assert httpx.post(f"{url}/databricks-monitor", params={"api_key": RECEIVER_KEY},
                          json=dbx).status_code == 202
        lines = [json.loads(line) for line in log_path.read_text().splitlines()
                 if line.startswith("{")]
    warnings = [line["problem"] for line in lines if line.get("event") == "auth"]
    assert warnings == [
        "api_keys[0] opens 3 receivers (/synapse-monitor, /azure-functions-monitor, "
        "/databricks-monitor): a key leaked from one sender opens them all; give each receiver "
        "its own keys ([receivers.<name>] api_keys, or REMEDIATOR_RECEIVER_KEYS_<NAME>)"]
    text = log_path.read_text()
    assert SCOPED not in text and RECEIVER_KEY not in text and ADMIN_KEY not in text
