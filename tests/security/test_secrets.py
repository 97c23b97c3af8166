"""Secrets planted in a webhook payload, in a cloud's error answer and in the configuration
never show in the captured log output, the audit log, the dashboard pages or any /api answer
of the running app (webhook over HTTP -> worker -> real SDK client -> sandbox). The LLM
prompt is checked with the same planted kinds in tests/engine/analysis/test_secrets.py."""

from __future__ import annotations

import base64
import copy
import io
import json
from typing import Any

import msgspec

from engine.logs import configure_logging
from engine.store import audit as audit_store
from tests.e2e.test_actions_e2e import rule
from tests.e2e.test_remediation import BLOB
from tests.engine.actions.conftest import AZ_SECRET, DBX_TOKEN
from tests.engine.analysis.test_secrets import PLAYBOOK as UNMATCHED
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN, ADMIN_KEY, RECEIVER_KEY

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlUExBTlRFRA"
PLANTED = {
    "sas": "SASsig0123456789abcdefPLANT%3D",
    "account_key": "AKplanted0123456789abcdef==",
    "password": "Pw-planted-123",
    "jwt": JWT,
    "dapi": "dapifeedfacecafebeef0123456789abcd",
    "client_secret": "CSplanted~secret.value",
    "echoed": "dapi0badc0ffee0123456789abcdef0123",
}
CONFIGURED = {"receiver key": RECEIVER_KEY, "admin key": ADMIN_KEY,
              "[clouds] client secret": AZ_SECRET, "[clouds] databricks token": DBX_TOKEN}
MESSAGE = (
    "Copy failed: ErrorCode=UserErrorSourceBlobNotExist reading "
    f"https://st.blob.core.windows.net/raw?sv=2022-11-02&sig={PLANTED['sas']}&se=2025 "
    f"DefaultEndpointsProtocol=https;AccountName=st;AccountKey={PLANTED['account_key']};"
    f" Server=tcp:sql;User ID=etl;Password={PLANTED['password']}; id_token {JWT} "
    f"databricks token {PLANTED['dapi']} client_secret={PLANTED['client_secret']}"
)


def _payload() -> dict[str, Any]:
    payload = copy.deepcopy(load_sample(BLOB))
    payload["data"]["essentials"]["description"] = MESSAGE
    payload["data"]["customProperties"] = {"password": PLANTED["password"],
                                           "client_secret": PLANTED["client_secret"],
                                           "note": MESSAGE}
    return payload


def _leaks(text: str) -> list[str]:
    secrets = {**PLANTED, **CONFIGURED}
    return sorted(name for name, value in secrets.items() if value in text)


def test_no_planted_or_configured_secret_shows_anywhere(service_rig: Any) -> None:
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    try:
        rig = service_rig(rule("{source: adf}", "      - action: adf.rerun_pipeline"),
                          live=True)
        echo = {"error": {"code": "BadRequest",
                          "message": f"bad token {PLANTED['echoed']} (Bearer "
                                     f"{PLANTED['echoed']}); sig={PLANTED['sas']}"}}
        rig.sandbox.script("adf", "adf.createRun", status=400, body=echo)
        answer = rig.post("azure-monitor", _payload())
        assert rig.run() == 1
        rig.tick(3600)
        [incident] = rig.incidents()
        assert incident.state == "escalated"
        assert incident.reason == (  # the cloud's words are kept, masked
            "rules.yaml:r/actions[0]: adf.rerun_pipeline[factory=adf-contoso-prod "
            "pipeline=pl_ingest_sales_daily]: 400 Bad Request (BadRequest: bad token *** "
            "(Bearer ***); sig=***)")
        pages = {}
        for path in ("/api/events", f"/api/events/{answer['event_id']}", "/api/incidents",
                     f"/api/incidents/{incident.id}", "/api/status", "/api/playbooks", "/",
                     f"/incidents/{incident.id}", "/playbooks", "/audit", "/metrics"):
            response = rig.client.get(path, headers=ADMIN)
            assert response.status_code == 200, (path, response.status_code)
            pages[path] = response.text
    finally:
        configure_logging()
    records = audit_store.list_records(rig.db, limit=10_000)
    audit = msgspec.json.encode([r.data for r in records]).decode()
    assert "escalation" in [r.kind for r in records]
    found = {where: _leaks(text) for where, text in
             {"logs": logs.getvalue(), "audit": audit, **pages}.items()}
    assert {k: v for k, v in found.items() if v} == {}
    assert json.loads(pages["/api/incidents"])  # the pages are not empty answers
    assert len(logs.getvalue()) > 1000
    event = json.loads(pages[f"/api/events/{answer['event_id']}"])
    assert event["attributes"]["description"] == (  # the payload reached the app, masked
        "Copy failed: ErrorCode=UserErrorSourceBlobNotExist reading "
        "https://st.blob.core.windows.net/raw?sv=2022-11-02&sig=***&se=2025 "
        "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=***; Server=tcp:sql;"
        "User ID=etl;Password=***; id_token *** databricks token *** client_secret=***")


# Configured secrets planted as plain text where no pattern looks (a `note`, the description,
# an attribute name): only masking by value catches them.
BASIC_USER, BASIC_PASSWORD = "dbx-sender", "bp-svc-5d1e9c2a7f"
LLM_KEY = "llm-key-0c7e51b9a2d4"
BY_VALUE = {"receiver key": RECEIVER_KEY, "admin key": ADMIN_KEY,
            "basic-auth password": BASIC_PASSWORD, "LLM key": LLM_KEY}


def _planted_by_value() -> dict[str, Any]:
    payload = copy.deepcopy(load_sample(BLOB))
    payload["data"]["essentials"]["description"] = (
        f"Copy failed; owner {RECEIVER_KEY}, escalate via {ADMIN_KEY} "
        f"(login {BASIC_USER} {BASIC_PASSWORD}, model {LLM_KEY})")
    payload["data"]["customProperties"] = {
        "note": f"ask ops, key {ADMIN_KEY}", "owner": RECEIVER_KEY,
        "runbook": [f"step 1: {BASIC_PASSWORD}"], ADMIN_KEY: "an attribute named after it"}
    return payload


def _database_text(rig: Any) -> dict[str, str]:
    """Every row of every table, as text (events with their raw payload, incidents, audit
    records, action rows, analyses, engine state)."""
    tables = [r["name"] for r in rig.db.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {f"table {name}": json.dumps([dict(r) for r in
                                         rig.db.query(f'SELECT * FROM "{name}"')], default=str)
            for name in tables}


def test_configured_secrets_planted_in_a_payload_are_masked_by_value(
    service_rig: Any, sandbox: Any
) -> None:
    from engine.config import LlmSettings, Secret

    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    try:
        llm = LlmSettings(provider="compatible", base_url=sandbox.openai_url,
                          api_key=Secret(LLM_KEY), timeout=5, max_retries=0)
        rig = service_rig(UNMATCHED, basic_users={BASIC_USER: Secret(BASIC_PASSWORD)}, llm=llm)
        # The cloud's own error (what enrichment stores as the event's message) echoes them too.
        sandbox.script("adf", "adf.queryActivityruns", body={"value": [{
            "activityName": "Copy_RawSales_To_Bronze", "activityType": "Copy",
            "activityRunStart": "2025-03-14T02:11:00Z", "activityRunEnd": "2025-03-14T02:12:00Z",
            "status": "Failed", "pipelineName": "pl_ingest_sales_daily",
            "pipelineRunId": "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11", "activityRunId": "a1",
            "error": {"errorCode": "2200", "failureType": "UserError",
                      "target": "Copy_RawSales_To_Bronze",
                      "message": f"ErrorCode=UserErrorSourceBlobNotExist, linked service key "
                                 f"{ADMIN_KEY}, AccountKey={PLANTED['account_key']};"}}]})
        answer = rig.post("azure-monitor", _planted_by_value())
        assert rig.run() == 1
        [incident] = rig.incidents()
        pages = {}
        for path in ("/api/events", f"/api/events/{answer['event_id']}", "/api/incidents",
                     f"/api/incidents/{incident.id}", "/api/status", "/", "/audit",
                     f"/incidents/{incident.id}"):
            response = rig.client.get(path, headers=ADMIN)
            assert response.status_code == 200, (path, response.status_code)
            pages[path] = response.text
    finally:
        configure_logging()
    [call] = sandbox.calls("openai")
    prompt = call["body"]["messages"][1]["content"]
    where = {"logs": logs.getvalue(), "LLM request": json.dumps(call), **pages,
             **_database_text(rig)}
    secrets = {**BY_VALUE, "account_key": PLANTED["account_key"]}
    found = {name: sorted(kind for kind, value in secrets.items() if value in text)
             for name, text in where.items()}
    assert {k: v for k, v in found.items() if v} == {}
    # The planted text did arrive everywhere, masked where the values were.
    event = json.loads(pages[f"/api/events/{answer['event_id']}"])
    assert event["attributes"]["description"] == (
        f"Copy failed; owner ***, escalate via *** (login {BASIC_USER} ***, model ***)")
    assert "Copy failed; owner ***" in prompt
    [enriched] = rig.db.query("SELECT enriched FROM events")
    assert json.loads(enriched["enriched"])["message"] == (
        "ErrorCode=UserErrorSourceBlobNotExist, linked service key ***, AccountKey=***;")
    assert [json.loads(line)["event"] for line in logs.getvalue().splitlines()
            if '"intake"' in line] == ["intake"]
    raw = rig.db.query("SELECT raw FROM events WHERE id = ?", (answer["event_id"],))[0]["raw"]
    assert json.loads(raw)["data"]["customProperties"] == {
        "note": "ask ops, key ***", "owner": "***", "runbook": ["step 1: ***"],
        "***": "an attribute named after it"}
    assert incident.state == "escalated"


def _encoded_forms() -> dict[str, str]:
    """The configured secrets as the red team planted them, encoded (round after issue 14):
    the Basic header the dashboard login sends (an admin key works with any user name), a key
    alone in base64 and base64url, a key inside a longer token, and hex."""
    b64, b64url = base64.b64encode, base64.urlsafe_b64encode
    return {
        "Basic admin:<admin key>": b64(f"admin:{ADMIN_KEY}".encode()).decode(),
        "Basic <any user>:<admin key>": b64(f"night-shift:{ADMIN_KEY}".encode()).decode(),
        "base64 of the receiver key": b64(RECEIVER_KEY.encode()).decode(),
        "base64url of the receiver key": b64url(RECEIVER_KEY.encode()).decode().rstrip("="),
        "base64 of a token holding the admin key": b64(f"v1|{ADMIN_KEY}|2025".encode()).decode(),
        "hex of the admin key": ADMIN_KEY.encode().hex(),
        "HEX of the receiver key": RECEIVER_KEY.encode().hex().upper(),
    }


def test_configured_secrets_planted_encoded_are_masked(service_rig: Any) -> None:
    from engine.config import Secret

    encoded = _encoded_forms()
    rig = service_rig(UNMATCHED, basic_users={BASIC_USER: Secret(BASIC_PASSWORD)})
    payload = copy.deepcopy(load_sample(BLOB))
    payload["data"]["essentials"]["description"] = "; ".join(
        f"{name}: {value}" for name, value in encoded.items())
    basic, token = encoded["Basic admin:<admin key>"], encoded["base64url of the receiver key"]
    payload["data"]["customProperties"] = {"header_seen": f"Basic {basic}",
                                           "url": f"https://x.example/cb?t={token}&v=1"}
    answer = rig.post("azure-monitor", payload)
    assert rig.run() == 1
    [incident] = rig.incidents()
    pages = {path: rig.client.get(path, headers=ADMIN).text
             for path in ("/api/events", f"/api/events/{answer['event_id']}",
                          f"/api/incidents/{incident.id}", "/audit", f"/incidents/{incident.id}")}
    where = {**pages, **_database_text(rig)}
    found = {name: sorted(kind for kind, value in encoded.items() if value in text)
             for name, text in where.items()}
    assert {k: v for k, v in found.items() if v} == {}
    event = json.loads(pages[f"/api/events/{answer['event_id']}"])
    assert event["attributes"]["description"] == "; ".join(f"{name}: ***" for name in encoded)
    raw = rig.db.query("SELECT raw FROM events WHERE id = ?", (answer["event_id"],))[0]["raw"]
    assert json.loads(raw)["data"]["customProperties"] == {
        "header_seen": "Basic ***", "url": "https://x.example/cb?t=***&v=1"}
