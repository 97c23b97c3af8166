"""An OpenAI-compatible API: chat completions, the Responses API and the model list.

By default the answer is a valid JSON object for the requested ``json_schema`` (chat
``response_format`` or Responses ``text.format``), generated from the schema and filled from the
prompt so that a root-cause analysis reads plausibly (summary, probable_cause, category,
retryable, confidence, evidence, next_steps, suggested_rule). Operation names: openai.chat,
openai.responses, openai.models. A script ``body`` of the form ``{"content": "..."}`` replaces
only the assistant's text (malformed JSON, schema violations); any other body replaces the whole
answer. The call log keeps every request body in full.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from sandbox._http import Emulator, Fault, Request, Response, Route

__all__ = ["OpenAIEmulator", "generate"]

_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
_TRANSIENT = re.compile(
    r"timeout|timed out|throttl|429|503|unavailable|unreachable|temporar|transient|"
    r"too many requests|connection reset|driver_unreachable|instance_unreachable",
    re.IGNORECASE,
)
_CODE = re.compile(
    r"ErrorCode=(\w+)|\[([A-Z][A-Z_]{3,})\]|\b([A-Z][A-Z]+(?:_[A-Z]+)+)\b|\b(\w+Exception)\b"
)


class _Facts:
    """What the generator takes from the prompt."""

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        found = _CODE.search(prompt)
        self.code = next((g for g in found.groups() if g), "UnknownError") if found else (
            "UnknownError")
        self.retryable = bool(_TRANSIENT.search(prompt))
        lines = [ln.strip() for ln in prompt.splitlines() if ln.strip()]
        self.evidence = [ln[:200] for ln in lines
                         if re.search(r"error|fail|exception|missing|not found", ln, re.I)][:3]
        if not self.evidence:
            self.evidence = [lines[0][:200]] if lines else ["no error text in the prompt"]

    def text(self, name: str) -> str:
        lowered = name.lower()
        if "summary" in lowered or "title" in lowered:
            return f"The run failed with {self.code}."
        if "cause" in lowered:
            kind = "a transient platform fault" if self.retryable else "a data or code problem"
            return f"{self.code}: most likely {kind}, as the error text shows."
        if "step" in lowered or "action" in lowered or "remed" in lowered:
            return ("Rerun the failed step once the platform recovers." if self.retryable
                    else f"Fix the cause of {self.code}, then rerun from the failed activity.")
        if "rule" in lowered or "match" in lowered:
            return f"error_code == '{self.code}'"
        if "evidence" in lowered:
            return self.evidence[0]
        if "category" in lowered:
            return "transient" if self.retryable else "data"
        return f"{name.replace('_', ' ')} for {self.code}"


def generate(schema: dict[str, Any], prompt: str) -> Any:
    """A value valid for ``schema`` (the subset OpenAI structured outputs accept)."""
    return _value(schema, "answer", _Facts(prompt), schema)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        target: Any = root
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _value(schema: dict[str, Any], name: str, facts: _Facts, root: dict[str, Any]) -> Any:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return _pick(schema["enum"], facts)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_resolve(o, root) for o in schema[key]]
            usable = [o for o in options if o.get("type") != "null"] or options
            return _value(usable[0], name, facts, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {key: _value(sub, key, facts, root) for key, sub in props.items()}
    if kind == "array":
        items = schema.get("items", {"type": "string"})
        count = max(int(schema.get("minItems", 0)), min(2, int(schema.get("maxItems", 2))))
        if name.lower() == "evidence" and _resolve(items, root).get("type") == "string":
            return (facts.evidence * count)[:count]
        return [_value(items, f"{name}_{i}", facts, root) for i in range(count)]
    if kind == "boolean":
        return facts.retryable if "retr" in name.lower() or "transient" in name.lower() else False
    if kind in {"number", "integer"}:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1 if kind == "number" else 10))
        middle = low + (high - low) * 0.72
        return int(middle) if kind == "integer" else round(middle, 2)
    if kind == "null":
        return None
    text = facts.text(name)
    text = text[: schema.get("maxLength", len(text))]
    return text.ljust(int(schema.get("minLength", 0)), ".")


def _pick(options: list[Any], facts: _Facts) -> Any:
    """The enum value the prompt points at (transient vs. data), else the first."""
    wanted = ("transient", "platform", "infra", "throttl", "capacity") if facts.retryable else (
        "data", "source", "missing", "user", "code")
    for option in options:
        if isinstance(option, str) and any(w in option.lower() for w in wanted):
            return option
    return options[0]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return ""


def _messages_text(messages: list[dict[str, Any]]) -> str:
    """The users' text (the incident), falling back to every message when there is none."""
    usable = [m for m in messages if isinstance(m, dict)]
    users = [m for m in usable if m.get("role") == "user"] or usable
    return "\n".join(_text_of(m.get("content")) for m in users)


class OpenAIEmulator(Emulator):
    """Chat completions and Responses, answering schema-valid root-cause analyses."""

    service = "openai"

    def new_state(self) -> dict[str, int]:
        return {"answers": 0}

    def error(self, status: int, code: str, message: str) -> Response:
        kind = {400: "invalid_request_error", 401: "invalid_request_error",
                404: "invalid_request_error", 429: "requests"}.get(status, "server_error")
        return Response(status, {"error": {"message": message, "type": kind, "param": None,
                                           "code": code}})

    def scripted_error(self, fault: Fault) -> Response:
        if fault.body is not None:
            return Response(fault.status or 500, fault.body)
        status = fault.status or 500
        if status == 429:
            return self.error(429, "rate_limit_exceeded",
                              "Rate limit reached for requests. Please try again later.")
        if status >= 500:
            return self.error(status, "server_error", "The server had an error while processing "
                              "your request. Sorry about that!")
        return self.error(status, "invalid_request", f"Scripted failure {status}")

    def scripted_body(self, fault: Fault, request: Request, route: Route) -> Response:
        body = fault.body or {}
        if set(body) != {"content"}:
            return Response(200, body)
        text = str(body["content"])
        model = request.json_body().get("model", _MODELS[0])
        if route.operation == "openai.responses":
            return Response(200, self._response_object(model, text))
        return Response(200, self._chat_object(model, text))

    def routes(self) -> list[tuple[str, str, str, Any]]:
        return [
            ("POST", r"/v1/chat/completions", "openai.chat", self._chat),
            ("POST", r"/v1/responses", "openai.responses", self._responses),
            ("GET", r"/v1/models", "openai.models", self._models),
        ]

    def _answer(self, schema: dict[str, Any] | None, json_mode: bool, prompt: str) -> str:
        self.state["answers"] += 1
        if schema is not None:
            return json.dumps(generate(schema, prompt))
        facts = _Facts(prompt)
        if json_mode:
            return json.dumps({"summary": facts.text("summary"),
                               "probable_cause": facts.text("probable_cause"),
                               "retryable": facts.retryable})
        return f"{facts.text('summary')} {facts.text('probable_cause')}"

    def _chat(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(400, "invalid_value",
                              "Invalid 'messages': empty array. Expected an array with minimum "
                              "length 1, but got an empty array instead.")
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == (
            "json_schema") else None
        text = self._answer(schema, fmt.get("type") == "json_object", _messages_text(messages))
        return Response(200, self._chat_object(body.get("model", _MODELS[0]), text))

    def _responses(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        raw = body.get("input")
        prompt = raw if isinstance(raw, str) else _messages_text(raw or [])
        prompt = prompt or str(body.get("instructions") or "")
        fmt = (body.get("text") or {}).get("format") or {}
        schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
        text = self._answer(schema, fmt.get("type") == "json_object", prompt)
        return Response(200, self._response_object(body.get("model", _MODELS[0]), text))

    def _models(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
            for m in _MODELS]})

    @staticmethod
    def _chat_object(model: str, text: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_sandbox",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None,
                            "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": 100, "completion_tokens": len(text) // 4 + 1,
                      "total_tokens": 101 + len(text) // 4},
        }

    @staticmethod
    def _response_object(model: str, text: str) -> dict[str, Any]:
        return {
            "id": f"resp_{uuid.uuid4().hex}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "model": model,
            "output": [{
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "temperature": 1.0,
            "top_p": 1.0,
            "metadata": {},
            "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": len(text) // 4 + 1,
                      "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": 101 + len(text) // 4},
        }
