"""Planning: a rule's actions rendered and stored as rows of one attempt, and a row's action
rendered again when it runs.

Rows keep their parameters redacted (secrets never reach the database), so the runner renders
the row's one action again from its rule, with the named groups the match produced when it
was planned (kept with the incident): the match is not run again.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal

import msgspec

from engine.clock import to_ms
from engine.deps import Deps
from engine.errors import PermanentActionError
from engine.events import ErrorEvent
from engine.rules.match import RuleMatch
from engine.rules.ruleset import CompiledRule
from engine.rules.templates import PlannedAction, RenderError, render_actions, render_step
from engine.store import actions as actions_store
from engine.store.incidents import Incident

__all__ = ["Phase", "dry_run_reason", "event_of", "match_of", "plan_attempt", "render_row"]

Phase = Literal["remediate", "on_failure"]


def event_of(incident: Incident) -> ErrorEvent:
    """The (enriched) event the incident's remediation was planned from."""
    return msgspec.json.decode(incident.event, type=ErrorEvent)


def match_of(incident: Incident, rule: CompiledRule, event: ErrorEvent) -> RuleMatch:
    """The rule's match as it was planned: the groups kept with the incident. An incident
    planned before they were kept (a database from an earlier version) has them found again
    from its event."""
    groups = json.loads(incident.matches or "{}").get(rule.id)
    if groups is None:
        groups = {}
        rule.condition.test(event, groups)
    return RuleMatch(rule, groups)


def _incident_view(incident: Incident) -> dict[str, Any]:
    return {"id": incident.id, "attempts": incident.attempts, "state": incident.state,
            "target": incident.target}


def _steps(phase: str) -> Literal["actions", "on_failure"]:
    return "on_failure" if phase == "on_failure" else "actions"


def render_row(deps: Deps, row: actions_store.ActionRow, event: ErrorEvent,
               incident: Incident) -> PlannedAction:
    """The row's action rendered again from its rule (stored parameters are redacted).

    Raises PermanentActionError when the rule is no longer loaded, no longer has the action,
    or the action no longer renders for this event."""
    rule = deps.playbooks.current.rule(row.rule_id)
    if rule is None:
        raise PermanentActionError(f"{row.reference}: rule {row.rule_id} is no longer loaded")
    try:
        planned = render_step(match_of(incident, rule, event), event, row.index,
                              attempts=row.attempt, incident=_incident_view(incident),
                              steps=_steps(row.phase))
    except RenderError as exc:
        raise PermanentActionError(f"{row.reference}: {exc}") from exc
    if planned is None:
        raise PermanentActionError(f"{row.reference}: the rule no longer has this action")
    return planned


def plan_attempt(
    deps: Deps, incident: Incident, rule_match: RuleMatch, event: ErrorEvent, *, phase: Phase,
    state: str, dry_run: bool, delay_floor_s: int = 0, secondary: bool = False,
) -> list[actions_store.ActionRow]:
    """Render and store the rule's actions (or ``on_failure``) for one attempt.

    ``state`` is ``scheduled``, ``waiting_approval`` or ``dry_run`` (mutating actions only;
    non-mutating ones are scheduled even in dry-run). Each action is audited as planned.
    ``secondary`` marks a rule matched through an earlier rule's ``continue: true``: its rows
    join the incident's attempt under keys of their own (the rule id is part of the key).
    Raises RenderError when an action does not render for this event (nothing is stored).
    """
    rule: CompiledRule = rule_match.rule
    now = deps.now()
    planned = render_actions(rule_match, event, attempts=incident.attempts,
                             incident=_incident_view(incident), steps=_steps(phase))
    new = []
    for index, item in enumerate(planned):
        spec = deps.actions[item.action]
        row_state = "dry_run" if dry_run and item.mutating else state
        if phase == "on_failure" and row_state == "waiting_approval":
            row_state = "scheduled"
        key = f"{spec.key(item.params, event)}|{incident.id}|{phase}|{incident.attempts}"
        if secondary:
            key += f"|{rule.id}"
        delay = max(item.delay_s, delay_floor_s)
        new.append(actions_store.NewAction(
            idem_key=key, incident_id=incident.id, event_id=event.id, rule_id=rule.id,
            reference=item.ref, action=item.action, index=index, phase=phase,
            attempt=incident.attempts, target=incident.target,
            fingerprint=incident.fingerprint, state=row_state, dry_run=row_state == "dry_run",
            mutating=item.mutating, due_ms=to_ms(now + timedelta(seconds=delay)),
            params=item.args, description=spec.describe_call(item.params, event),
            playbook=rule.file, playbook_hash=rule.content_hash,
        ))
    rows = actions_store.plan(deps.db, new, to_ms(now))
    for row, created in rows:
        if created:
            deps.audit("action_planned", {
                "action": row.action, "reference": row.reference, "params": row.params,
                "dry_run": row.dry_run, "state": row.state, "due": row.due_ms,
                "description": ("would do: " if row.dry_run else "") + row.description,
                "playbook": row.playbook, "playbook_hash": row.playbook_hash,
                "attempt": row.attempt, "phase": row.phase,
            }, incident_id=incident.id, event_id=row.event_id, resource=incident.resource)
    return [row for row, _ in rows]


def dry_run_reason(rows: list[actions_store.ActionRow]) -> str:
    """``dry-run: would do: ...`` for the dry-run rows, with a pre-check's verdict if known."""
    parts = []
    for r in rows:
        if r.state != "dry_run":
            continue
        verdict = r.result.get("precheck") if isinstance(r.result, dict) else None
        parts.append(f"would do: {r.description}" + (f" ({verdict})" if verdict else ""))
    return "dry-run: " + "; ".join(parts)
