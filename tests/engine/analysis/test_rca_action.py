"""``rca.analyze`` honours its parameters: ``refresh`` skips the RCA cache, ``offline`` never
asks the LLM, ``channel`` posts the analysis through notify's code to a real local webhook;
each one is in the ``rca`` audit record (real worker, sandbox OpenAI emulator)."""

from __future__ import annotations

from typing import Any

import pytest

from cli.drive import Sink
from engine.actions import rca
from engine.actions.context import ActionContext
from engine.cloud.clients import Clients
from engine.errors import PermanentActionError
from engine.store import audit as audit_store
from tests.engine.actions.conftest import adf_event, cloud_settings

PLAYBOOK = """\
name: rca
rules:
  - id: explain
    match: {{source: adf}}
    actions:
      - action: rca.analyze
        with: {with_}
"""

BLOB = ("ErrorCode=UserErrorSourceBlobNotExist,Message=The required Blob is missing. "
        "ContainerName: raw, path: sales/2025/03/14/sales.csv.")


def run_one(rig: Any, analyzer: Any, with_: str, run_id: str) -> dict[str, Any]:
    """Deliver one failure to a worker whose rule runs rca.analyze with ``with_``; returns
    the data of its rca audit record."""
    worker = rig.worker(PLAYBOOK.format(with_=with_), live=True, rca=analyzer)
    rig.deliver(adf_event(id=f"evt_{run_id}", run_id=run_id, dedup_key=run_id, message=BLOB,
                          error_code="UserErrorSourceBlobNotExist"))
    worker.drain()
    records = audit_store.list_records(rig.db, kind="rca", limit=100)
    return records[-1].data


def test_refresh_skips_the_cache(engine_rig: Any, make_analyzer: Any, sandbox: Any) -> None:
    analyzer = make_analyzer(cache_ttl=3600)
    first = run_one(engine_rig, analyzer, "{}", "run-1")
    cached = run_one(engine_rig, analyzer, "{}", "run-2")
    assert (first["analysis"]["engine"], cached["analysis"]["engine"]) == ("llm", "cache")
    assert "params" not in cached
    assert len(sandbox.calls("openai")) == 1
    fresh = run_one(engine_rig, analyzer, "{refresh: true}", "run-3")
    assert fresh["analysis"]["engine"] == "llm"
    assert fresh["params"] == {"refresh": True, "offline": False, "channel": ""}
    assert len(sandbox.calls("openai")) == 2


def test_offline_never_asks_the_llm(engine_rig: Any, make_analyzer: Any, sandbox: Any) -> None:
    data = run_one(engine_rig, make_analyzer(), "{offline: true}", "run-1")
    assert data["analysis"]["engine"] == "offline"
    assert data["analysis"]["notes"][0] == "offline requested"
    assert data["params"] == {"refresh": False, "offline": True, "channel": ""}
    assert sandbox.calls("openai") == []


def test_channel_gets_the_analysis(engine_rig: Any, make_analyzer: Any, sandbox: Any,
                                   sink: Sink) -> None:
    clients = Clients(cloud_settings(sandbox, channels={
        "data-oncall": {"url": sink.url + "/hooks/T0/B0/oncallsecret", "format": "json"}}))
    engine_rig.ctx = ActionContext(clients=clients)
    try:
        data = run_one(engine_rig, make_analyzer(), "{channel: data-oncall}", "run-1")
    finally:
        clients.close()
    assert data["params"] == {"refresh": False, "offline": False, "channel": "data-oncall"}
    [post] = sink.received
    assert post["path"] == "/hooks/T0/B0/oncallsecret"
    [incident_id] = {r.incident_id for r in audit_store.list_records(engine_rig.db, kind="rca")}
    assert post["headers"]["Idempotency-Key"] == f"rca:{incident_id}:data-oncall"
    body = post["body"]
    summary = "The run failed with UserErrorSourceBlobNotExist."
    assert body["rca"] == summary
    assert body["title"] == "RCA: pl_ingest_sales_daily: UserErrorSourceBlobNotExist"
    assert body["text"].splitlines()[0] == summary
    assert body["analysis"] == {"category": "data_not_landed", "confidence": 0.72,
                                "retryable": False, "engine": "llm"}
    [done] = [r for r in audit_store.list_records(engine_rig.db, kind="action_succeeded")]
    assert done.data["detail"] == ("root-cause analysis recorded and posted to channel "
                                   "data-oncall")


def test_outside_a_remediation_it_refuses(sandbox: Any) -> None:
    clients = Clients(cloud_settings(sandbox))
    try:
        with pytest.raises(PermanentActionError, match=(
                r"^rca\.analyze: no incident to analyse for: the action runs only as a step of "
                r"a remediation$")):
            rca.analyze(rca.RcaParams(), adf_event(), ActionContext(clients=clients))
    finally:
        clients.close()
    assert sandbox.calls("openai") == []
