"""Re-run a closed incident's rule: plan it again through the pipeline's own ``incident``,
``guard`` and ``plan`` stages, as a new incident of the same failure (a closed incident never
reopens; the new one names the old, and the old one its re-run).

So every guard applies as it would to a new alert of that failure: approval (the new incident
waits for a person), dry-run, pause, the lock; a guard that would stop it (circuit, budget,
cooldown) refuses the re-run before anything opens, and the refusal is audited. One re-run
per incident: a second click is refused and names the incident the first opened. No cloud
call is made here (the HTTP API calls it): the actions run at the scheduler's next tick.
"""

from __future__ import annotations

import contextlib

import msgspec

from engine import guards, lifecycle
from engine.clock import to_ms
from engine.deps import Deps
from engine.remediation import plan as planner
from engine.rules.match import Explanation
from engine.rules.ruleset import CompiledRule
from engine.rules.templates import RenderError
from engine.runtime import pipeline
from engine.runtime.operators import OperatorError, find
from engine.store import audit as audit_store
from engine.store import handling as handling_store
from engine.store.db import Database
from engine.store.incidents import Incident

__all__ = ["RerunResult", "rerun"]


class RerunResult(msgspec.Struct, frozen=True, kw_only=True):
    """A re-run: the incident it opened, its state and reason (``waiting_approval``,
    ``remediating``, ``ignored`` with the dry-run's "would do", ...), and the rule."""

    rerun_of: str
    incident_id: str
    state: str
    reason: str
    rule_id: str


def rerun(deps: Deps, incident_id: str, who: str) -> RerunResult:
    """Plan the incident's rule again as a new incident of its failure (see the module's
    docstring); audited ``rerun`` on both incidents. Raises
    :class:`~engine.runtime.operators.OperatorError` when it cannot apply: no rule, the rule
    no longer loaded, a remediation under way or waiting for approval, re-run already, or a
    guard that would stop it (nothing is opened then)."""
    db, now = deps.db, deps.now()
    with db.batch():
        old = find(db, incident_id)
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
        try:
            pipeline.incident(deps, job)
        except BaseException:
            handling_store.set_rerun(db, old.id, "")  # the batch keeps what was written
            raise
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
    new = find(db, new_id)
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
