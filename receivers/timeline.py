"""An incident's audit records as the steps an operator reads: received, enriched, matched
rule X because ..., the guards' decisions, each action planned, started, pre-checked and
finished with its cloud reference, the verification and the outcome.

One step per record, except that consecutive guard decisions make one step ("Guards passed:
circuit, budget, ..."). A step says what happened in a sentence and keeps its records, which
the page shows folded away as they are stored. The rules a match did not try, or that did not
match, are counted in one line, not listed. Pure functions: values are read defensively (a
record is whatever the engine of the day wrote) and every text is cut to a bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

import msgspec

from engine.audit import AuditRecord
from engine.events import ErrorEvent
from receivers.incident_view import one_line
from receivers.run_links import RunLink, Workspace, action_link

__all__ = ["STAGES", "Step", "describe_match", "sentence", "steps"]

STAGES: dict[str, str] = {
    "received": "event", "enriched": "enrichment", "matched": "rule", "no_match": "rule",
    "incident": "incident", "repeat": "incident", "guard": "guards", "breaker": "guards",
    "action_planned": "actions", "action_started": "actions", "action_succeeded": "actions",
    "action_failed": "actions", "action_cancelled": "actions", "precheck": "actions",
    "approval": "approval", "verification": "verification", "rca": "RCA",
    "resolution": "outcome", "escalation": "outcome", "notification": "notification",
    "parked": "event", "replayed": "event", "acknowledged": "on-call", "assignment": "on-call",
    "note": "on-call", "rerun": "on-call",
}
"""The timeline stage each audit kind belongs to."""

_LIMIT = 400
"""The characters of one value shown in a sentence."""
_LISTED = 3
"""The reasons of rules that did not match shown before "and N more"."""


class Step(msgspec.Struct, kw_only=True):
    """One readable step: ``text`` (a sentence), ``details`` (short lines under it),
    ``state`` (the incident state it moved to, for its colour), ``link`` (the cloud run it
    names) and the audit ``records`` it was made from."""

    kind: str
    stage: str
    when: datetime | None
    actor: str
    text: str
    details: list[str] = msgspec.field(default_factory=list)
    state: str = ""
    tone: str = ""
    link: RunLink | None = None
    records: list[AuditRecord] = msgspec.field(default_factory=list)


def _s(value: Any, limit: int = _LIMIT) -> str:
    """A record's value as one line of text ("" for None)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return one_line(value, limit)
    if isinstance(value, bool | int | float):
        return str(value)
    return one_line(msgspec.json.encode(value).decode(), limit)


def _when(ts: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(ts)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _at(ms: Any) -> str:
    """Epoch milliseconds as local ``HH:MM:SS`` (with the date when not today)."""
    if not isinstance(ms, int) or isinstance(ms, bool) or ms <= 0:
        return ""
    try:
        moment = datetime.fromtimestamp(ms / 1000).astimezone()
    except (OverflowError, OSError, ValueError):
        return ""
    today = datetime.now().astimezone().date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M:%S")


def _where(where: Any) -> str:
    """``/path/to/adf.yaml:15`` as ``adf.yaml:15``."""
    return PurePath(_s(where, 300)).name


def describe_match(spec: Any, limit: int = 300) -> str:
    """A rule's ``match:`` in words: ``source = adf, error_code in (A, B), message ~ /re/``."""
    text = _describe(spec, 0)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(spec: Any, depth: int) -> str:
    if depth > 6:
        return "…"
    if not isinstance(spec, dict):
        return _s(spec, 80)
    parts = []
    for key, value in list(spec.items())[:12]:
        if key in ("all", "any") and isinstance(value, list):
            inner = "; ".join(_describe(v, depth + 1) for v in value[:8])
            parts.append(f"{key} of ({inner})")
        elif key == "not":
            parts.append(f"not ({_describe(value, depth + 1)})")
        else:
            parts.append(_condition(str(key), value, depth))
    return ", ".join(parts)


_OPERATORS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


def _condition(name: str, value: Any, depth: int) -> str:
    if isinstance(value, list):
        return f"{name} in ({', '.join(_s(v, 60) for v in value[:8])})"
    if not isinstance(value, dict):
        return f"{name} = {_s(value, 80)}"
    parts = []
    for op, arg in list(value.items())[:6]:
        if op == "regex":
            parts.append(f"{name} ~ /{_s(arg, 80)}/")
        elif op == "glob":
            parts.append(f"{name} like {_s(arg, 80)}")
        elif op == "contains":
            parts.append(f"{name} contains {_s(arg, 80)}")
        elif op == "exists":
            parts.append(f"{name} {'exists' if arg else 'is absent'}")
        elif op in _OPERATORS:
            parts.append(f"{name} {_OPERATORS[op]} {_s(arg, 40)}")
        elif op == "not":
            parts.append(f"not ({_condition(name, arg, depth + 1)})")
        else:
            parts.append(f"{name}.{op} = {_s(arg, 60)}")
    return ", ".join(parts)


def _data(record: AuditRecord) -> dict[str, Any]:
    return record.data if isinstance(record.data, dict) else {}


def _received(d: dict[str, Any], step: Step) -> None:
    what = f"{_s(d.get('source'), 40)} {_s(d.get('kind'), 40).replace('_', ' ')}".strip()
    step.text = "Alert received: " + ", ".join(p for p in (what, _s(d.get("status"), 20)) if p)
    facts = [f"error {_s(d.get('error_code'), 120)}" if d.get("error_code") else "",
             f"run {_s(d.get('run_id'), 80)}" if d.get("run_id") else ""]
    if isinstance(d.get("claim"), int) and d["claim"] > 1:
        facts.append(f"claim {d['claim']}")
    step.details = [", ".join(f for f in facts if f)] if any(facts) else []


def _enriched(d: dict[str, Any], step: Step) -> None:
    code = _s(d.get("error_code"), 120)
    step.text = f"Enriched from the cloud: error {code}" if code else "Enriched from the cloud"
    if isinstance(d.get("events"), int) and d["events"] > 1:
        step.text += f" (the alert names {d['events']} failed runs)"
    if d.get("message"):
        step.details.append(_s(d.get("message")))
    notes = d.get("notes") if isinstance(d.get("notes"), list) else []
    failed = [n for n in notes if isinstance(n, dict) and n.get("ok") is False]
    for note in failed[:_LISTED]:
        step.details.append(f"look-up failed: {_s(note.get('call'), 120)} "
                            f"{_s(note.get('detail'), 200)}".rstrip())
    if notes:
        step.details.append(f"{len(notes)} look-ups, {len(failed)} failed")


def _tried(d: dict[str, Any]) -> list[dict[str, Any]]:
    tried = d.get("tried") if isinstance(d.get("tried"), list) else []
    return [t for t in tried if isinstance(t, dict)]


def _others(tried: list[dict[str, Any]]) -> str:
    """The rules that did not match or were not tried, counted in one line."""
    not_tried = sum(1 for t in tried if not t.get("matched")
                    and str(t.get("reason") or "").startswith("not tried"))
    disabled = sum(1 for t in tried if t.get("reason") == "disabled")
    missed = sum(1 for t in tried if not t.get("matched")) - not_tried - disabled
    parts = [f"{missed} did not match" if missed else "",
             f"{not_tried} not tried (the first match wins)" if not_tried else "",
             f"{disabled} disabled" if disabled else ""]
    counted = ", ".join(p for p in parts if p)
    return f"Other rules: {counted}." if counted else ""


def _matched(d: dict[str, Any], step: Step, because: Mapping[str, str]) -> None:
    tried = _tried(d)
    hits = [t for t in tried if t.get("matched")]
    listed = d.get("rules") if isinstance(d.get("rules"), list) else []
    rules = [_s(r, 120) for r in listed if isinstance(r, str)] or [
        _s(t.get("rule"), 120) for t in hits]
    first = rules[0] if rules else "?"
    hit = next((t for t in hits if t.get("rule") == first), {})
    where = f" ({_where(hit.get('where'))})" if hit.get("where") else ""
    why = because.get(first)
    step.text = f"Matched rule {first}{where}" + (f" because {why}" if why else "")
    if len(rules) > 1:
        step.details.append(f"then (continue): {', '.join(rules[1:6])}")
    groups = hit.get("groups") if isinstance(hit.get("groups"), dict) else {}
    if groups:
        captured = ", ".join(f"{_s(k, 40)}={_s(v, 80)}" for k, v in list(groups.items())[:6])
        step.details.append(f"captured: {captured}")
    others = _others(tried)
    if others:
        step.details.append(others)


def _no_match(d: dict[str, Any], step: Step) -> None:
    tried = _tried(d)
    step.text = f"No rule matched ({len(tried)} tried): a person looks at it"
    missed = [t for t in tried if not t.get("matched") and t.get("reason") != "disabled"]
    for t in missed[:_LISTED]:
        step.details.append(f"{_s(t.get('rule'), 120)}: {_s(t.get('reason'), 200)}")
    if len(missed) > _LISTED:
        step.details.append(f"and {len(missed) - _LISTED} more rules that did not match")


def _guards(records: list[AuditRecord], step: Step) -> None:
    passed, blocked = [], []
    for record in records:
        d = _data(record)
        name, decision = _s(d.get("name"), 40), _s(d.get("decision"), 40)
        if decision == "allow":
            passed.append(name)
            if name == "budget" and d.get("reason"):
                step.details.append(f"budget: {_s(d.get('reason'))}")
        else:
            blocked.append(f"{name} → {decision}")
            step.details.append(f"{name}: {_s(d.get('reason'))}")
            if decision in ("escalate", "ignore"):
                step.state = "escalated" if decision == "escalate" else "ignored"
                step.tone = "bad"
    said = []
    if passed:
        said.append(f"passed: {', '.join(passed)}")
    if blocked:
        said.append(f"decided: {', '.join(blocked)}")
    step.text = "Guards " + "; ".join(said) if said else "Guards"


def _planned(d: dict[str, Any], step: Step, at_ms: int) -> None:
    description = _s(d.get("description"))
    for prefix in ("would do: ", "would "):
        if description.startswith(prefix):
            description = description[len(prefix):]
            break
    on_failure = d.get("phase") == "on_failure"
    step.text = ("On failure, planned: " if on_failure else "Planned: ") + description
    state = d.get("state")
    if d.get("dry_run"):
        step.details.append("dry-run: it would be done; nothing is called")
    elif state == "waiting_approval":
        step.details.append("waits for an approval")
        step.state = "waiting_approval"
    elif isinstance(d.get("due"), int) and d["due"] > at_ms + 1000:
        step.details.append(f"due at {_at(d['due'])}")
    if isinstance(d.get("attempt"), int) and d["attempt"] > 1:
        step.details.append(f"attempt {d['attempt']}")


def _precheck(d: dict[str, Any], step: Step) -> None:
    dry = " (dry-run)" if d.get("dry_run") else ""
    decision = d.get("decision")
    if decision == "act":
        step.text = f"Pre-check{dry}: still needed: {_s(d.get('reason'))}"
    elif decision == "skip":
        step.text = f"Pre-check{dry}: not needed any more: {_s(d.get('reason'))}"
        step.tone = "muted"
    else:
        step.text = f"Pre-check{dry} could not read the target: {_s(d.get('error'))}"
        step.tone = "bad"


def _approval(d: dict[str, Any], step: Step, actor: str) -> None:
    who = _s(d.get("who"), 120) or actor
    decision = d.get("decision")
    if decision == "approved":
        step.text, step.state, step.tone = f"Approved by {who}", "remediating", "ok"
    elif decision == "rejected":
        reason = _s(d.get("reason"))
        step.text = f"Rejected by {who}" + (f": {reason}" if reason else "")
        step.state, step.tone = "ignored", "muted"
    elif decision == "expired":
        step.text, step.state, step.tone = "Approval expired: nobody decided in time", \
            "escalated", "bad"
    else:
        step.text = f"Approval: {_s(decision, 40)}"


def _verification(d: dict[str, Any], step: Step) -> None:
    state = d.get("state")
    if state == "running":
        step.text, step.state = "Verifying: the probe follows what the actions started", \
            "verifying"
    elif state == "succeeded":
        step.text, step.tone = f"Verified: {_s(d.get('detail'))}".rstrip(": "), "ok"
    elif state == "failed":
        why = _s(d.get("reason") or d.get("detail"))
        step.text, step.tone = f"Verification failed: {why}".rstrip(": "), "bad"
    else:
        step.text = f"Verification: {_s(state, 40)} {_s(d.get('detail'))}".rstrip()


def _rca(d: dict[str, Any], step: Step) -> None:
    analysis = d.get("analysis") if isinstance(d.get("analysis"), dict) else {}
    step.text = f"Root-cause analysis: {_s(analysis.get('summary')) or 'no summary'}"
    facts = [f"{k}: {_s(analysis.get(k), 80)}" for k in ("category", "confidence", "engine")
             if analysis.get(k) not in (None, "")]
    if facts:
        step.details.append("; ".join(facts))
    for key in ("suggestion", "suggested_action", "next_steps"):
        if analysis.get(key):
            step.details.append(_s(analysis.get(key)))
            break


def _outcome(kind: str, d: dict[str, Any], step: Step) -> None:
    if kind == "escalation":
        step.text = f"Escalated: {_s(d.get('reason'))}".rstrip(": ")
        step.state, step.tone = "escalated", "bad"
        return
    state = _s(d.get("state"), 40)
    reason = _s(d.get("reason"))
    words = {"resolved": "Resolved", "ignored": "Closed as ignored", "none": "Resolution",
             "info": "Recorded"}
    step.text = f"{words.get(state, state.capitalize())}: {reason}".rstrip(": ")
    if state in ("resolved", "ignored"):
        step.state, step.tone = state, "ok" if state == "resolved" else "muted"


def _action(kind: str, d: dict[str, Any], step: Step, event: ErrorEvent | None,
            workspaces: Sequence[Workspace]) -> None:
    name = _s(d.get("action"), 80) or "action"
    if kind == "action_started":
        retry = d.get("retry")
        extra = f", retry {retry}" if isinstance(retry, int) and retry > 0 else ""
        step.text = f"Started {name} (attempt {_s(d.get('attempt'), 10) or 1}{extra})"
    elif kind == "action_succeeded":
        detail = _s(d.get("detail"))
        step.text = f"{name} succeeded: {detail}".rstrip(": ")
        step.tone = "ok"
        if d.get("reconciled"):
            step.details.append("found done in the cloud (an earlier try reached it)")
        if d.get("verify"):
            step.details.append("verification follows")
        ref = d.get("ref")
        if isinstance(ref, dict):
            step.link = action_link(event, ref, workspaces)
    elif kind == "action_failed":
        step.text, step.tone = f"{name} failed: {_s(d.get('error'))}".rstrip(": "), "bad"
        if isinstance(d.get("retry"), int):
            limit = _s(d.get("retry_limit"), 10)
            step.details.append(f"retry {d['retry']}" + (f" of {limit}" if limit else "")
                                + (f" at {_at(d.get('retry_at'))}" if d.get("retry_at")
                                   else ""))
    else:  # action_cancelled
        step.text = f"Cancelled {name}: {_s(d.get('reason'))}".rstrip(": ")
        step.tone = "muted"


def _other(kind: str, d: dict[str, Any], step: Step, actor: str) -> None:
    if kind == "incident":
        target = _s(d.get("target"), 200)
        if d.get("created"):
            step.text, step.state = f"Opened the incident on {target}", "open"
        else:
            step.text = f"Joined the incident on {target} ({_s(d.get('state'), 40)})"
    elif kind == "repeat":
        step.text = (f"A repeat of a failure already escalated ({_s(d.get('events'), 10)} "
                     "events): recorded, not analysed again")
    elif kind == "notification":
        outcome = d.get("outcome")
        state = _s(d.get("state"), 40)
        step.text = (f"Announced the state {state} to the channels" if outcome == "sent"
                     else f"Announcing the state {state} failed: {_s(d.get('error'))}")
        step.tone = "" if outcome == "sent" else "bad"
    elif kind == "breaker":
        rule, target = _s(d.get("rule_id"), 120), _s(d.get("target"), 200)
        if d.get("decision") == "opened":
            step.text = (f"Circuit breaker of {rule} opened on {target} until "
                         f"{_at(d.get('until_ms'))}")
            step.tone = "bad"
        else:
            step.text = f"Circuit breaker of {rule} reset by {_s(d.get('who'), 120) or actor}"
    elif kind == "parked":
        step.text = (f"Parked after {_s(d.get('claims'), 10)} claims: "
                     f"{_s(d.get('reason'))}")
        step.tone = "bad"
    elif kind == "replayed":
        step.text = f"Replayed by {_s(d.get('who'), 120) or actor}"
    elif kind == "silence":
        held = d.get("silence") if isinstance(d.get("silence"), dict) else {}
        what = f"Silence {_s(held.get('id'), 60)} ({_s(held.get('text'), 300)})"
        if d.get("decision") == "created":
            step.text = (f"{what} created by {_s(d.get('who'), 120) or actor}, from "
                         f"{_s(held.get('starts_at'), 40)} until {_s(held.get('ends_at'), 40)}: "
                         f"{_s(held.get('comment'))}")
        else:
            step.text = f"{what} expired early by {_s(d.get('who'), 120) or actor}"
    else:
        facts = ", ".join(f"{_s(k, 40)}: {_s(v, 120)}" for k, v in list(d.items())[:6]
                          if k != "resource")
        step.text = f"{kind.replace('_', ' ').capitalize()}" + (f": {facts}" if facts else "")


def _hand(kind: str, d: Mapping[str, Any], step: Step, actor: str) -> None:
    """An operator's hand (engine/runtime/operators.py), said with who."""
    who = _s(d.get("who"), 120) or actor
    if kind == "acknowledged":
        step.text = f"Acknowledged by {who}"
    elif kind == "assignment":
        assignee = _s(d.get("assignee"), 120)
        step.text = f"Assigned to {assignee} by {who}" if assignee else f"Unassigned by {who}"
    elif kind == "note":
        step.text = f"Note by {who}: {_s(d.get('text'))}"
    elif d.get("decision") == "opened":
        step.text = f"Re-run by {who} as incident {_s(d.get('incident'), 60)}"
    elif d.get("decision") == "rerun_of":
        step.text = f"Opened by {who}: a re-run of incident {_s(d.get('incident'), 60)}"
    else:
        step.text = f"Re-run by {who} refused: {_s(d.get('reason'))}"
        step.tone = "bad"


_BY_DATA: dict[str, Callable[[dict[str, Any], Step], None]] = {
    "received": _received, "enriched": _enriched, "no_match": _no_match, "precheck": _precheck,
    "verification": _verification, "rca": _rca}
"""The kinds whose step is written from the record's data alone."""


def _step(records: list[AuditRecord], because: Mapping[str, str], event: ErrorEvent | None,
          workspaces: Sequence[Workspace]) -> Step:
    first = records[0]
    kind, d = first.kind, _data(first)
    when = _when(first.ts)
    step = Step(kind=kind, stage=STAGES.get(kind, kind), when=when, actor=first.actor,
                text="", records=records)
    at_ms = int(when.timestamp() * 1000) if when else 0
    if kind in _BY_DATA:
        _BY_DATA[kind](d, step)
    elif kind == "matched":
        _matched(d, step, because)
    elif kind == "guard":
        _guards(records, step)
    elif kind == "action_planned":
        _planned(d, step, at_ms)
    elif kind in ("action_started", "action_succeeded", "action_failed", "action_cancelled"):
        _action(kind, d, step, event, workspaces)
    elif kind == "approval":
        _approval(d, step, first.actor)
    elif kind in ("resolution", "escalation"):
        _outcome(kind, d, step)
    elif kind in ("acknowledged", "assignment", "note", "rerun"):
        _hand(kind, d, step, first.actor)
    else:
        _other(kind, d, step, first.actor)
    return step


def steps(records: Sequence[AuditRecord], *, because: Mapping[str, str] | None = None,
          event: ErrorEvent | None = None,
          workspaces: Sequence[Workspace] = ()) -> list[Step]:
    """The readable steps of ``records`` (in ``seq`` order); ``because`` maps a rule id to
    its ``match:`` in words (:func:`describe_match`), ``event`` and ``workspaces`` make the
    links of the runs the actions started."""
    groups: list[list[AuditRecord]] = []
    for record in records:
        if record.kind == "guard" and groups and groups[-1][-1].kind == "guard":
            groups[-1].append(record)
        else:
            groups.append([record])
    return [_step(group, because or {}, event, workspaces) for group in groups]


def sentence(record: AuditRecord) -> str:
    """One record in a sentence (the audit page's summary of it)."""
    return _step([record], {}, None, ()).text
