"""A planted secret of every kind, in the message (the error trace) and in the attributes, never
reaches the LLM, the log output or the audit log: the worker runs the RCA for an event that no
rule matches, against the sandbox's OpenAI emulator."""

from __future__ import annotations

import io
import json
from typing import Any

from engine.logs import configure_logging
from engine.store import audit as audit_store
from tests.engine.actions.conftest import adf_event
from tests.engine.analysis.conftest import OPENAI_KEY

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlUExBTlRFRA"
PLANTED = {
    "sas": "SASsig0123456789abcdefPLANT%3D",
    "account_key": "AKplanted0123456789abcdef==",
    "conn_password": "Pw d!planted 123",
    "bearer": "bearerPLANTEDtoken0123456789",
    "jwt": JWT,
    "dapi": "dapifeedfacecafebeef0123456789abcd",
    "client_secret": "CSplanted~secret.value",
    "attr_password": "ATTRpw-planted",
    "attr_token": "ATTRtok-planted",
    "attr_client_secret": "ATTRcs-planted",
    "attr_key": "ATTRkey-planted",
}
MESSAGE = (
    "Copy failed: ErrorCode=UserErrorSqlTimeout reading "
    f"https://stcontoso.blob.core.windows.net/raw?sv=2022-11-02&sig={PLANTED['sas']}&se=2025\n"
    f"  at source: DefaultEndpointsProtocol=https;AccountName=st;"
    f"AccountKey={PLANTED['account_key']};EndpointSuffix=core.windows.net\n"
    f"  at sink: Server=tcp:sql.database.windows.net;Database=dw;User ID=etl;"
    f"Password={PLANTED['conn_password']};Encrypt=true\n"
    f"  request headers: Authorization: Bearer {PLANTED['bearer']}\n"
    f"  id_token {PLANTED['jwt']} rejected\n"
    f"  databricks token {PLANTED['dapi']} expired\n"
    f"  POST /oauth2/token client_id=etl&client_secret={PLANTED['client_secret']}&scope=x\n"
)
PLAYBOOK = """
name: other
rules:
  - id: databricks-only
    match: {source: databricks}
    actions: [{action: noop}]
"""


def test_no_planted_secret_leaves_the_process(engine_rig: Any, make_analyzer: Any) -> None:
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    try:
        _run_and_check(engine_rig, make_analyzer, logs)
    finally:
        configure_logging()


def _run_and_check(engine_rig: Any, make_analyzer: Any, logs: io.StringIO) -> None:
    analyzer = make_analyzer()
    worker = engine_rig.worker(PLAYBOOK, rca=analyzer)
    engine_rig.deliver(adf_event(
        error_code="UserErrorSqlTimeout", message=MESSAGE,
        attributes={"factory": "adf-contoso-prod", "activity": "Copy_Sales",
                    "storage_password": PLANTED["attr_password"],
                    "api_token": PLANTED["attr_token"],
                    "linked_service": {"clientSecret": PLANTED["attr_client_secret"],
                                       "key": PLANTED["attr_key"]}}))
    worker.drain()

    [call] = engine_rig.sandbox.calls("openai")
    sent = json.dumps(call)
    prompt = call["body"]["messages"][1]["content"]
    assert "ErrorCode=UserErrorSqlTimeout" in prompt  # the trace itself did go
    assert "AccountKey=***" in prompt and "Password=***" in prompt
    assert '"storage_password": "***"' in prompt and '"activity": "Copy_Sales"' in prompt
    [record] = audit_store.list_records(engine_rig.db, kind="rca")
    assert record.data["analysis"]["engine"] == "llm"
    audit = json.dumps([r.data for r in audit_store.list_records(engine_rig.db, limit=1000)])
    for where, text in (("LLM request", sent), ("logs", logs.getvalue()), ("audit", audit)):
        leaked = [kind for kind, value in PLANTED.items() if value in text]
        assert leaked == [], f"{where} leaked {leaked}"
        assert OPENAI_KEY not in text
    assert '"engine": "llm"' in logs.getvalue() or '"engine":"llm"' in logs.getvalue()
