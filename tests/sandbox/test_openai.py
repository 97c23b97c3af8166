"""The OpenAI-compatible emulator through the real openai client."""

from __future__ import annotations

import json
from typing import Literal

import openai
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from sandbox.server import Sandbox

PROMPT = (
    "Pipeline pl_ingest_sales_daily failed.\n"
    "Operation on target Copy_RawSales_To_Bronze failed: Failure happened on 'Source' side. "
    "ErrorCode=UserErrorSourceBlobNotExist, The required Blob is missing.\n"
    "Connection string: AccountKey=planted-secret-XYZ"
)


class SuggestedRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    match: str
    action: Literal["adf.rerun", "databricks.repair", "notify"]


class RootCause(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: str
    probable_cause: str
    category: Literal["transient", "data", "config", "code", "unknown"]
    retryable: bool
    confidence: float
    evidence: list[str]
    next_steps: list[str]
    suggested_rule: SuggestedRule | None


def strict_schema() -> dict:
    schema = RootCause.model_json_schema()
    schema["additionalProperties"] = False
    schema["required"] = list(schema["properties"])
    return schema


@pytest.fixture
def client(sandbox: Sandbox) -> openai.OpenAI:
    return openai.OpenAI(base_url=sandbox.openai_url, api_key="sk-test", timeout=2, max_retries=0)


def chat(client: openai.OpenAI, prompt: str = PROMPT):
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You analyse data-platform failures."},
                  {"role": "user", "content": prompt}],
        response_format={"type": "json_schema", "json_schema": {
            "name": "root_cause", "strict": True, "schema": strict_schema()}},
    )


def test_chat_answers_valid_json_for_the_schema(client: openai.OpenAI, sandbox: Sandbox) -> None:
    answer = chat(client)
    rca = RootCause.model_validate_json(answer.choices[0].message.content)
    assert rca.category == "data"
    assert rca.retryable is False
    assert rca.summary == "The run failed with UserErrorSourceBlobNotExist."
    assert rca.evidence[0].startswith("Pipeline pl_ingest_sales_daily failed.")
    assert rca.suggested_rule.match == "error_code == 'UserErrorSourceBlobNotExist'"
    assert 0 <= rca.confidence <= 1
    call = sandbox.calls("openai")[-1]
    assert call["body"]["messages"][1]["content"] == PROMPT
    assert call["headers"]["authorization"] == "Bearer ***"


def test_transient_errors_read_as_retryable(client: openai.OpenAI) -> None:
    answer = chat(client, "Cluster terminated: DRIVER_UNREACHABLE, the instance was unreachable")
    rca = RootCause.model_validate_json(answer.choices[0].message.content)
    assert (rca.category, rca.retryable) == ("transient", True)


def test_parse_helper_with_a_pydantic_format(client: openai.OpenAI) -> None:
    class Small(BaseModel):
        summary: str
        retryable: bool

    parsed = client.chat.completions.parse(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}],
        response_format=Small)
    assert parsed.choices[0].message.parsed == Small(
        summary="The run failed with UserErrorSourceBlobNotExist.", retryable=False)


def test_responses_api(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o-mini", instructions="Analyse.", input=PROMPT,
        text={"format": {"type": "json_schema", "name": "root_cause", "strict": True,
                         "schema": strict_schema()}})
    rca = RootCause.model_validate_json(response.output_text)
    assert rca.category == "data"


def test_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]


def test_scripted_malformed_and_schema_violation(client: openai.OpenAI,
                                                 sandbox: Sandbox) -> None:
    sandbox.script("openai", "openai.chat", body={"content": '{"summary": "cut'})
    sandbox.script("openai", "openai.chat", body={"content": '{"summary": 1}'})
    malformed = chat(client).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed)
    with pytest.raises(ValidationError):
        RootCause.model_validate_json(chat(client).choices[0].message.content)
    RootCause.model_validate_json(chat(client).choices[0].message.content)


def test_scripted_429_and_500(client: openai.OpenAI, sandbox: Sandbox) -> None:
    sandbox.script("openai", "openai.chat", status=429, retry_after=3)
    sandbox.script("openai", "openai.responses", status=500)
    with pytest.raises(openai.RateLimitError) as limited:
        chat(client)
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="gpt-4o-mini", input="x")


def test_scripted_hang_times_out_without_blocking_others(client: openai.OpenAI,
                                                         sandbox: Sandbox) -> None:
    sandbox.script("openai", "openai.chat", hang=30)
    fast = openai.OpenAI(base_url=sandbox.openai_url, api_key="sk-test", timeout=0.5,
                         max_retries=0)
    with pytest.raises(openai.APITimeoutError):
        chat(fast)
    assert next(m.id for m in client.models.list()) == "gpt-4o-mini"
    RootCause.model_validate_json(chat(client).choices[0].message.content)
    hung = [c for c in sandbox.calls("openai") if c["path"] == "/v1/chat/completions"]
    assert [c["status"] for c in hung] == [None, 200]


def test_the_log_keeps_full_bodies_and_no_key(client: openai.OpenAI, sandbox: Sandbox) -> None:
    chat(client)
    logged = repr(sandbox.calls())
    assert "planted-secret-XYZ" in logged  # the body is kept whole: the product must redact
    assert "sk-test" not in logged
