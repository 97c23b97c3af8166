"""Guards: what stands between a matched rule and a cloud call, each decision with its reason.

Every guard is a :class:`Guard`: a name and one ``check`` of the same signature (as
Alertmanager's ``Muter``: several gates, one interface), and :data:`GUARDS` holds them in the
order they are checked. :func:`run` checks them for a
planned remediation (the pipeline) and the retry guards for a next attempt (the remediation's
``fail_attempt``), the same way both times: each decision audited (``guard``), the first that
blocks ends the run and decides what happens to the incident (``escalate``, ``ignore``):

- ``silence``: an active silence (engine/silences.py) whose matchers hold for the event on
  its target closes the incident ``ignored``, naming the silence: recorded, not acted on;
  checked again when a planned mutating action comes due (a delay, a next attempt, an
  approval: :func:`silenced`), since a silence may begin after the planning;
- ``circuit``: a rule whose last N remediations of a target failed only escalates on that
  target for a cool-off; then it is half-open: the next remediation is a trial, whose success
  closes the breaker and whose failure opens it again; :func:`reset_breaker` closes it early;
- ``budget``: at most ``budget.max_attempts`` attempts per ``budget.window``, counted per
  target, rule or fingerprint (under an advisory lock of the rule and scope, held until the
  attempt it allows is written: several replicas do not both take the last one);
- ``cooldown``: no new remediation of a target by a rule within ``cooldown`` of the last
  (under a lock of the rule and target, as the budget);
- ``lock``: one remediation at a time per target (a DB row with a lease: holds across threads
  and restarts);
- ``dry_run``: the default; ``Settings.live`` turns real actions on, a rule's ``dry_run: true``
  still holds; dry-run renders and audits "would do" and makes no mutating call;
- ``approval``: ``approval: required`` (of a matched rule, or a playbook ``policies:`` entry
  whose ``match`` holds for the event, whatever rule matched) parks the incident in
  ``waiting_approval`` until
  :func:`approve` or :func:`reject` (or expiry, which runs ``on_failure``);
- ``pause``: the global pause (:func:`pause` / :func:`resume`); intake goes on, actions wait.

A next attempt is checked by the two guards that may stop it (``on_retry``): the circuit and
the budget. The others hold already (the lock, approval) or become a delay (cooldown, pause).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from engine import lifecycle, silences
from engine.clock import from_ms, to_ms
from engine.deps import Deps
from engine.events import ErrorEvent, utcnow
from engine.rules.ruleset import CompiledRule
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store import locks
from engine.store import state as state_store
from engine.store.db import Database
from engine.store.incidents import Incident

__all__ = [
    "GUARDS",
    "Check",
    "Decision",
    "Guard",
    "GuardError",
    "approve",
    "check_age",
    "list_breakers",
    "pause",
    "reject",
    "reset_breaker",
    "resume",
    "run",
    "silenced",
]

Outcome = Literal["allow", "escalate", "ignore", "dry_run", "wait", "paused"]


class Decision(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One guard's verdict: ``allow``, or what to do instead, and why (in words); a silence's
    decision names it (``silence``), an approval's the policies that require it."""

    name: str
    decision: Outcome
    reason: str
    silence: str = ""
    policies: list[str] = msgspec.field(default_factory=list)

    @property
    def blocks(self) -> bool:
        """Whether the remediation stops here (escalated or ignored)."""
        return self.decision in ("escalate", "ignore")


class GuardError(Exception):
    """An approve/reject that cannot apply: unknown incident, or not waiting for approval."""


Check = Callable[[Deps, CompiledRule, Incident, int], Decision]
"""``check(deps, rule, incident, now_ms)``: one guard's decision for a rule's remediation of an
incident (it may take what it guards, as the lock does)."""


@dataclass(frozen=True)
class Guard:
    """One gate (as Alertmanager's ``Muter``): its ``name`` (as decisions and metrics carry
    it), its ``check``, whether a next attempt is checked by it too (``on_retry``), and
    whether its ``allow`` is audited (``audit_allow``: the silence's "none matches" would be
    a record on every remediation that says nothing)."""

    name: str
    check: Check
    on_retry: bool = False
    audit_allow: bool = True


def _seconds(value: int | None) -> str:
    return f"{value}s"


def _iso(ms: int) -> str:
    return from_ms(ms).isoformat().replace("+00:00", "Z")


def check_age(occurred_at: datetime | None, *, now_ms: int, max_age_s: int) -> Decision:
    """Ignore a firing alert older than ``max_age_s`` (0: no limit): it is recorded, never
    acted on, so that an old alert (a sample, a replayed or forged one) does not remediate
    today. Checked when the event is routed, before any rule: audited only when it blocks."""
    if not max_age_s or occurred_at is None:
        return Decision(name="age", decision="allow",
                        reason="no age limit" if not max_age_s else "the alert gives no time")
    age_s = (now_ms - to_ms(occurred_at)) // 1000
    if age_s > max_age_s:
        return Decision(name="age", decision="ignore", reason=(
            f"alert from {_iso(to_ms(occurred_at))} is {age_s} s old, older than "
            f"max_alert_age_s ({max_age_s} s): recorded, not remediated"))
    return Decision(name="age", decision="allow", reason=f"alert {age_s} s old")


def _event(incident: Incident) -> ErrorEvent | None:
    """The event the incident's remediation is planned from (kept with it at planning)."""
    if not incident.event:
        return None
    try:
        return msgspec.json.decode(incident.event, type=ErrorEvent)
    except msgspec.DecodeError:
        return None


def check_silence(deps: Deps, rule: CompiledRule, incident: Incident, now_ms: int) -> Decision:
    """Block (ignore) while an active silence's matchers hold for the event on its target:
    the incident is recorded and closed, nothing is acted on."""
    return silenced(deps, incident, now_ms)


def silenced(deps: Deps, incident: Incident, now_ms: int) -> Decision:
    """The silence guard's decision for the incident, whatever rule planned it: also asked
    when a planned action comes due (engine/remediation/run.py), as a silence may have begun
    since it was planned."""
    event = _event(incident)
    found = silences.matching(deps.db, event, incident.target, now_ms=now_ms) if event else []
    if not found:
        return Decision(name="silence", decision="allow", reason="no active silence matches")
    first = found[0]
    return Decision(name="silence", decision="ignore", silence=first.id, reason=(
        f"silenced by {first.id} until {_iso(first.ends_ms)} ({first.author}: "
        f"{first.comment}): recorded, not remediated"))


def check_circuit(deps: Deps, rule: CompiledRule, incident: Incident, now_ms: int) -> Decision:
    """Block (escalate) while the breaker of the rule on the target is open; let one trial
    through once its cool-off has ended (half-open)."""
    target = incident.target
    breaker = state_store.breaker(deps.db, rule.id, target)
    where = f"rule {rule.id} on target {target}"
    state = breaker.state(now_ms)
    if state == "open":
        return Decision(name="circuit", decision="escalate",
                        reason=f"circuit open for {where} until {_iso(breaker.until_ms)} after "
                               f"{breaker.failures} consecutive failed remediations; reset it "
                               "to remediate sooner")
    if state == "half_open":
        return Decision(name="circuit", decision="allow",
                        reason=f"circuit half-open for {where} since "
                               f"{_iso(breaker.until_ms)}: one trial remediation (success "
                               "closes it, failure opens it again)")
    return Decision(name="circuit", decision="allow",
                    reason=f"circuit closed for {where} ({breaker.failures} consecutive "
                           "failures)")


def check_budget(deps: Deps, rule: CompiledRule, incident: Incident, now_ms: int) -> Decision:
    """Block (escalate) when the rule's attempts in its window reached ``max_attempts``."""
    budget = rule.rule.budget
    if budget is None:
        return Decision(name="budget", decision="allow", reason="no budget set")
    window = rule.budget_window_s or 0
    value = {"target": incident.target, "fingerprint": incident.fingerprint,
             "rule": ""}[budget.per]
    # Held until the transaction commits the attempt this allows: another replica counts it.
    locks.hold(deps.db, "budget", f"{rule.id}\x1f{budget.per}\x1f{value}")
    used = actions_store.attempts_in_window(
        deps.db, rule_id=rule.id, scope=budget.per, value=value, since_ms=now_ms - window * 1000)
    scope = f"per {budget.per}" + (f" {value}" if value else "")
    if used >= budget.max_attempts:
        return Decision(name="budget", decision="escalate",
                        reason=f"budget spent: {used} of {budget.max_attempts} attempts in "
                               f"{_seconds(window)} {scope}")
    return Decision(name="budget", decision="allow",
                    reason=f"{used} of {budget.max_attempts} attempts used in "
                           f"{_seconds(window)} {scope}")


def check_cooldown(deps: Deps, rule: CompiledRule, incident: Incident,
                   now_ms: int) -> Decision:
    """Block (ignore) a new remediation of the target within the rule's cooldown."""
    cooldown, target = rule.cooldown_s, incident.target
    if not cooldown:
        return Decision(name="cooldown", decision="allow", reason="no cooldown set")
    locks.hold(deps.db, "cooldown", f"{rule.id}\x1f{target}")  # as the budget's
    last = actions_store.last_started_ms(deps.db, rule_id=rule.id, target=target,
                                         exclude_incident=incident.id)
    if last is not None and now_ms - last < cooldown * 1000:
        ago = (now_ms - last) // 1000
        return Decision(name="cooldown", decision="ignore",
                        reason=f"cooldown: rule {rule.id} acted on {target} {ago}s ago "
                               f"(cooldown {_seconds(cooldown)})")
    return Decision(name="cooldown", decision="allow",
                    reason=f"no action by rule {rule.id} on {target} within {_seconds(cooldown)}")


def check_lock(deps: Deps, rule: CompiledRule, incident: Incident, now_ms: int) -> Decision:
    """Take the target's lock for this incident, or block (ignore) if another holds it."""
    target = incident.target
    lock = state_store.acquire_lock(deps.db, target, incident.id, now_ms=now_ms,
                                    until_ms=now_ms + deps.options.lock_lease_s * 1000)
    if lock.holder != incident.id:
        return Decision(name="lock", decision="ignore",
                        reason=f"target {target} is locked by incident {lock.holder}")
    return Decision(name="lock", decision="allow", reason=f"lock on {target} taken")


def check_dry_run(deps: Deps, rule: CompiledRule, incident: Incident, now_ms: int) -> Decision:
    """``dry_run`` unless the service runs live and the rule is not in shadow mode."""
    if rule.rule.dry_run:
        return Decision(name="dry_run", decision="dry_run",
                        reason=f"rule {rule.id} is dry_run: true")
    if not deps.live:
        return Decision(name="dry_run", decision="dry_run",
                        reason="dry-run mode (start with --live to act)")
    return Decision(name="dry_run", decision="allow", reason="live")


def check_approval(deps: Deps, rule: CompiledRule, incident: Incident,
                   now_ms: int) -> Decision:
    """``wait`` when the rule requires approval, or a playbook policy does for the event."""
    if rule.rule.approval == "required":
        return Decision(name="approval", decision="wait",
                        reason=f"rule {rule.id} requires approval")
    event = _event(incident)
    current = deps.playbooks.current
    found = current.approval_policies(event) if event is not None else []
    if found:
        return Decision(name="approval", decision="wait", policies=[p.id for p in found],
                        reason="policy " + ", ".join(f"{p.id} ({p.where})" for p in found)
                        + " requires approval")
    return Decision(name="approval", decision="allow", reason="no approval required")


def check_pause(deps: Deps, rule: CompiledRule, incident: Incident, now_ms: int) -> Decision:
    """``paused`` while the global pause is on: the actions wait, nothing is dropped."""
    state = state_store.pause_state(deps.db)
    if state.paused:
        return Decision(name="pause", decision="paused",
                        reason=f"actions paused by {state.who}; they run after resume")
    return Decision(name="pause", decision="allow", reason="not paused")


GUARDS: tuple[Guard, ...] = (
    Guard("silence", check_silence, audit_allow=False),
    Guard("circuit", check_circuit, on_retry=True),
    Guard("budget", check_budget, on_retry=True),
    Guard("cooldown", check_cooldown),
    Guard("lock", check_lock),
    Guard("dry_run", check_dry_run),
    Guard("approval", check_approval),
    Guard("pause", check_pause),
)
"""Every guard, in the order they are checked."""


def run(deps: Deps, rule: CompiledRule, incident: Incident, *, now_ms: int,
        retry: bool = False, **ids: str) -> list[Decision]:
    """Check the guards in order (``retry``: those ``on_retry`` only), each decision audited
    (``guard``, with ``ids``; an ``allow`` only if the guard's ``audit_allow``); stop at the
    first that blocks. Returns the decisions made: the
    last one blocks, or none does."""
    decisions = []
    for gate in GUARDS:
        if retry and not gate.on_retry:
            continue
        decision = gate.check(deps, rule, incident, now_ms)
        if gate.audit_allow or decision.decision != "allow":
            deps.audit("guard", msgspec.to_builtins(decision), **ids)
        decisions.append(decision)
        if decision.blocks:
            break
    return decisions


def _now(now: datetime | None) -> datetime:
    return now or utcnow()


def approve(db: Database, incident_id: str, who: str, *, now: datetime | None = None) -> None:
    """Approve a waiting incident: its actions are scheduled (the scheduler's next tick runs
    them; no cloud call is made here, so the HTTP API may call this on its event loop).

    Raises :class:`GuardError` if the incident is unknown or not waiting for approval.
    """
    moment = _now(now)
    with db.batch():  # the move, its rows and its record: one transaction
        incident = _waiting(db, incident_id)
        if not lifecycle.remediate(db, incident, reason=f"approved by {who}", now=moment):
            raise GuardError(f"incident {incident_id} is no longer waiting for approval")
        moved = actions_store.release(db, incident_id, from_state="waiting_approval",
                                      to_state="scheduled", now_ms=to_ms(moment))
        audit_store.append(db, "approval", ts=moment, incident_id=incident_id, actor=who,
                           data={"decision": "approved", "who": who, "actions": moved})


def reject(db: Database, incident_id: str, who: str, *, now: datetime | None = None,
           reason: str = "") -> None:
    """Reject a waiting incident: its actions are cancelled and it is ignored.

    Raises :class:`GuardError` if the incident is unknown or not waiting for approval.
    """
    moment = _now(now)
    text = f"rejected by {who}" + (f": {reason}" if reason else "")
    with db.batch():  # the move, its rows and its records: one transaction
        incident = _waiting(db, incident_id)
        pending = [a.reference for a in actions_store.for_incident(db, incident_id)
                   if a.state in actions_store.PENDING]
        if not lifecycle.ignore(db, incident, text, now=moment, actor=who):
            raise GuardError(f"incident {incident_id} is no longer waiting for approval")
        audit_store.append(db, "approval", ts=moment, incident_id=incident_id, actor=who,
                           data={"decision": "rejected", "who": who, "reason": reason,
                                 "cancelled": pending})


def _waiting(db: Database, incident_id: str) -> incidents_store.Incident:
    incident = incidents_store.get(db, incident_id)
    if incident is None:
        raise GuardError(f"unknown incident {incident_id}")
    if incident.state != "waiting_approval":
        raise GuardError(f"incident {incident_id} is {incident.state}, not waiting_approval")
    return incident


def pause(db: Database, who: str, *, now: datetime | None = None) -> None:
    """Stop all actions (intake and planning go on; scheduled actions wait)."""
    moment = _now(now)
    state_store.set_pause(db, True, who, to_ms(moment))
    audit_store.append(db, "pause", ts=moment, actor=who, data={"who": who})


def resume(db: Database, who: str, *, now: datetime | None = None) -> None:
    """Let actions run again; those that waited run at the scheduler's next tick."""
    moment = _now(now)
    state_store.set_pause(db, False, who, to_ms(moment))
    audit_store.append(db, "resume", ts=moment, actor=who, data={"who": who})


def list_breakers(db: Database, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The open and half-open breakers, as the API, the CLI and the dashboard show them."""
    now_ms = to_ms(_now(now))
    return [{"rule_id": b.rule_id, "target": b.target, "state": b.state(now_ms),
             "failures": b.failures, "opened_at": _iso(b.opened_ms), "until": _iso(b.until_ms)}
            for b in state_store.list_breakers(db)]


def reset_breaker(db: Database, rule_id: str, who: str, *, target: str | None = None,
                  reason: str = "", now: datetime | None = None) -> list[dict[str, Any]]:
    """Close the breakers of a rule (on every target, or on ``target``) so that it remediates
    again; audited with who and why. Returns the breakers closed (as :func:`list_breakers`
    shows them, ``closed`` for one that was only counting failures).

    Raises :class:`GuardError` if the rule has no open breaker and no failure counted there.
    """
    moment = _now(now)
    now_ms = to_ms(moment)
    closed = state_store.reset_breakers(db, rule_id, target)
    if not closed:
        where = f"rule {rule_id}" + (f" on target {target}" if target else "")
        raise GuardError(f"no circuit breaker to reset for {where}")
    reset = [{"rule_id": b.rule_id, "target": b.target, "state": b.state(now_ms),
              "failures": b.failures, "opened_at": _iso(b.opened_ms) if b.open else None,
              "until": _iso(b.until_ms) if b.open else None} for b in closed]
    audit_store.append(db, "breaker", ts=moment, actor=who,
                       data={"rule_id": rule_id, "target": target, "decision": "reset",
                             "who": who, "reason": reason, "breakers": reset})
    return reset
