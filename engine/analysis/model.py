"""What a root-cause analysis says, and the JSON Schema the LLM must answer in.

:class:`Analysis` is what the worker records (``msgspec.to_builtins``); :class:`LlmAnswer` is the
part the LLM writes, checked strictly (unknown fields, wrong types and an out-of-range
confidence are schema violations). :data:`ANSWER_SCHEMA` is the same shape as a strict
``json_schema`` response format.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = ["ANSWER_SCHEMA", "CATEGORIES", "Analysis", "Category", "Engine", "LlmAnswer"]

Category = Literal["data_not_landed", "permissions", "capacity", "transient_infra", "throttling",
                   "code_or_data_bug", "configuration", "dependency", "unknown"]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
Engine = Literal["llm", "offline", "cache"]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class LlmAnswer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The LLM's answer; ``suggested_rule`` is one playbook rule in YAML, or null."""

    summary: str
    probable_cause: str
    category: Category
    retryable: bool
    confidence: Confidence
    evidence: list[str]
    next_steps: list[str]
    suggested_rule: str | None


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    """One analysis of one failure; ``engine`` says who produced it (``cache``: an earlier
    LLM analysis of the same fingerprint) and ``notes`` why (fallbacks, dropped parts)."""

    summary: str
    probable_cause: str
    category: Category
    retryable: bool
    confidence: float
    evidence: list[str]
    next_steps: list[str]
    suggested_rule: str | None = None
    engine: Engine
    model: str = ""
    fingerprint: str = ""
    notes: list[str] = msgspec.field(default_factory=list)


def _string_list(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "probable_cause", "category", "retryable", "confidence", "evidence",
                 "next_steps", "suggested_rule"],
    "properties": {
        "summary": {"type": "string", "description": "One sentence: what failed and why."},
        "probable_cause": {"type": "string"},
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "retryable": {"type": "boolean",
                      "description": "Whether a plain rerun is likely to succeed."},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "evidence": _string_list("Exact quotes from the input that support the cause."),
        "next_steps": _string_list("What an engineer should do, in order."),
        "suggested_rule": {"type": ["string", "null"],
                           "description": "One playbook rule in YAML that would handle this "
                                          "failure next time, or null."},
    },
}
