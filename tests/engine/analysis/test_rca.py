"""The RCA engine against the sandbox's OpenAI emulator, through the real openai client."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from engine.analysis import Analyzer
from engine.analysis.model import ANSWER_SCHEMA
from engine.clock import FakeClock
from engine.store import rca as rca_store
from tests.engine.actions.conftest import adf_event, dbx_task_event
from tests.fixtures.common import assert_wrapped
from tests.reliability.conftest import poll

BLOB = ("Operation on target Copy_RawSales_To_Bronze failed: Failure happened on 'Source' side. "
        "ErrorCode=UserErrorSourceBlobNotExist,'Type=Microsoft.DataTransfer.Common.Shared."
        "HybridDeliveryException,Message=The required Blob is missing. ContainerName: "
        "https://stcontosoraw.blob.core.windows.net/raw, path: sales/2025/03/14/sales.csv.,"
        "Source=Microsoft.DataTransfer.ClientLibrary,'")


def blob_event(**over: Any):
    fields: dict[str, Any] = {"error_code": "UserErrorSourceBlobNotExist",
                              "error_codes": ("2200", "UserErrorSourceBlobNotExist"),
                              "message": BLOB, **over}
    return adf_event(**fields).with_fingerprint()


def answer(**fields: Any) -> dict[str, Any]:
    """A whole, schema-valid answer with ``fields`` replaced, as the assistant's text."""
    body = {"summary": "The source blob had not landed.",
            "probable_cause": "The upstream export was late.", "category": "data_not_landed",
            "retryable": True, "confidence": 0.9,
            "evidence": ["The required Blob is missing."], "next_steps": ["Wait, then rerun."],
            "suggested_rule": None}
    body.update(fields)
    return {"content": json.dumps(body)}


def test_valid_analysis_from_the_llm(analyzer: Analyzer, sandbox: Any) -> None:
    result = analyzer.analyze(blob_event())
    assert result.engine == "llm"
    assert result.model == "gpt-4o-mini"
    assert result.summary == "The run failed with UserErrorSourceBlobNotExist."
    assert result.category == "data_not_landed"
    assert result.retryable is False
    assert result.confidence == 0.72
    assert result.evidence and all(q in analyzer.prompt(blob_event()).user
                                   for q in result.evidence)
    # the emulator's rule text is not YAML of a rule: dropped, and said so
    assert result.suggested_rule is None
    assert result.notes == ["suggested rule dropped: not a rule (expected a YAML mapping)"]
    [call] = sandbox.calls("openai")
    fmt = call["body"]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == ANSWER_SCHEMA
    assert call["body"]["model"] == "gpt-4o-mini"


def _falls_back_to_the_offline_catalog(analyzer: Analyzer, sandbox: Any,
                                       script: dict[str, Any]) -> str:
    """The note that says why the LLM's answer was not used, once the fallback is checked."""
    sandbox.script("openai", "openai.chat", **script)
    result = analyzer.analyze(blob_event())
    assert result.engine == "offline"
    reason, *rest = result.notes
    assert rest == ["matched the catalog entry UserErrorSourceBlobNotExist"]
    assert result.category == "data_not_landed"
    assert result.retryable is True
    assert len(sandbox.calls("openai")) == 1
    # a failure is not cached: the next analysis asks the LLM again
    assert analyzer.analyze(blob_event()).engine == "llm"
    return reason


@pytest.mark.parametrize(("script", "reason"), [
    ({"body": {"content": '{"summary": "cut'}}, "LLM failed: malformed JSON"),
    ({"status": 429}, "LLM failed: 429 rate limited"),
    ({"status": 500}, "LLM failed: 500 server_error"),
    ({"hang": 5}, "LLM failed: timed out after 0.5 s"),
])
def test_llm_failures_fall_back_to_the_offline_catalog(
    analyzer: Analyzer, sandbox: Any, script: dict[str, Any], reason: str
) -> None:
    assert _falls_back_to_the_offline_catalog(analyzer, sandbox, script) == reason


@pytest.mark.parametrize(("script", "mentions"), [
    ({"body": {"content": '{"summary": 1}'}}, ("str", "int", "$.summary")),
    ({"body": answer(confidence=1.5)}, ("1.0", "$.confidence")),
    ({"body": answer(category="bad_luck")}, ("bad_luck", "$.category")),
])
def test_answers_that_break_the_schema_fall_back_to_the_offline_catalog(
    analyzer: Analyzer, sandbox: Any, script: dict[str, Any], mentions: tuple[str, ...]
) -> None:
    reason = _falls_back_to_the_offline_catalog(analyzer, sandbox, script)
    # ours: the kind; then msgspec's reason, naming what broke and where
    assert_wrapped(reason, "LLM failed: schema violation: ", *mentions)


def test_same_fingerprint_reuses_the_analysis_until_the_ttl(
    make_analyzer: Any, sandbox: Any, clock: FakeClock
) -> None:
    analyzer = make_analyzer(cache_ttl=600)
    first = analyzer.analyze(blob_event())
    again = analyzer(blob_event(run_id="another-run"), [])
    assert (first.engine, again["engine"]) == ("llm", "cache")
    assert again["summary"] == first.summary
    assert len(sandbox.calls("openai")) == 1
    assert analyzer.analyze(blob_event(), refresh=True).engine == "llm"
    clock.advance(601)
    assert analyzer.analyze(blob_event()).engine == "llm"
    assert len(sandbox.calls("openai")) == 3


def test_the_hourly_budget_is_kept_in_the_database(
    make_analyzer: Any, sandbox: Any, clock: FakeClock, db: Any
) -> None:
    analyzer = make_analyzer(calls_per_hour=2)
    codes = ["E1", "E2", "E3"]
    results = [analyzer.analyze(blob_event(error_code=c, message=f"{c} failed"))
               for c in codes]
    assert [r.engine for r in results] == ["llm", "llm", "offline"]
    assert results[2].notes[0] == "LLM budget spent (2 calls per hour)"
    assert len(sandbox.calls("openai")) == 2
    # another analyzer over the same database shares the budget
    assert make_analyzer(calls_per_hour=2).analyze(blob_event(error_code="E4")).engine == (
        "offline")
    clock.advance(hours=1)
    assert analyzer.analyze(blob_event(error_code="E5")).engine == "llm"
    from engine.clock import to_ms
    assert rca_store.calls_in_hour(db, now_ms=to_ms(clock.now())) == 1


def test_no_llm_configured_is_offline(make_analyzer: Any, sandbox: Any) -> None:
    result = make_analyzer(llm=False).analyze(blob_event())
    assert result.engine == "offline"
    assert result.notes == ["no LLM is configured ([llm])",
                            "matched the catalog entry UserErrorSourceBlobNotExist"]
    assert result.next_steps == ["wait for the upstream, then retry; ticket if still missing"]
    assert sandbox.calls("openai") == []


def test_offline_requested_never_calls(analyzer: Analyzer, sandbox: Any) -> None:
    assert analyzer.analyze(blob_event(), offline=True).notes[0] == "offline requested"
    assert sandbox.calls("openai") == []


VALID_RULE = """\
id: adf-blob-missing-suggested
description: Wait for the upstream file, then rerun from the failed activity.
match:
  source: adf
  error_code: UserErrorSourceBlobNotExist
actions:
  - action: adf.rerun_pipeline
    with: {start_from_failure: true}
    delay: 15m
"""


def test_a_suggested_rule_that_loads_is_kept(analyzer: Analyzer, sandbox: Any) -> None:
    sandbox.script("openai", "openai.chat", body=answer(suggested_rule=VALID_RULE))
    result = analyzer.analyze(blob_event())
    assert result.suggested_rule == VALID_RULE
    assert result.notes == []
    assert result.evidence == ["The required Blob is missing."]


def test_a_suggested_rule_with_an_unknown_action_is_dropped(analyzer: Analyzer,
                                                            sandbox: Any) -> None:
    bad = VALID_RULE.replace("adf.rerun_pipeline", "adf.reboot_everything")
    sandbox.script("openai", "openai.chat", body=answer(suggested_rule=bad))
    result = analyzer.analyze(blob_event())
    assert result.suggested_rule is None
    assert len(result.notes) == 1
    assert result.notes[0].startswith(
        "suggested rule dropped: suggested_rule:13:16: unknown action `adf.reboot_everything`; "
        "expected one of adf.cancel_run, ")


def test_evidence_not_in_the_input_is_dropped(analyzer: Analyzer, sandbox: Any) -> None:
    sandbox.script("openai", "openai.chat", body=answer(
        evidence=["The required Blob is missing.", "Disk /dev/sda1 is full"]))
    result = analyzer.analyze(blob_event())
    assert result.evidence == ["The required Blob is missing."]
    assert result.notes == ["dropped 1 evidence quote(s) not found in the input"]


def test_history_says_what_was_tried(analyzer: Analyzer) -> None:
    event = dbx_task_event(error_code="RUN_EXECUTION_ERROR").with_fingerprint()
    prompt = analyzer.prompt(event, [{"id": "inc_1", "state": "escalated",
                                      "reason": "no rule matched", "opened_ms": 0}])
    assert ("- ? incident inc_1: escalated (no rule matched); tried: nothing was tried"
            in prompt.user)
    assert "History: this failure (fingerprint " in prompt.user
    assert "- adf.rerun_pipeline: " in prompt.user


def test_azure_openai_calls_the_deployment_with_the_api_version(make_analyzer: Any,
                                                                 sandbox: Any) -> None:
    """The emulator serves only /v1 (no Azure paths): the request shape is what is checked,
    and its 404 falls back like any other HTTP error."""
    analyzer = make_analyzer(provider="azure", base_url=sandbox.openai_url.removesuffix("/v1"),
                             deployment="rca-4o", api_version="2024-10-21")
    result = analyzer.analyze(blob_event())
    assert result.notes[0] == "LLM failed: 404 ENDPOINT_NOT_FOUND"
    [call] = sandbox.calls("openai")
    assert (call["method"], call["path"], call["query"]) == (
        "POST", "/openai/deployments/rca-4o/chat/completions", {"api-version": "2024-10-21"})
    assert call["body"]["model"] == "rca-4o"


def test_one_replica_asks_the_llm_about_a_failure_while_the_others_wait_for_its_answer(
    make_analyzer: Any, sandbox: Any
) -> None:
    """Two replicas meet the same new failure at once (issue 17): the one holding the
    fingerprint's pending row asks; the other asks nothing and says why; the answer is then
    everyone's from the cache."""
    asking, other = make_analyzer(timeout=60), make_analyzer()  # it waits for the hang
    sandbox.script("openai", "openai.chat", hang=30, times=1)
    result: list[Any] = []
    first = threading.Thread(target=lambda: result.append(asking.analyze(blob_event())))
    first.start()
    try:
        poll(lambda: sandbox.calls("openai"), bound_s=30, what="the first question")
        meanwhile = other.analyze(blob_event(run_id="another-run"))
        assert meanwhile.engine == "offline"
        assert meanwhile.notes[0] == ("the LLM is being asked about this failure already "
                                      "(its answer will be cached)")
    finally:
        sandbox.reset()  # the hung question ends (unanswered): the asker falls back
        first.join(timeout=30)
    assert len(sandbox.calls("openai")) == 0  # reset cleared the log; nothing more was asked
    assert result[0].engine == "offline"
    assert other.analyze(blob_event()).engine == "llm"  # the row is free again
