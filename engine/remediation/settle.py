"""Settling an attempt once its remediation rows are done, and what follows an outcome.

Verified or nothing to verify -> resolved; a probe still running -> verifying; a failure ->
the next attempt if the guards that check retries allow it (engine/guards.py), else the
rule's ``on_failure`` and escalated. Each outcome is counted on the breaker of its rule and
target. The incident's moves are engine/lifecycle.py's; what this module adds is the rule's
part: breakers, guards, next attempts, ``on_failure``.

Nothing here runs a row: the functions that plan rows to run now (a next attempt,
``on_failure``) return True, and their caller runs what is due (engine/remediation/run.py).
"""

from __future__ import annotations

from engine import guards, lifecycle
from engine.clock import to_ms
from engine.deps import Deps
from engine.remediation.outcome import failed
from engine.remediation.plan import dry_run_reason, event_of, match_of, plan_attempt
from engine.rules.ruleset import CompiledRule
from engine.rules.templates import RenderError
from engine.store import actions as actions_store
from engine.store import incidents as incidents_store
from engine.store import state as state_store
from engine.store.incidents import Incident

__all__ = ["count_outcome", "escalate", "fail_attempt", "give_up", "ignore", "resolve",
           "settle"]


def settle(deps: Deps, incident_id: str, attempt: int) -> bool:
    """Decide an attempt once its remediation rows are done: failed -> next attempt or
    ``on_failure``; all succeeded and verified (or nothing to verify) -> resolved; a probe
    still running -> verifying. Returns whether rows to run now were planned.

    One transaction, the incident's row held (replicas and threads settle rows of one
    attempt side by side): an attempt already followed by the next one is not settled
    again."""
    with deps.db.batch():
        incident = lifecycle.lock(deps.db, incident_id)
        if incident is None or not lifecycle.active(incident) or incident.attempts > attempt:
            return False
        return _settle(deps, incident, attempt)


def _settle(deps: Deps, incident: Incident, attempt: int) -> bool:
    incident_id = incident.id
    rows = actions_store.for_incident(deps.db, incident_id, attempt=attempt, phase="remediate")
    if any(r.state == "failed" or r.probe_state == "failed" for r in rows):
        failed_row = next(r for r in rows if r.state == "failed" or r.probe_state == "failed")
        return fail_attempt(deps, incident, f"{failed_row.reference}: "
                                            f"{failed_row.error or 'verification failed'}")
    if any(r.state in ("scheduled", "started", "waiting_approval", "planned") for r in rows):
        return False
    if any(r.probe_state == "running" for r in rows):
        if incident.state == "remediating":
            lifecycle.verify(deps.db, incident, attempt=attempt, now=deps.now())
        return False
    dry = [r for r in rows if r.state == "dry_run"]
    if dry and all(r.state in ("succeeded", "skipped", "dry_run") for r in rows):
        # What could run did; the rest was only planned (dry-run): nothing was remediated.
        lifecycle.ignore(deps.db, incident, dry_run_reason(rows), now=deps.now())
        return False
    if rows and all(r.state in ("succeeded", "skipped") for r in rows):
        skipped = [str(r.result.get("detail") or r.reference) for r in rows
                   if r.state == "skipped"]
        if skipped and not any(r.state == "succeeded" and r.mutating for r in rows):
            # Every change the rule would make is no longer needed: the cloud said so.
            resolve(deps, incident, "; ".join(skipped))
            return False
        verified = any(r.probe_state == "succeeded" for r in rows)
        reason = "verified" if verified else "actions succeeded; nothing to verify"
        if skipped:
            reason += "; skipped: " + "; ".join(skipped)
        resolve(deps, incident, reason, rule_outcome=True)
    return False


def resolve(deps: Deps, incident: Incident, reason: str, *, rule_outcome: bool = False,
            event_id: str = "") -> None:
    """Close the incident as resolved (engine.lifecycle.resolve); a rule's success
    (``rule_outcome``) is counted on its breaker."""
    if lifecycle.resolve(deps.db, incident, reason, now=deps.now(), event_id=event_id) \
            and rule_outcome and incident.rule_id:
        count_outcome(deps, incident, success=True)


def ignore(deps: Deps, incident: Incident, reason: str, *, event_id: str = "") -> None:
    """Close the incident as ``ignored`` (an ``ignore`` action: the failure is expected)."""
    lifecycle.ignore(deps.db, incident, reason, now=deps.now(), event_id=event_id)


def count_outcome(deps: Deps, incident: Incident, *, success: bool) -> state_store.Breaker:
    """Count a remediation's outcome on the breaker of its rule and target (the rule's
    ``breaker:`` settings, else ``[engine]``'s); a breaker that opens is audited."""
    rule = deps.playbooks.current.rule(incident.rule_id)
    settings = rule.rule.breaker if rule is not None else None
    threshold = (settings.threshold if settings is not None and settings.threshold
                 else deps.options.breaker_threshold)
    cool_off_s = (rule.breaker_cool_off_s if rule is not None and rule.breaker_cool_off_s
                  else deps.options.breaker_cool_off_s)
    now_ms = to_ms(deps.now())
    breaker = state_store.record_outcome(deps.db, incident.rule_id, incident.target,
                                         success=success, threshold=threshold,
                                         cool_off_ms=cool_off_s * 1000, now_ms=now_ms)
    if breaker.open and breaker.opened_ms == now_ms:
        deps.audit("breaker", {"rule_id": incident.rule_id, "target": incident.target,
                               "decision": "opened", "failures": breaker.failures,
                               "threshold": threshold, "cool_off_s": cool_off_s,
                               "until_ms": breaker.until_ms},
                   incident_id=incident.id, resource=incident.resource)
    return breaker


def fail_attempt(deps: Deps, incident: Incident, reason: str) -> bool:
    """An attempt failed: count it against the breaker, then plan the next attempt if the
    retry guards allow (the rule's cooldown as a delay), else run ``on_failure`` and
    escalate. Returns whether rows to run now were planned."""
    now_ms = to_ms(deps.now())
    rule = deps.playbooks.current.rule(incident.rule_id)
    breaker = count_outcome(deps, incident, success=False)
    actions_store.cancel_pending(deps.db, incident.id, now_ms)
    deps.audit("verification", {"state": "failed", "attempt": incident.attempts,
                                "reason": reason, "breaker_failures": breaker.failures},
               incident_id=incident.id, resource=incident.resource)
    if rule is None:
        return escalate(deps, incident, None,
                        f"{reason}; rule {incident.rule_id} is no longer loaded")
    decisions = guards.run(deps, rule, incident, now_ms=now_ms, retry=True,
                           incident_id=incident.id, resource=incident.resource)
    if decisions and decisions[-1].blocks:
        return escalate(deps, incident, rule, f"{reason}; {decisions[-1].reason}")
    if not lifecycle.remediate(deps.db, incident, now=deps.now(),
                               reason=f"attempt failed: {reason}; trying again"):
        return False
    incidents_store.add_attempt(deps.db, incident.id, now_ms)
    fresh = incidents_store.get(deps.db, incident.id)
    assert fresh is not None
    event = event_of(fresh)
    last = actions_store.last_started_ms(deps.db, rule_id=rule.id, target=incident.target)
    floor = 0
    if rule.cooldown_s and last:
        floor = max(0, (last + rule.cooldown_s * 1000 - now_ms + 999) // 1000)
    plan_attempt(deps, fresh, match_of(fresh, rule, event), event, phase="remediate",
                 state="scheduled", dry_run=False, delay_floor_s=floor)
    return True


def escalate(deps: Deps, incident: Incident, rule: CompiledRule | None, reason: str) -> bool:
    """Close the incident as escalated (engine.lifecycle.escalate) and plan the rule's
    ``on_failure`` actions (if any). Returns whether rows to run now were planned."""
    if not lifecycle.escalate(deps.db, incident, reason, now=deps.now()):
        return False
    if rule is None or not rule.on_failure:
        return False
    fresh = incidents_store.get(deps.db, incident.id)
    assert fresh is not None
    event = event_of(fresh)
    try:
        plan_attempt(deps, fresh, match_of(fresh, rule, event), event, phase="on_failure",
                     state="scheduled", dry_run=not deps.live or rule.rule.dry_run)
    except RenderError as exc:  # the incident stays escalated; the audit says why
        deps.audit("action_failed", {"phase": "on_failure", "error": str(exc)},
                   incident_id=incident.id, resource=incident.resource)
        return False
    return True


def give_up(deps: Deps, row: actions_store.ActionRow, incident: Incident, error: str) -> bool:
    """A call that cannot succeed (permanent error, or retries spent): the row fails, and a
    remediation action escalates its incident at once (``on_failure`` runs; another attempt
    would fail alike). Returns whether rows to run now were planned."""
    failed(deps, row, error, incident)
    if row.phase != "remediate":
        return False
    fresh = incidents_store.get(deps.db, incident.id)
    if fresh is None or not lifecycle.active(fresh):
        return False
    if fresh.rule_id:
        count_outcome(deps, fresh, success=False)
    return escalate(deps, fresh, deps.playbooks.current.rule(fresh.rule_id),
                    f"{row.reference}: {error}")
