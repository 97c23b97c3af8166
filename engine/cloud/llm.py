"""The LLM client of the root-cause analysis (engine/analysis), in the cloud-SDK layer.

:class:`LlmClient` wraps the openai SDK for OpenAI, Azure OpenAI or any OpenAI-compatible
server, with the configured timeout and retries, and turns every failure into
:class:`LlmFailure` with a short reason.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from engine.config import LlmSettings
from engine.errors import ActionError

if TYPE_CHECKING:
    import openai

__all__ = ["LlmClient", "LlmFailure"]


class LlmFailure(ActionError):
    """The LLM gave no usable answer; ``reason`` is short and carries no secret
    (``timed out after 2 s``, ``429 rate limited``, ``malformed JSON``...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LlmClient:
    """One OpenAI-compatible client built from ``[llm]``; thread-safe (the SDK's is).

    :meth:`complete` returns the answer as a JSON object (not yet checked against the
    schema: the caller does that) or raises :class:`LlmFailure`.
    """

    def __init__(self, cfg: LlmSettings) -> None:
        # Imported here: the SDK takes seconds to import on a busy machine, and only a
        # configured LLM needs it (the offline commands must not load it).
        import openai

        self.cfg = cfg
        key = cfg.api_key.reveal() if cfg.api_key else "unused"
        common: dict[str, Any] = {"api_key": key, "timeout": cfg.timeout,
                                  "max_retries": cfg.max_retries}
        if cfg.provider == "azure":
            self._client: openai.OpenAI = openai.AzureOpenAI(
                azure_endpoint=cfg.base_url, api_version=cfg.api_version,
                azure_deployment=cfg.deployment, **common)
        else:
            self._client = openai.OpenAI(base_url=cfg.base_url or None, **common)

    @property
    def model(self) -> str:
        """The model (or Azure deployment) asked."""
        return self.cfg.deployment or self.cfg.model

    def complete(self, system: str, user: str, schema: dict[str, Any]) -> dict[str, Any]:
        """Ask for a JSON object valid for ``schema`` (strict structured output)."""
        import openai  # already loaded by __init__

        try:
            answer = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system},
                          {"role": "user", "content": user}],
                response_format={"type": "json_schema", "json_schema": {
                    "name": "root_cause_analysis", "strict": True, "schema": schema}},
                temperature=0,
            )
        except openai.APITimeoutError as exc:
            raise LlmFailure(f"timed out after {self.cfg.timeout:g} s") from exc
        except openai.APIConnectionError as exc:
            raise LlmFailure("connection failed") from exc
        except openai.RateLimitError as exc:
            raise LlmFailure("429 rate limited") from exc
        except openai.APIStatusError as exc:
            raise LlmFailure(f"{exc.status_code} {_error_code(exc)}".strip()) from exc
        except openai.OpenAIError as exc:  # answers the SDK cannot read
            raise LlmFailure(f"unusable answer ({type(exc).__name__})") from exc
        if not answer.choices:
            raise LlmFailure("no choices in the answer")
        message = answer.choices[0].message
        if message.refusal:
            raise LlmFailure("the model refused")
        try:
            data = json.loads(message.content or "")
        except ValueError as exc:
            raise LlmFailure("malformed JSON") from exc
        if not isinstance(data, dict):
            raise LlmFailure("schema violation: the answer is not an object")
        return data

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    code = body.get("code") or (body.get("error") or {}).get("code") if body else None
    return str(code) if isinstance(code, str) and code.isidentifier() else "error"
