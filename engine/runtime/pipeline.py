"""The worker's pipeline: the stages an event goes through, in order, in one list.

::

    received -> enrich -> [ route -> match -> incident -> guards -> plan -> act ] per event

``received`` and ``enrich`` run once per inbox event (enrichment may expand one alert into
one event per failed run); the stages in :data:`STAGES` run for each resulting event until
one of them marks the job done. Every stage writes what it decided to the audit log.
Verification and delayed actions continue in the scheduler (engine/runtime/scheduler.py).

Rules matched through ``continue: true``: the first matched rule owns the incident (its
target, guards, budget, cooldown, verification, next attempts and ``on_failure``). The
actions of the rules matched after it are planned into the same incident and attempt, under
the same guard decisions (dry-run, approval; a rule's own ``dry_run: true`` still holds),
each row under its own rule id; they count toward settling the attempt but are not planned
again for a next attempt. One incident per failure keeps "one remediation per target".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import msgspec

from engine import guards, lifecycle
from engine.clock import to_ms
from engine.cloud import names
from engine.deps import Deps
from engine.events import ErrorEvent
from engine.remediation import plan as planner
from engine.remediation import settle
from engine.remediation.analyse import analyse
from engine.remediation.run import run_due
from engine.rules.match import Explanation
from engine.rules.templates import RenderError
from engine.store import actions as actions_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from engine.targets import target_of

__all__ = ["STAGES", "Job", "Stage", "alert_key", "process", "target_of"]


@dataclass
class Job:
    """One event on its way through the stages, and what the stages learned so far."""

    event: ErrorEvent
    explanation: Explanation | None = None
    incident: incidents_store.Incident | None = None
    dry_run: bool = False
    wait_approval: bool = False
    done: bool = False
    notes: list[str] = field(default_factory=list)


class Stage(Protocol):
    """One step of an event's way (as Alertmanager's ``Stage``): it reads and writes the
    ``job``, audits what it decided, and sets ``job.done`` when the event's way ends here.
    Its dependencies are the typed fields of ``deps``."""

    def __call__(self, deps: Deps, job: Job) -> None:
        """Do the stage's part for the job."""
        ...


def alert_key(event: ErrorEvent) -> str:
    """What ties a resolution to its firing alert: Azure Monitor's alert id."""
    return str(event.attributes.get("alert_id") or "")


def _ids(job: Job) -> dict[str, str]:
    return {"event_id": job.event.id, "resource": job.event.resource,
            "incident_id": job.incident.id if job.incident else ""}


def route(deps: Deps, job: Job) -> None:
    """Only firing events go on, unless older than ``max_alert_age_s`` (recorded, the guard
    decision audited); a resolution closes its incident; info is only recorded."""
    event = job.event
    closes = event.status == "resolved" or (
        event.status == "info" and event.attributes.get("event_type") == "jobs.on_success")
    if event.status == "firing":
        age = guards.check_age(event.occurred_at, now_ms=to_ms(deps.now()),
                               max_age_s=deps.options.max_alert_age_s)
        if age.blocks:
            deps.audit("guard", msgspec.to_builtins(age), **_ids(job))
            job.done = True
        return
    job.done = True
    if not closes:
        deps.audit("resolution", {"state": "info", "reason": "info event recorded"}, **_ids(job))
        return
    found = lifecycle.find_active(deps.db, target=target_of(event), alert_key=alert_key(event))
    if not found:
        deps.audit("resolution", {"state": "none", "reason": "no open incident to resolve"},
                   **_ids(job))
    for incident in found:
        settle.resolve(deps, incident, f"{event.status} event {event.id} "
                        f"({event.attributes.get('event_type') or event.status})",
                        event_id=event.id)


def match(deps: Deps, job: Job) -> None:
    """Try every rule; record the explanation (or no_match, which goes to RCA)."""
    explanation = deps.playbooks.current.explain(job.event)
    job.explanation = explanation
    tried = [{"rule": t.rule_id, "where": t.where, "matched": t.matched, "reason": t.reason,
              "groups": t.groups} for t in explanation.tried]
    if explanation.matched:
        deps.audit("matched", {"rules": explanation.rule_ids, "tried": tried}, **_ids(job))
        return
    deps.audit("no_match", {"tried": tried}, **_ids(job))
    incident = _incident(deps, job, rejoin=True)
    if incident.state == "open":
        analyse(deps, job.event, incident)
        lifecycle.escalate(deps.db, incident, "no rule matched", now=deps.now())
    job.done = True


def _incident(deps: Deps, job: Job, *, rejoin: bool = False) -> incidents_store.Incident:
    """Open or join the incident of the event; ``rejoin`` (an unmatched event) also joins
    the same failure escalated as unmatched within ``rejoin_window_s``: a repeat is counted
    and audited (``repeat``), not analysed and announced again."""
    event, now = job.event, deps.now()
    window = timedelta(seconds=deps.options.rejoin_window_s)
    incident, _ = lifecycle.open_or_join(
        deps.db, event, target=target_of(event), alert_key=alert_key(event), now=now,
        rejoin_since=now - window if rejoin and window else None)
    job.incident = incident
    return incident


def incident(deps: Deps, job: Job) -> None:
    """Open the incident of (fingerprint, target), or join the active one: a remediation
    already under way is not planned twice."""
    found = _incident(deps, job)
    if found.state != "open" or actions_store.for_incident(deps.db, found.id):
        job.done = True  # joined: the incident is being handled (or was, by this very event)
        return
    assert job.explanation is not None
    matched = job.explanation.matched
    incidents_store.set_rule(deps.db, found.id, matched[0].rule.id, job.event.id,
                             msgspec.json.encode(job.event).decode(), to_ms(deps.now()),
                             matches={m.rule.id: m.groups for m in matched})
    job.incident = incidents_store.get(deps.db, found.id)


def guard(deps: Deps, job: Job) -> None:
    """Every guard of :data:`engine.guards.GUARDS`, each decision audited; the first that
    blocks escalates (with ``on_failure``) or ignores the incident."""
    assert job.incident is not None and job.explanation is not None
    rule, inc = job.explanation.matched[0].rule, job.incident
    decisions = guards.run(deps, rule, inc, now_ms=to_ms(deps.now()), **_ids(job))
    for decision in decisions:
        if decision.decision == "escalate":
            if settle.escalate(deps, inc, rule, decision.reason):
                run_due(deps, incident_id=inc.id)  # on_failure
            job.done = True
            return
        if decision.decision == "ignore":
            lifecycle.ignore(deps.db, inc, decision.reason, now=deps.now())
            job.done = True
            return
        job.dry_run = job.dry_run or decision.decision == "dry_run"
        job.wait_approval = job.wait_approval or decision.decision == "wait"
    later = [m.rule for m in job.explanation.matched[1:] if m.rule.rule.approval == "required"]
    if later and not job.wait_approval:  # a rule matched through `continue` requires it too
        wait = guards.Decision(name="approval", decision="wait",
                               reason=f"rule {later[0].id} (matched through continue) "
                                      "requires approval")
        deps.audit("guard", msgspec.to_builtins(wait), **_ids(job))
        job.wait_approval = True
    if job.dry_run:
        job.wait_approval = False  # nothing will run that needs approving


def plan(deps: Deps, job: Job) -> None:
    """Render the rule's actions as rows: dry_run, waiting_approval or scheduled (due after
    their delay); the incident becomes remediating, waiting_approval or (dry-run) ignored."""
    assert job.incident is not None and job.explanation is not None
    now = deps.now()
    rule_match = job.explanation.matched[0]
    incidents_store.add_attempt(deps.db, job.incident.id, to_ms(now))
    inc = incidents_store.get(deps.db, job.incident.id)
    assert inc is not None
    state = "waiting_approval" if job.wait_approval else "scheduled"
    try:
        rows = planner.plan_attempt(deps, inc, rule_match, job.event, phase="remediate",
                                    state=state, dry_run=job.dry_run)
        for extra in job.explanation.matched[1:]:  # matched through `continue: true`
            rows += planner.plan_attempt(deps, inc, extra, job.event, phase="remediate",
                                         state=state, secondary=True,
                                         dry_run=job.dry_run or extra.rule.rule.dry_run)
    except RenderError as exc:
        # The rule cannot act on this event: nothing is called, the incident escalates (a
        # person looks at it, on_failure runs). A name the cloud could never have given is the
        # event's own fault and the escalation is its outcome; any other render error is the
        # playbook's, so the event is parked with the error (the batch keeps what was
        # written) to be replayed once the playbook is fixed.
        if settle.escalate(deps, inc, rule_match.rule, str(exc)):
            run_due(deps, incident_id=inc.id)  # on_failure
        if _caused_by(exc, names.InvalidName):
            job.done = True
            return
        raise
    if job.dry_run and all(r.state == "dry_run" for r in rows):
        lifecycle.ignore(deps.db, inc, planner.dry_run_reason(rows), now=now)
        job.done = True
    elif job.wait_approval:
        due = now + timedelta(seconds=deps.options.approval_timeout_s)
        lifecycle.wait_approval(deps.db, inc, due=due, now=now)
        job.done = True
    else:
        lifecycle.remediate(deps.db, inc, reason="actions planned", now=now)
    job.incident = incidents_store.get(deps.db, inc.id)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, kind):
        cause = cause.__cause__
    return cause is not None


def act(deps: Deps, job: Job) -> None:
    """Run what is due now (nothing while paused); later rows wait for the scheduler."""
    assert job.incident is not None
    run_due(deps, incident_id=job.incident.id)
    job.done = True


STAGES: tuple[Stage, ...] = (route, match, incident, guard, plan, act)
"""The per-event stages, in order."""


def _enrich(deps: Deps, stored: inbox.StoredEvent) -> list[ErrorEvent]:
    """Cloud look-ups for the real error (never raises for cloud failures); the first
    resulting event is kept beside the event as received."""
    event = stored.event
    if deps.enrich is None or event.status != "firing":
        return [event]
    with deps.db.outside():  # cloud look-ups: the lock is not held meanwhile
        result = deps.enrich(event)
    events = [e if e.id else msgspec.structs.replace(e, id=event.id)
              for e in (result.events or [event])]
    if len(events) > 1:  # one per failed run: distinct ids for their actions and audit
        events = [msgspec.structs.replace(e, id=f"{event.id}.{i}") if i else e
                  for i, e in enumerate(events)]
    # The cloud's error text is stored and shown like the sender's: redacted.
    events = [(e if e.fingerprint else e.with_fingerprint()).redacted() for e in events]
    inbox.save_enriched(deps.db, msgspec.structs.replace(events[0], id=event.id))
    deps.audit("enriched", {"events": len(events), "notes": list(result.notes or []),
                            "error_code": events[0].error_code,
                            "message": events[0].message},
               event_id=event.id, resource=event.resource)
    return events


def process(deps: Deps, stored: inbox.StoredEvent) -> None:
    """Take one claimed inbox event through the pipeline and mark it done.

    The stages' writes share one transaction up to each call out (enrichment, RCA, an
    action's SDK call: ``db.outside``), which commits what came before it: an action's
    intent is committed before its call, and an event costs a few commits instead of one
    per record. A crash loses at most the writes since the last call out; the event's lease
    brings it back and the stages run again."""
    event = stored.event
    with deps.db.batch():
        deps.audit("received", {"source": event.source, "kind": event.kind,
                                "status": event.status, "dedup_key": event.dedup_key,
                                "run_id": event.run_id, "error_code": event.error_code,
                                "claim": stored.attempts},
                   event_id=event.id, resource=event.resource)
        for item in _enrich(deps, stored):
            job = Job(event=item)
            for stage in STAGES:
                stage(deps, job)
                if job.done:
                    break
        inbox.finish(deps.db, event.id)
