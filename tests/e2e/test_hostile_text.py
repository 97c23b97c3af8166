"""Issue 14: one webhook with a huge message must not stop ``remediator serve``.

Before RE2 and the bound on messages, an Azure Monitor alert whose description was 800,000
letters froze the process for about 45 minutes (``\\w+Exception\\b`` in the offline RCA held
the GIL), and the shipped rule regex ``column .* does not`` needed minutes on a long SQL
error. Here a real ``serve`` process takes three such webhooks; ``/health`` must answer every
probe meanwhile, and every event must be processed to ``done``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import httpx

from engine.text.patterns import TEXT_LIMIT
from tests.e2e.test_serve import ADMIN_KEY, RECEIVER_KEY, _serve
from tests.fixtures.common import ROOT, load_sample

PROBE_TIMEOUT_S = 5.0
"""A probe that takes longer than this counts as the service not answering."""
PROCESS_BOUND_S = 150.0
"""How long the three events may take to be processed, all together (seconds, not minutes)."""


def _alert(description: str) -> dict[str, Any]:
    payload = copy.deepcopy(load_sample("seed/adf-action-group-alert.json"))
    payload["data"]["essentials"]["description"] = description
    del payload["data"]["alertContext"]  # so that the description is the message
    return payload


def _sql_failure(message: str) -> dict[str, Any]:
    payload = copy.deepcopy(
        load_sample("azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json"))
    properties = payload["data"]["alertContext"]["properties"]
    properties.update(ErrorCode="SqlOperationFailed", ErrorMessage=message,
                      PipelineRunId="run-sql-9f1e")
    return payload


def _databricks_failure(message: str) -> dict[str, Any]:
    payload = copy.deepcopy(load_sample("seed/databricks-job-failure.json"))
    payload["run"]["state"]["state_message"] = message
    return payload


def test_huge_messages_neither_stop_the_service_nor_stall_their_events(tmp_path: Path) -> None:
    webhooks = [
        ("azure-monitor", _alert("A" * 800_000)),
        ("azure-monitor", _sql_failure("column " * 130_000)),
        ("databricks-monitor", _databricks_failure("Exception" + "x" * 900_000)),
    ]
    with _serve(tmp_path, ROOT / "playbooks") as (url, _, _process), httpx.Client() as http:
        ids = []
        for endpoint, payload in webhooks:
            response = http.post(f"{url}/{endpoint}", params={"api_key": RECEIVER_KEY},
                                 json=payload, timeout=60)
            assert response.status_code == 202, response.text
            ids.append(response.json()["event_id"])

        def states() -> list[str]:
            return [http.get(f"{url}/api/events/{event_id}", headers={"x-api-key": ADMIN_KEY},
                             timeout=PROBE_TIMEOUT_S).json()["state"] for event_id in ids]

        probes = 0
        deadline = time.monotonic() + PROCESS_BOUND_S
        while True:
            health = http.get(f"{url}/health", timeout=PROBE_TIMEOUT_S)
            assert health.status_code == 200
            probes += 1
            if probes >= 20 and states() == ["done"] * 3:
                break
            assert time.monotonic() < deadline, f"not processed in time: {states()}"
        for _ in range(20):  # and after it, as before
            assert http.get(f"{url}/health", timeout=PROBE_TIMEOUT_S).status_code == 200

        events = [http.get(f"{url}/api/events/{event_id}", headers={"x-api-key": ADMIN_KEY},
                           timeout=PROBE_TIMEOUT_S).json() for event_id in ids]
    # The event keeps the first TEXT_LIMIT characters; the stored payload keeps them all.
    assert [len(e["message"]) for e in events] == [TEXT_LIMIT] * 3
    assert all(e["message"].endswith("…") for e in events)
    assert events[0]["message"][:-1] == "A" * (TEXT_LIMIT - 1)
    assert len(events[0]["raw"]["data"]["essentials"]["description"]) == 800_000
