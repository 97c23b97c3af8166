"""What a person does to an incident by hand: acknowledge it, assign it, write a note,
resolve it with a note, re-run its rule. Each is audited with ``who`` (the authenticated
name; receivers/auth.py), and the API, the dashboard and the CLI call these same functions.

- **Acknowledge** ("I am on it") and **assign** are not states: an acknowledged incident is
  still escalated, an assigned one still remediating (engine/store/handling.py keeps them).
  Both apply to an incident a person may still have to act on: an active one, or an escalated
  one (escalated means "a person must act"); a resolved or ignored incident is refused.
  Acknowledging or assigning again what already is so changes nothing and writes nothing (a
  double click).
- **Notes** go on any incident, also a closed one (what was found afterwards).
- **Resolve by hand** is the lifecycle's ``resolve`` with the person as actor and their note
  as the reason: only from an active state (a closed incident stays closed: add a note).
- **Re-run** plans the incident's rule again, through the pipeline's own ``incident``,
  ``guard`` and ``plan`` stages, as a new incident of the same failure (a closed incident
  never reopens; the new one names the old, and the old one its re-run). So every guard
  applies as it would to a new alert of it: approval (the new incident waits for a person),
  dry-run, pause, the lock; a guard that would stop it (circuit, budget, cooldown) refuses
  the re-run before anything opens. One re-run per incident: a second click is refused and
  names the incident the first opened. The actions run at the scheduler's next tick.

Every refusal is an :class:`OperatorError` saying why (``problem``: ``missing``,
``conflict`` or ``invalid``, which the API answers 404, 409 and 400).
"""

from __future__ import annotations

import contextlib
import unicodedata
from datetime import datetime
from typing import Literal

import msgspec

from engine import guards, lifecycle
from engine.clock import to_ms
from engine.deps import Deps
from engine.errors import RemediatorError
from engine.events import utcnow
from engine.remediation import plan as planner
from engine.rules.match import Explanation
from engine.rules.ruleset import CompiledRule
from engine.rules.templates import RenderError
from engine.runtime import pipeline
from engine.store import audit as audit_store
from engine.store import handling as handling_store
from engine.store import incidents as incidents_store
from engine.store.db import Database
from engine.store.incidents import Incident
from engine.text.redact import redact_text

__all__ = [
    "MAX_NAME",
    "MAX_NOTE",
    "OperatorError",
    "RerunResult",
    "acknowledge",
    "add_note",
    "assign",
    "rerun",
    "resolve",
]

MAX_NOTE = 4000
"""Characters of one note (or of the note that resolves an incident)."""
MAX_NAME = 100
"""Characters of an assignee's name."""
_TAKEN = ("open", "remediating", "waiting_approval", "verifying", "escalated")
"""The states in which a person may still have to act: acknowledge and assign apply."""

Problem = Literal["missing", "conflict", "invalid"]


class OperatorError(RemediatorError):
    """What a person asked cannot apply: the incident is unknown (``missing``), its state
    does not allow it (``conflict``), or the input is wrong (``invalid``); the message says
    why and what to do instead."""

    def __init__(self, message: str, problem: Problem = "conflict") -> None:
        super().__init__(message)
        self.problem: Problem = problem


class RerunResult(msgspec.Struct, frozen=True, kw_only=True):
    """A re-run: the incident it opened, its state and reason (``waiting_approval``,
    ``remediating``, ``ignored`` with the dry-run's "would do", ...), and the rule."""

    rerun_of: str
    incident_id: str
    state: str
    reason: str
    rule_id: str


def _incident(db: Database, incident_id: str) -> Incident:
    found = incidents_store.get(db, incident_id)
    if found is None:
        raise OperatorError(f"unknown incident {incident_id}", "missing")
    return found


def _text(value: str, what: str, limit: int, *, lines: bool) -> str:
    """``value`` stripped, checked (not empty, at most ``limit`` characters, no control
    characters but newlines and tabs where ``lines``) and redacted. Line ends become ``\n``
    (a browser sends a textarea's as ``\r\n``)."""
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise OperatorError(f"{what}: must not be empty", "invalid")
    if len(text) > limit:
        raise OperatorError(f"{what}: at most {limit} characters, got {len(text)}", "invalid")
    allowed = "\n\t" if lines else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in text):
        raise OperatorError(f"{what}: control characters are not allowed", "invalid")
    return redact_text(text)


def _open_to_people(incident: Incident, doing: str) -> None:
    if incident.state not in _TAKEN:
        raise OperatorError(f"incident {incident.id} is {incident.state}: nothing to {doing} "
                            "(add a note instead)")


def acknowledge(db: Database, incident_id: str, who: str, *, now: datetime | None = None
                ) -> bool:
    """``who`` takes the incident on; audited ``acknowledged``. Returns False (nothing
    written) when ``who`` had acknowledged it already."""
    moment = now or utcnow()
    with db.batch():
        incident = _incident(db, incident_id)
        _open_to_people(incident, "acknowledge")
        before = handling_store.get(db, incident_id)
        if not handling_store.set_ack(db, incident_id, who, to_ms(moment)):
            return False
        audit_store.append(db, "acknowledged", ts=moment, actor=who, data={
            "who": who, "state": incident.state, "before": before.acked_by or None},
            incident_id=incident_id, resource=incident.resource)
    return True


def assign(db: Database, incident_id: str, assignee: str, who: str, *,
           now: datetime | None = None) -> bool:
    """Assign the incident to ``assignee`` ("" or only spaces: to nobody); audited
    ``assignment``. Returns False when it was assigned so already."""
    moment = now or utcnow()
    name = _text(assignee, "assignee", MAX_NAME, lines=False) if assignee.strip() else ""
    with db.batch():
        incident = _incident(db, incident_id)
        _open_to_people(incident, "assign")
        before = handling_store.get(db, incident_id).assignee
        if not handling_store.set_assignee(db, incident_id, name, who, to_ms(moment)):
            return False
        audit_store.append(db, "assignment", ts=moment, actor=who, data={
            "who": who, "assignee": name or None, "before": before or None},
            incident_id=incident_id, resource=incident.resource)
    return True


def add_note(db: Database, incident_id: str, text: str, who: str, *,
             now: datetime | None = None) -> handling_store.Note:
    """Add a note (redacted, at most :data:`MAX_NOTE` characters) to any incident; audited
    ``note`` with its text."""
    moment = now or utcnow()
    body = _text(text, "note", MAX_NOTE, lines=True)
    with db.batch():
        incident = _incident(db, incident_id)
        note = handling_store.add_note(db, incident_id, who, body, to_ms(moment))
        audit_store.append(db, "note", ts=moment, actor=who,
                           data={"who": who, "text": body, "note": note.id},
                           incident_id=incident_id, resource=incident.resource)
    return note


def resolve(db: Database, incident_id: str, note: str, who: str, *,
            now: datetime | None = None) -> Incident:
    """Resolve an active incident by hand (the lifecycle's ``resolve``: its pending actions
    cancelled, its probes stopped, its lock released), the reason ``resolved by hand by WHO:
    NOTE``; audited ``resolution`` with ``who`` as actor. Returns the incident as closed."""
    moment = now or utcnow()
    body = _text(note, "note", MAX_NOTE, lines=True)
    with db.batch():
        incident = _incident(db, incident_id)
        if incident.state not in lifecycle.ACTIVE or not lifecycle.resolve(
                db, incident, f"resolved by hand by {who}: {body}", now=moment, actor=who):
            state = _incident(db, incident_id).state
            raise OperatorError(f"incident {incident_id} is {state}: only an active incident "
                                f"({', '.join(lifecycle.ACTIVE)}) can be resolved; add a note "
                                "instead")
    return _incident(db, incident_id)


def rerun(deps: Deps, incident_id: str, who: str) -> RerunResult:
    """Plan the incident's rule again as a new incident of its failure (see the module's
    docstring); audited ``rerun`` on both incidents. Raises :class:`OperatorError` when it
    cannot apply: no rule, the rule no longer loaded, a remediation under way or waiting for
    approval, re-run already, or a guard that would stop it (nothing is opened then)."""
    db, now = deps.db, deps.now()
    with db.batch():
        old = _incident(db, incident_id)
        rule = _rerunnable(deps, old)
        event = planner.event_of(old)
        ids = {"incident_id": old.id, "resource": old.resource}
        refusal = _guards_refuse(deps, rule, old)
        if refusal:
            audit_store.append(db, "rerun", ts=now, actor=who, data={
                "who": who, "decision": "refused", "reason": refusal, "rule": rule.id}, **ids)
            raise OperatorError(f"incident {incident_id} cannot be re-run now: {refusal}")
        if not handling_store.claim_rerun(db, old.id, who, to_ms(now)):
            raise OperatorError(_rerun_already(db, old.id))
        job = pipeline.Job(event=event, explanation=Explanation(
            tried=[], matched=[planner.match_of(old, rule, event)]))
        pipeline.incident(deps, job)
        if job.done:  # joined an incident that became active meanwhile
            handling_store.set_rerun(db, old.id, "")
            raise OperatorError(f"incident {job.incident.id if job.incident else '?'} already "
                                f"handles this failure: nothing to re-run")
        assert job.incident is not None
        new_id = job.incident.id
        handling_store.set_rerun(db, old.id, new_id)
        audit_store.append(db, "rerun", ts=now, actor=who, data={
            "who": who, "decision": "opened", "incident": new_id, "rule": rule.id}, **ids)
        audit_store.append(db, "rerun", ts=now, actor=who, data={
            "who": who, "decision": "rerun_of", "incident": old.id, "rule": rule.id},
            incident_id=new_id, resource=old.resource)
        pipeline.guard(deps, job)
        if not job.done:
            # A RenderError: the plan stage escalated the new incident, saying why.
            with contextlib.suppress(RenderError):
                pipeline.plan(deps, job)
    new = _incident(db, new_id)
    return RerunResult(rerun_of=old.id, incident_id=new.id, state=new.state,
                       reason=new.reason, rule_id=rule.id)


def _rerunnable(deps: Deps, incident: Incident) -> CompiledRule:
    """The incident's rule, or why it cannot be re-run."""
    if not incident.rule_id or not incident.event:
        raise OperatorError(f"incident {incident.id} matched no rule: there is no action to "
                            "re-run")
    rule = deps.playbooks.current.rule(incident.rule_id)
    if rule is None:
        raise OperatorError(f"rule {incident.rule_id} of incident {incident.id} is no longer "
                            "loaded (the playbooks were reloaded without it): nothing to re-run")
    if incident.state == "waiting_approval":
        raise OperatorError(f"incident {incident.id} is waiting for approval: approve or "
                            "reject it")
    if incident.state in lifecycle.ACTIVE:
        raise OperatorError(f"a remediation of incident {incident.id} is under way "
                            f"({incident.state}): wait for its outcome, or resolve it by hand")
    if handling_store.get(deps.db, incident.id).rerun_id:
        raise OperatorError(_rerun_already(deps.db, incident.id))
    active = lifecycle.find_active(deps.db, target=incident.target, alert_key="")
    if active:
        raise OperatorError(f"a remediation of {incident.target} is under way (incident "
                            f"{active[0].id}, {active[0].state}): wait for its outcome")
    return rule


def _rerun_already(db: Database, incident_id: str) -> str:
    done = handling_store.get(db, incident_id)
    return (f"incident {incident_id} was re-run already by {done.rerun_by} as incident "
            f"{done.rerun_id}: re-run that one")


def _guards_refuse(deps: Deps, rule: CompiledRule, incident: Incident) -> str:
    """The reason of the first guard that would stop a new remediation of the incident's
    failure ("" : none would), read without taking anything (the lock is taken when the
    re-run's own guards run)."""
    fresh = msgspec.structs.replace(incident, id="", state="open", attempts=0)
    now_ms = to_ms(deps.now())
    for gate in guards.GUARDS:
        if gate.name == "lock":
            continue
        decision = gate.check(deps, rule, fresh, now_ms)
        if decision.blocks:
            return decision.reason
    return ""
