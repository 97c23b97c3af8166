"""What the playbooks would do with a raw sender payload: one function for
``remediator simulate --json`` and ``POST /api/simulate``.

It parses with the receivers' own parsers and explains with the engine's own matcher and
renderer, so what it says is what the server would do. It touches no database and no cloud.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from engine import silences as silence_policy
from engine.clock import to_ms
from engine.errors import PayloadError
from engine.events import ErrorEvent, utcnow
from engine.rules.durations import format_duration
from engine.rules.load import PAYLOAD_SOURCES
from engine.rules.ruleset import CompiledRule, PlaybookSet
from engine.rules.templates import PlannedAction, RenderError, render_actions
from engine.runtime.pipeline import target_of
from engine.store.silences import SilenceRow
from receivers import azure_monitor, databricks, intake

__all__ = ["MAX_SIMULATED", "first_events", "parse_payload", "simulate_event", "simulate_payload"]

# Which receiver endpoint a payload of each source arrives on.
_AZURE_ENDPOINTS = {
    "adf": "azure-monitor",
    "synapse": "synapse-monitor",
    "functions": "azure-functions-monitor",
}


def _is_cluster_events_page(data: Any) -> bool:
    """A page of ``POST /api/2.1/clusters/events``: an object whose ``events`` is a list of
    cluster events (objects with ``cluster_id``), without the ``event``/``event_type`` of a
    webhook body."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("events"), list)
        and "event" not in data
        and "event_type" not in data
        and all(isinstance(e, dict) and "cluster_id" in e for e in data["events"])
    )


def _parse_databricks(body: bytes) -> list[ErrorEvent]:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return databricks.parse(body)  # raises the receiver's own MalformedPayload
    if _is_cluster_events_page(data):
        return databricks.parse_cluster_events_page(data)
    return databricks.parse(data)


def _refuse_deep(body: bytes) -> None:
    """Refuse a payload nested deeper than the receivers take (:func:`intake.check_depth`,
    which they apply before parsing), as they do; a body that does not decode is left to the
    parser, which says why."""
    if body.count(b"{") + body.count(b"[") <= intake.MAX_DEPTH:
        return
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return
    intake.check_depth(body, value)


def parse_payload(source: str, body: bytes) -> list[ErrorEvent]:
    """Parse a raw sender payload as the receiver of ``source`` would (PayloadError if not).

    The one mapping of sources to parsers, for ``remediator test``/``simulate`` and the API.
    A ``databricks`` payload is a webhook body or a page of clusters/events, as the
    cluster-events poller fetches it.
    """
    _refuse_deep(body)
    if source == "databricks":
        return _parse_databricks(body)
    if source in _AZURE_ENDPOINTS:
        return azure_monitor.parse(body, _AZURE_ENDPOINTS[source])
    raise PayloadError(f"unknown source {source!r}; expected one of {', '.join(PAYLOAD_SOURCES)}")


def _guards(rule: CompiledRule) -> dict[str, Any]:
    spec = rule.rule
    return {
        "mode": "dry-run (rule)" if spec.dry_run else "live only with --live (dry-run by default)",
        "approval": spec.approval,
        "budget": None if spec.budget is None else {
            "max_attempts": spec.budget.max_attempts,
            "window": spec.budget.window,
            "per": spec.budget.per,
        },
        "cooldown": spec.cooldown,
        "verify": None if spec.verify is None else {
            "timeout": spec.verify.timeout, "interval": spec.verify.interval
        },
    }


def _action_view(action: PlannedAction) -> dict[str, Any]:
    return {
        "action": action.action,
        "ref": action.ref,
        "params": action.args,
        "delay": format_duration(action.delay_s) if action.delay_s else None,
        "mutating": action.mutating,
    }


def _policies(playbooks: PlaybookSet, event: ErrorEvent, matched: list[Any],
              silences: Sequence[SilenceRow], now_ms: int | None) -> dict[str, Any]:
    """The policies that would apply to the remediation: approval (a matched rule's or a
    playbook policy's) and the active silences that would hold it."""
    required, why = playbooks.approval(event, matched)
    now_ms = to_ms(utcnow()) if now_ms is None else now_ms
    held = silence_policy.holding(silences, event, target_of(event), now_ms=now_ms)
    return {"approval": {"required": bool(matched) and required, "reason": why,
                         "policies": [p.id for p in playbooks.approval_policies(event)]},
            "silenced_by": [silence_policy.view(row, now_ms) for row in held]}


def simulate_event(playbooks: PlaybookSet, event: ErrorEvent, attempts: int,
                   silences: Sequence[SilenceRow] = (), now_ms: int | None = None,
                   ) -> dict[str, Any]:
    """What the engine would do with ``event``: the rules tried, the rendered plan, and the
    policies (approval, and which of ``silences`` would hold it at ``now_ms``, default
    now)."""
    explanation = playbooks.explain(event)
    plans = []
    for m in explanation.matched:
        plan: dict[str, Any] = {"rule": m.rule.id, "guards": _guards(m.rule), "error": None}
        try:
            plan["actions"] = [
                _action_view(a) for a in render_actions(m, event, attempts=attempts)
            ]
            plan["on_failure"] = [
                _action_view(a)
                for a in render_actions(m, event, attempts=attempts, steps="on_failure")
            ]
        except RenderError as exc:
            plan["actions"], plan["on_failure"], plan["error"] = [], [], str(exc)
        plans.append(plan)
    return {
        "event": msgspec.to_builtins(event),
        "rules": [
            {
                "id": t.rule_id,
                "where": t.where,
                "matched": t.matched,
                "reason": t.reason,
                "groups": t.groups,
            }
            for t in explanation.tried
        ],
        "matched": explanation.rule_ids,
        "plan": plans,
        "remediated": event.status == "firing",
        **_policies(playbooks, event, explanation.matched, silences, now_ms),
    }


MAX_SIMULATED = 100
"""Events of one payload that are simulated: a page of cluster events may hold thousands, each
explained against every rule (6,000 made a 90 MB answer); the rest are counted."""


def simulate_payload(
    playbooks: PlaybookSet, source: str, body: bytes, attempts: int = 0,
    silences: Sequence[SilenceRow] = (), now_ms: int | None = None,
) -> dict[str, Any]:
    """``{"events": [...], "left_out": N}``: :func:`simulate_event` for each event the payload
    parses into, the first :data:`MAX_SIMULATED` of them (``left_out`` counts the others).
    Raises PayloadError when it does not parse."""
    events, left_out = first_events(parse_payload(source, body))
    return {"events": [simulate_event(playbooks, event, attempts, silences, now_ms)
                       for event in events],
            "left_out": left_out}


def first_events(events: list[ErrorEvent]) -> tuple[list[ErrorEvent], int]:
    """The first :data:`MAX_SIMULATED` of ``events`` and how many are left out."""
    return events[:MAX_SIMULATED], max(0, len(events) - MAX_SIMULATED)
