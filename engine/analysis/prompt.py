"""The prompt of the root-cause analysis: built from redacted parts, redacted once more whole.

It holds the enriched event (no raw payload), the head of the error trace, the history of the
same fingerprint (how often it failed before, what was tried and with what outcome) and the
actions a suggested rule may use. Nothing else leaves the process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from engine.actions.base import ActionSpec
from engine.events import ErrorEvent
from engine.text.redact import redact, redact_text

__all__ = ["SYSTEM", "Prompt", "Tried", "build_prompt"]

TRACE_LINES = 40
TRACE_CHARS = 4000

SYSTEM = (
    "You analyse failures of Azure Data Factory, Synapse, Azure Functions and Databricks "
    "workloads for an on-call data engineer. Answer in the JSON schema given. Quote evidence "
    "exactly as it appears in the input. category is one of the schema's values; retryable "
    "says whether a plain rerun is likely to succeed; confidence is 0..1. suggested_rule is "
    "null or ONE playbook rule in YAML: a mapping with id, description, match (source, "
    "error_code, message: {regex|contains: ...}, attributes paths) and actions (a list of "
    "{action: NAME, with: {...}}) using only the actions listed. Secrets were replaced by ***."
)


class Tried(msgspec.Struct, frozen=True, kw_only=True):
    """An earlier incident of the same fingerprint and the actions taken in it."""

    incident_id: str
    state: str
    reason: str
    opened_ms: int
    actions: list[str] = msgspec.field(default_factory=list)


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """The two messages sent; ``user`` is what evidence quotes are checked against."""

    system: str
    user: str

    def text(self) -> str:
        """Both messages, as ``--show-prompt`` prints them."""
        return f"[system]\n{self.system}\n\n[user]\n{self.user}"


def _trace_head(message: str) -> str:
    lines = redact_text(message).splitlines()[:TRACE_LINES]
    head = "\n".join(lines)
    return head if len(head) <= TRACE_CHARS else head[:TRACE_CHARS] + "\n[... cut]"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if ms else "?"


def build_prompt(event: ErrorEvent, history: Sequence[Tried],
                 actions: Mapping[str, ActionSpec]) -> Prompt:
    """The redacted prompt for ``event`` with its ``history`` (newest first)."""
    facts = {
        "source": event.source, "kind": event.kind, "resource": event.resource,
        "resource_id": event.resource_id, "run_id": event.run_id,
        "error_code": event.error_code, "error_codes": list(event.error_codes),
        "failure_type": event.failure_type, "severity": event.severity,
        "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
        "attributes": redact(event.attributes),
    }
    lines = ["Failure event:", json.dumps(redact(facts), indent=1, default=str), "",
             "Error trace (head):", _trace_head(event.message) or "(none)", ""]
    if history:
        lines.append(f"History: this failure (fingerprint {event.fingerprint}) was seen "
                     f"{len(history)} time(s) before:")
        for item in history:
            tried = "; ".join(item.actions) or "nothing was tried"
            lines.append(f"- {_when(item.opened_ms)} incident {item.incident_id}: "
                         f"{item.state} ({item.reason or 'no reason'}); tried: {tried}")
    else:
        lines.append(f"History: first time this failure (fingerprint {event.fingerprint}) "
                     "is seen.")
    lines += ["", "Actions a suggested rule may use:"]
    lines += [f"- {name}: {spec.description}" for name, spec in sorted(actions.items())]
    return Prompt(system=SYSTEM, user=redact_text("\n".join(lines)))
