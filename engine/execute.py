"""Running planned actions safely, and what follows their outcome.

One action row at a time: the intent is committed (``started``) before the cloud call; the
outcome after it. An attempt is settled when its rows are done: verified or nothing to verify
-> the incident is resolved; a failure -> the next attempt if the rule's budget and breaker
allow, else ``on_failure`` and the incident escalated. Both the worker (right after
planning) and the scheduler (due rows, probes, reconciliation) call these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from engine import markup
from engine.actions import notify
from engine.actions.base import ActionSpec
from engine.actions.context import ActionResult, Precheck, ProbeResult
from engine.clock import Clock, to_ms
from engine.config import EngineSettings
from engine.errors import ActionError, ConfigError, PermanentActionError, RetryableActionError
from engine.events import ErrorEvent
from engine.rules.match import RuleMatch
from engine.rules.templates import PlannedAction, RenderError, render_actions
from engine.store import Database, new_id
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store import state as state_store

__all__ = [
    "Deps", "EngineOptions", "check_dry_runs", "close_ignored", "count_outcome", "dry_run_reason",
    "fail_attempt", "plan_attempt", "retry_delay_s", "run_row", "settle",
]

Rca = Callable[..., dict[str, Any]]
"""``rca(event, history, *, refresh=False, offline=False) -> dict`` (the keywords are
passed only when set, by ``rca.analyze``)."""


EngineOptions = EngineSettings
"""Tuning of the worker and scheduler: the ``[engine]`` settings (defaults suit the embedded
setup); tests build one with their own values."""


@dataclass(frozen=True)
class Deps:
    """What the pipeline, the executor and the scheduler share.

    ``playbooks.current`` is the loaded PlaybookSet (swapped whole on reload); ``actions`` the
    registry's table; ``ctx`` the ActionContext with the cloud clients; ``owner`` names this
    process in the intents it commits.
    """

    db: Database
    playbooks: Any
    actions: Mapping[str, ActionSpec]
    ctx: Any
    live: bool
    clock: Clock
    rca: Rca | None = None
    enrich: Callable[[ErrorEvent], Any] | None = None
    options: EngineOptions = field(default_factory=EngineOptions)
    owner: str = field(default_factory=lambda: new_id("proc"))

    def now(self) -> datetime:
        """The current time from the clock."""
        return self.clock.now()

    def audit(self, kind: str, data: Any = None, **ids: str) -> None:
        """Append one audit record stamped with the clock's time."""
        audit_store.append(self.db, kind, ts=self.now(), data=data, **ids)


def _event_of(incident: incidents_store.Incident) -> ErrorEvent:
    return msgspec.json.decode(incident.event, type=ErrorEvent)


def _render(deps: Deps, row: actions_store.ActionRow, event: ErrorEvent,
            incident: incidents_store.Incident) -> PlannedAction:
    """The row's action rendered again from its rule (stored parameters are redacted)."""
    rule = deps.playbooks.current.rule(row.rule_id)
    if rule is None:
        raise PermanentActionError(f"{row.reference}: rule {row.rule_id} is no longer loaded")
    groups: dict[str, Any] = {}
    rule.condition.test(event, groups)
    steps = "on_failure" if row.phase == "on_failure" else "actions"
    try:
        planned = render_actions(RuleMatch(rule, groups), event, attempts=row.attempt,
                                 incident=_incident_view(incident), steps=steps)
    except RenderError as exc:
        raise PermanentActionError(f"{row.reference}: {exc}") from exc
    if row.index >= len(planned):
        raise PermanentActionError(f"{row.reference}: the rule no longer has this action")
    return planned[row.index]


def _incident_view(incident: incidents_store.Incident) -> dict[str, Any]:
    return {"id": incident.id, "attempts": incident.attempts, "state": incident.state,
            "target": incident.target}


def plan_attempt(
    deps: Deps, incident: incidents_store.Incident, rule: Any, event: ErrorEvent,
    rule_match: RuleMatch, *, phase: str, state: str, dry_run: bool, delay_floor_s: int = 0,
    secondary: bool = False,
) -> list[actions_store.ActionRow]:
    """Render and store the rule's actions (or ``on_failure``) for one attempt.

    ``state`` is ``scheduled``, ``waiting_approval`` or ``dry_run`` (mutating actions only;
    non-mutating ones are scheduled even in dry-run). Each action is audited as planned.
    ``secondary`` marks a rule matched through an earlier rule's ``continue: true``: its rows
    join the incident's attempt under keys of their own (the rule id is part of the key).
    """
    now = deps.now()
    steps = "on_failure" if phase == "on_failure" else "actions"
    planned = render_actions(rule_match, event, attempts=incident.attempts,
                             incident=_incident_view(incident), steps=steps)
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
            playbook=rule.file, playbook_hash=getattr(rule, "content_hash", ""),
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


def run_row(deps: Deps, row: actions_store.ActionRow) -> None:
    """Run one due, scheduled action: intent, call, outcome, then settle its attempt.

    Does nothing while paused or if the row is no longer ``scheduled`` (another thread or
    process took it, or it was cancelled).
    """
    if state_store.pause_state(deps.db).paused:
        return
    incident = incidents_store.get(deps.db, row.incident_id)
    assert incident is not None
    event = _event_of(incident)
    spec = deps.actions.get(row.action)
    ids = {"incident_id": row.incident_id, "event_id": row.event_id,
           "resource": incident.resource}
    if not actions_store.start(deps.db, row.id, owner=deps.owner, now_ms=to_ms(deps.now())):
        return
    deps.audit("action_started", {"action": row.action, "reference": row.reference,
                                  "key": row.idem_key, "attempt": row.attempt,
                                  "retry": row.retries, "playbook": row.playbook,
                                  "playbook_hash": row.playbook_hash}, **ids)
    try:
        if spec is None:
            raise PermanentActionError(f"{row.reference}: unknown action {row.action}")
        planned = _render(deps, row, event, incident)
        checked = _Checked()
        try:
            # One call out, the intent above committed before it: the pre-check reads the
            # target's state, and only if it still needs the action is the action called.
            with deps.db.outside():
                checked.read(spec, planned.params, event, deps.ctx)
                result = None if checked.skips else _call(deps, spec, planned, event, incident)
        finally:
            checked.audit(deps, row, ids)
        if result is None:
            assert checked.check is not None
            if checked.check.refuse:  # the alert does not describe what was read: a person looks
                raise PermanentActionError(checked.check.reason)
            found = None
            if row.retries and spec.reconcile is not None:
                # An earlier try of this row timed out or failed mid-call: what the check
                # found done may be that try's work, which reached the cloud after all.
                with deps.db.outside():
                    found = spec.reconcile(planned.params, event, deps.ctx)
            if found is not None:
                _succeeded(deps, row, spec, found, incident, ids, reconciled=True)
            else:
                _skipped(deps, row, checked.check)
            settle(deps, row.incident_id, row.attempt)
            return
    except RetryableActionError as exc:
        if row.retries < deps.options.retry_limit:
            delay = retry_delay_s(deps.options, row.retries, exc)
            due = deps.now() + timedelta(seconds=delay)
            actions_store.reschedule(deps.db, row.id, due_ms=to_ms(due), error=str(exc))
            deps.audit("action_failed", {"action": row.action, "reference": row.reference,
                                         "error": str(exc), "retry": row.retries + 1,
                                         "retry_limit": deps.options.retry_limit,
                                         "delay_s": delay, "retry_at": to_ms(due)}, **ids)
            return
        _give_up(deps, row, incident, f"{exc} (gave up after {row.retries} retries)", ids)
    except ActionError as exc:
        _give_up(deps, row, incident, str(exc), ids)
    else:
        _succeeded(deps, row, spec, result, incident, ids)
        if result.data.get("close_incident"):
            close_ignored(deps, incident, f"{row.reference}: {result.detail}",
                          event_id=row.event_id)
            return
    settle(deps, row.incident_id, row.attempt)


class _Checked:
    """The pre-check of one row (``ActionSpec.precheck``): what it read and decided, or why
    it could not read, audited as one ``precheck`` record."""

    def __init__(self, *, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.ran = False
        self.check: Precheck | None = None
        self.error: ActionError | ConfigError | None = None

    @property
    def skips(self) -> bool:
        """The target no longer needs the action."""
        return self.check is not None and not self.check.act

    def read(self, spec: ActionSpec, params: Any, event: ErrorEvent, ctx: Any) -> None:
        """Run the check (a cloud read; the caller holds no lock). A check that cannot read
        raises as the action would: retried, then escalated, never acted on blind."""
        if spec.precheck is None:
            return
        self.ran = True
        try:
            self.check = spec.precheck(params, event, ctx)
        except (ActionError, ConfigError) as exc:
            self.error = exc
            raise

    def audit(self, deps: Deps, row: actions_store.ActionRow, ids: dict[str, str]) -> None:
        """What was read and decided (``act``, ``skip``, ``refuse``) or why not (``error``)."""
        if not self.ran:
            return
        data: dict[str, Any] = {"action": row.action, "reference": row.reference,
                                "dry_run": self.dry_run}
        if self.check is not None:
            data.update(decision="act" if self.check.act else
                        "refuse" if self.check.refuse else "skip",
                        reason=self.check.reason, seen=self.check.seen)
        else:
            data.update(decision="error", error=str(self.error or "no answer"),
                        retry=row.retries)
        deps.audit("precheck", data, **ids)


def _skipped(deps: Deps, row: actions_store.ActionRow, check: Precheck) -> None:
    """The target no longer needs the action: the row ends ``skipped``, nothing was called."""
    actions_store.finish(deps.db, row.id, "skipped", now_ms=to_ms(deps.now()),
                         result={"outcome": "skipped", "detail": check.reason,
                                 "seen": check.seen})


def dry_run_reason(rows: list[actions_store.ActionRow]) -> str:
    """``dry-run: would do: ...`` for the dry-run rows, with a pre-check's verdict if known."""
    parts = []
    for r in rows:
        if r.state != "dry_run":
            continue
        verdict = r.result.get("precheck") if isinstance(r.result, dict) else None
        parts.append(f"would do: {r.description}" + (f" ({verdict})" if verdict else ""))
    return "dry-run: " + "; ".join(parts)


DRY_RUN_CHECK_WINDOW_S = 3600
"""A dry-run row is checked when it comes due, not later than this after (a check long after
the fact says nothing about what the action would have done)."""


def check_dry_runs(deps: Deps, *, limit: int = 50) -> int:
    """Dry-run still reads: the pre-check of each dry-run row whose time has come runs (read
    only), is audited (``precheck`` with ``dry_run``) and its verdict kept with the row
    (``would act: ...``, ``nothing to do: ...`` or ``could not check: ...``). Once per row,
    at the time the action would have run; returns how many were checked."""
    names = [name for name, spec in deps.actions.items() if spec.precheck is not None]
    now_ms = to_ms(deps.now())
    rows = actions_store.dry_runs_due(deps.db, now_ms, since_ms=now_ms
                                      - DRY_RUN_CHECK_WINDOW_S * 1000, actions=names,
                                      limit=limit)
    for row in rows:
        incident = incidents_store.get(deps.db, row.incident_id)
        if incident is None:  # never checked again: nothing to check it against
            actions_store.note_result(deps.db, row.id, {"precheck": "could not check: no "
                                                        "incident"})
            continue
        event = _event_of(incident)
        ids = {"incident_id": row.incident_id, "event_id": row.event_id,
               "resource": incident.resource}
        checked = _Checked(dry_run=True)
        try:
            planned = _render(deps, row, event, incident)
            checked.read(deps.actions[row.action], planned.params, event, deps.ctx)
        except (ActionError, ConfigError) as exc:
            verdict = f"could not check: {exc}"
        else:
            assert checked.check is not None
            verdict = (f"would act: {checked.check.reason}" if checked.check.act
                       else checked.check.reason)
        checked.audit(deps, row, ids)
        actions_store.note_result(deps.db, row.id, {"precheck": verdict})
    return len(rows)


def retry_delay_s(options: EngineOptions, retries: int, exc: ActionError) -> float:
    """How long to wait before retry ``retries + 1``: the backoff doubles from
    ``retry_backoff_s`` up to ``retry_backoff_max_s``; a server's Retry-After (an exception's
    ``retry_after``) is never cut short."""
    backoff = min(options.retry_backoff_s * 2**retries, options.retry_backoff_max_s)
    after = getattr(exc, "retry_after", None)
    return float(max(backoff, after)) if isinstance(after, int | float) else float(backoff)


def _give_up(deps: Deps, row: actions_store.ActionRow, incident: incidents_store.Incident,
             error: str, ids: dict[str, str]) -> None:
    """A call that cannot succeed (permanent error, or retries spent): a remediation action
    escalates its incident at once (``on_failure`` runs); another attempt would fail alike."""
    _failed(deps, row, error, ids)
    if row.phase != "remediate":
        return
    fresh = incidents_store.get(deps.db, incident.id)
    if fresh is None or not fresh.active:
        return
    if fresh.rule_id:
        count_outcome(deps, fresh, success=False)
    escalate(deps, fresh, deps.playbooks.current.rule(fresh.rule_id), f"{row.reference}: {error}")


def close_ignored(deps: Deps, incident: incidents_store.Incident, reason: str, *,
                  event_id: str = "") -> None:
    """Close an incident as ``ignored`` (an ``ignore`` action: the failure is expected)."""
    now_ms = to_ms(deps.now())
    if not incidents_store.set_state(deps.db, incident.id, "ignored", reason=reason,
                                     now_ms=now_ms, only_from=incidents_store.ACTIVE):
        return
    for row in actions_store.cancel_pending(deps.db, incident.id, now_ms):
        deps.audit("action_cancelled", {"action": row.action, "reference": row.reference,
                                        "reason": reason}, incident_id=incident.id,
                   resource=incident.resource)
    state_store.release_lock(deps.db, incident.target, incident.id)
    deps.audit("resolution", {"state": "ignored", "reason": reason},
               incident_id=incident.id, event_id=event_id, resource=incident.resource)


def _call(deps: Deps, spec: ActionSpec, planned: PlannedAction, event: ErrorEvent,
          incident: incidents_store.Incident) -> ActionResult:
    if spec.run is not None:
        return spec.run(planned.params, event, deps.ctx)
    # rca.analyze: routed to the RCA hook, with the action's refresh / offline / channel.
    params = planned.params
    refresh = bool(getattr(params, "refresh", False))
    offline = bool(getattr(params, "offline", False))
    channel = str(getattr(params, "channel", "") or "")
    analysis = rca_for(deps, event, incident, refresh=refresh, offline=offline,
                       channel=channel)
    detail = "root-cause analysis recorded"
    if channel:
        post_rca(deps, event, incident, analysis, channel)
        detail += f" and posted to channel {channel}"
    return ActionResult(outcome="done", detail=detail, data={"rca": analysis})


def rca_for(deps: Deps, event: ErrorEvent, incident: incidents_store.Incident, *,
            refresh: bool = False, offline: bool = False, channel: str = "") -> dict[str, Any]:
    """Ask the RCA hook about ``event`` (with the incidents of the same fingerprint) and audit
    the answer; without a hook, the record says so. ``refresh`` (skip the cache) and
    ``offline`` (catalog only) are passed to the hook only when set, so plain
    ``rca(event, history)`` hooks keep working; ``channel`` is only recorded (the caller
    posts)."""
    history = [
        {"id": i.id, "state": i.state, "reason": i.reason, "opened_ms": i.opened_ms}
        for i in incidents_store.list_incidents(deps.db, fingerprint=event.fingerprint,
                                                limit=10)
        if i.id != incident.id
    ]
    asked = {name: True for name, value in (("refresh", refresh), ("offline", offline))
             if value}
    with deps.db.outside():  # an LLM call: the lock is not held meanwhile
        analysis = deps.rca(event, history, **asked) if deps.rca is not None else {
            "summary": "no RCA engine configured"}
    data: dict[str, Any] = {"analysis": analysis, "history": len(history)}
    if asked or channel:
        data["params"] = {"refresh": refresh, "offline": offline, "channel": channel}
    deps.audit("rca", data, incident_id=incident.id, event_id=event.id,
               resource=incident.resource)
    return analysis


def post_rca(deps: Deps, event: ErrorEvent, incident: incidents_store.Incident,
             analysis: dict[str, Any], channel: str) -> None:
    """Post the analysis to the configured ``channel`` through notify's code (the channel's
    format applies; 5xx/429/timeouts raise RetryableActionError, so the action retries)."""
    where = f"rca.analyze[channel={channel}]"
    target = notify.channel_target(deps.ctx, channel, where)
    summary = str(analysis.get("summary") or "")
    cause = str(analysis.get("probable_cause") or "")
    steps = [str(s) for s in analysis.get("next_steps") or []]
    mark = markup.untrusted  # the analysis and the event are not Remediator's words
    text = "\n".join([mark(summary)] + ([f"Probable cause: {mark(cause)}"] if cause else [])
                      + [f"- {mark(s)}" for s in steps])
    message = notify.Message(
        title=f"RCA: {mark(incident.resource or incident.target)}: "
              f"{mark(event.error_code or 'failure')}",
        text=text if markup.strip(text) else "no analysis", rca=summary,
        facts=notify.event_facts(event),
        fields={"incident": {"id": incident.id, "state": incident.state},
                "analysis": {k: analysis.get(k) for k in
                             ("category", "confidence", "retryable", "engine")
                             if k in analysis}},
        event=notify.event_summary(event))
    notify.send(deps.ctx, target, message, where, key=f"rca:{incident.id}:{channel}")


def _failed(deps: Deps, row: actions_store.ActionRow, error: str, ids: dict[str, str]) -> None:
    actions_store.finish(deps.db, row.id, "failed", now_ms=to_ms(deps.now()), error=error)
    deps.audit("action_failed", {"action": row.action, "reference": row.reference,
                                 "error": error}, **ids)


def _succeeded(deps: Deps, row: actions_store.ActionRow, spec: ActionSpec, result: ActionResult,
               incident: incidents_store.Incident, ids: dict[str, str],
               reconciled: bool = False) -> None:
    now = deps.now()
    probe = None
    if spec.probe is not None and result.outcome in ("started", "already_done") \
            and row.phase == "remediate":
        rule = deps.playbooks.current.rule(row.rule_id)
        timeout = getattr(rule, "verify_timeout_s", None) or deps.options.verify_timeout_s
        interval = getattr(rule, "verify_interval_s", None) or deps.options.verify_interval_s
        probe = (to_ms(now + timedelta(seconds=interval)),
                 to_ms(now + timedelta(seconds=timeout)), float(interval))
    external = next(iter(result.ref.values()), "") if result.ref else ""
    actions_store.finish(deps.db, row.id, "succeeded", now_ms=to_ms(now),
                         result=msgspec.to_builtins(result), external_id=str(external),
                         probe=probe)
    deps.audit("action_succeeded", {"action": row.action, "reference": row.reference,
                                    "outcome": result.outcome, "detail": result.detail,
                                    "ref": result.ref, "reconciled": reconciled,
                                    "verify": probe is not None}, **ids)


def settle(deps: Deps, incident_id: str, attempt: int) -> None:
    """Decide an attempt once its remediation rows are done: failed -> next attempt or
    ``on_failure``; all succeeded and verified (or nothing to verify) -> resolved; a probe
    still running -> verifying."""
    incident = incidents_store.get(deps.db, incident_id)
    if incident is None or not incident.active:
        return
    rows = actions_store.for_incident(deps.db, incident_id, attempt=attempt, phase="remediate")
    if any(r.state == "failed" or r.probe_state == "failed" for r in rows):
        failed = next(r for r in rows if r.state == "failed" or r.probe_state == "failed")
        fail_attempt(deps, incident, f"{failed.reference}: {failed.error or 'verification failed'}")
        return
    if any(r.state in ("scheduled", "started", "waiting_approval", "planned") for r in rows):
        return
    if any(r.probe_state == "running" for r in rows):
        if incidents_store.set_state(deps.db, incident_id, "verifying", reason="probing",
                                     now_ms=to_ms(deps.now()), only_from=("remediating",)):
            deps.audit("verification", {"state": "running", "attempt": attempt},
                       incident_id=incident_id, resource=incident.resource)
        return
    dry = [r for r in rows if r.state == "dry_run"]
    if dry and all(r.state in ("succeeded", "skipped", "dry_run") for r in rows):
        # What could run did; the rest was only planned (dry-run): nothing was remediated.
        reason = dry_run_reason(rows)
        if incidents_store.set_state(deps.db, incident_id, "ignored", reason=reason,
                                     now_ms=to_ms(deps.now()), only_from=incidents_store.ACTIVE):
            state_store.release_lock(deps.db, incident.target, incident.id)
            deps.audit("resolution", {"state": "ignored", "reason": reason},
                       incident_id=incident_id, resource=incident.resource)
        return
    if rows and all(r.state in ("succeeded", "skipped") for r in rows):
        skipped = [str(r.result.get("detail") or r.reference) for r in rows
                   if r.state == "skipped"]
        if skipped and not any(r.state == "succeeded" and r.mutating for r in rows):
            # Every change the rule would make is no longer needed: the cloud said so.
            resolve(deps, incident, "; ".join(skipped))
            return
        verified = any(r.probe_state == "succeeded" for r in rows)
        reason = "verified" if verified else "actions succeeded; nothing to verify"
        if skipped:
            reason += "; skipped: " + "; ".join(skipped)
        resolve(deps, incident, reason, rule_outcome=True)


def resolve(deps: Deps, incident: incidents_store.Incident, reason: str, *,
            rule_outcome: bool = False, event_id: str = "") -> None:
    """Close an incident as resolved: pending actions cancelled, probes stopped, lock freed."""
    now_ms = to_ms(deps.now())
    if not incidents_store.set_state(deps.db, incident.id, "resolved", reason=reason,
                                     now_ms=now_ms, only_from=incidents_store.ACTIVE):
        return
    cancelled = actions_store.cancel_pending(deps.db, incident.id, now_ms)
    for row in actions_store.for_incident(deps.db, incident.id):
        if row.probe_state == "running":
            actions_store.set_probe(deps.db, row.id, "cancelled")
    for row in cancelled:
        deps.audit("action_cancelled", {"action": row.action, "reference": row.reference,
                                        "reason": reason}, incident_id=incident.id,
                   resource=incident.resource)
    state_store.release_lock(deps.db, incident.target, incident.id)
    if rule_outcome and incident.rule_id:
        count_outcome(deps, incident, success=True)
    deps.audit("resolution", {"state": "resolved", "reason": reason},
               incident_id=incident.id, event_id=event_id, resource=incident.resource)


def count_outcome(deps: Deps, incident: incidents_store.Incident, *,
                  success: bool) -> state_store.Breaker:
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


def fail_attempt(deps: Deps, incident: incidents_store.Incident, reason: str) -> None:
    """An attempt failed: count it against the breaker, then try again if the budget allows
    (cooldown as a delay), else run ``on_failure`` and escalate."""
    from engine import guards  # guards imports the stores only; imported here to stay acyclic

    now_ms = to_ms(deps.now())
    rule = deps.playbooks.current.rule(incident.rule_id)
    breaker = count_outcome(deps, incident, success=False)
    actions_store.cancel_pending(deps.db, incident.id, now_ms)
    deps.audit("verification", {"state": "failed", "attempt": incident.attempts,
                                "reason": reason, "breaker_failures": breaker.failures},
               incident_id=incident.id, resource=incident.resource)
    if rule is None:
        escalate(deps, incident, None, f"{reason}; rule {incident.rule_id} is no longer loaded")
        return
    event = _event_of(incident)
    decisions = [guards.check_circuit(deps.db, rule, target=incident.target, now_ms=now_ms),
                 guards.check_budget(deps.db, rule, target=incident.target,
                                     fingerprint=incident.fingerprint, now_ms=now_ms)]
    for decision in decisions:
        deps.audit("guard", msgspec.to_builtins(decision), incident_id=incident.id,
                   resource=incident.resource)
    blocked = next((d for d in decisions if d.blocks), None)
    if blocked is not None:
        escalate(deps, incident, rule, f"{reason}; {blocked.reason}")
        return
    incidents_store.add_attempt(deps.db, incident.id, now_ms)
    incidents_store.set_state(deps.db, incident.id, "remediating",
                              reason=f"attempt failed: {reason}; trying again", now_ms=now_ms)
    fresh = incidents_store.get(deps.db, incident.id)
    assert fresh is not None
    groups: dict[str, Any] = {}
    rule.condition.test(event, groups)
    last = actions_store.last_started_ms(deps.db, rule_id=rule.id, target=incident.target)
    floor = 0
    if rule.cooldown_s and last:
        floor = max(0, (last + rule.cooldown_s * 1000 - now_ms + 999) // 1000)
    plan_attempt(deps, fresh, rule, event, RuleMatch(rule, groups), phase="remediate",
                 state="scheduled", dry_run=False, delay_floor_s=floor)
    run_due(deps, incident_id=incident.id)


def escalate(deps: Deps, incident: incidents_store.Incident, rule: Any, reason: str) -> None:
    """Run the rule's ``on_failure`` actions (if any) and mark the incident escalated."""
    now_ms = to_ms(deps.now())
    incidents_store.set_state(deps.db, incident.id, "escalated", reason=reason, now_ms=now_ms)
    actions_store.cancel_pending(deps.db, incident.id, now_ms)
    state_store.release_lock(deps.db, incident.target, incident.id)
    deps.audit("escalation", {"reason": reason}, incident_id=incident.id,
               resource=incident.resource)
    if rule is not None and rule.on_failure:
        event = _event_of(incident)
        groups: dict[str, Any] = {}
        rule.condition.test(event, groups)
        dry = not deps.live or rule.rule.dry_run
        fresh = incidents_store.get(deps.db, incident.id)
        assert fresh is not None
        try:
            plan_attempt(deps, fresh, rule, event, RuleMatch(rule, groups), phase="on_failure",
                         state="scheduled", dry_run=dry)
        except RenderError as exc:  # the incident stays escalated; the audit says why
            deps.audit("action_failed", {"phase": "on_failure", "error": str(exc)},
                       incident_id=incident.id, resource=incident.resource)
            return
        run_due(deps, incident_id=incident.id)


def run_due(deps: Deps, *, incident_id: str | None = None) -> int:
    """Run the scheduled rows that are due (of one incident, or all); returns how many ran."""
    if state_store.pause_state(deps.db).paused:
        return 0
    rows = actions_store.due(deps.db, to_ms(deps.now()), incident_id=incident_id)
    for row in rows:
        run_row(deps, row)
    return len(rows)


def reconcile_row(deps: Deps, row: actions_store.ActionRow) -> None:
    """An action left ``started`` by a crash: ask the cloud (``ActionSpec.reconcile``) whether
    the call was made; never re-send a mutating call blindly."""
    incident = incidents_store.get(deps.db, row.incident_id)
    assert incident is not None
    ids = {"incident_id": row.incident_id, "event_id": row.event_id,
           "resource": incident.resource}
    spec = deps.actions.get(row.action)
    event = _event_of(incident)
    found: ActionResult | None = None
    if spec is not None and spec.reconcile is not None:
        try:
            planned = _render(deps, row, event, incident)
            with deps.db.outside():
                found = spec.reconcile(planned.params, event, deps.ctx)
        except RetryableActionError as exc:
            deps.audit("action_failed", {"action": row.action, "reference": row.reference,
                                         "error": f"reconcile: {exc}; will try again"}, **ids)
            return
        except ActionError as exc:
            _failed(deps, row, f"interrupted; reconcile failed: {exc}", ids)
            settle(deps, row.incident_id, row.attempt)
            return
    if found is not None:
        _succeeded(deps, row, spec, found, incident, ids, reconciled=True)
    elif spec is not None and (spec.reconcile is not None or not spec.mutating):
        # The cloud has no trace of the call (or repeating it is harmless): run it again.
        actions_store.reschedule(deps.db, row.id, due_ms=to_ms(deps.now()),
                                 error="interrupted before the call reached the cloud")
        deps.audit("action_failed", {"action": row.action, "reference": row.reference,
                                     "error": "interrupted; not found in the cloud; rescheduled"},
                   **ids)
        return
    else:
        _failed(deps, row, "interrupted; the outcome is unknown and cannot be reconciled", ids)
    settle(deps, row.incident_id, row.attempt)


def poll_probe(deps: Deps, row: actions_store.ActionRow) -> None:
    """Poll one verification probe; a terminal answer (or the timeout) settles the attempt."""
    spec = deps.actions[row.action]
    incident = incidents_store.get(deps.db, row.incident_id)
    assert incident is not None and spec.probe is not None
    now_ms = to_ms(deps.now())
    result = msgspec.convert(row.result, ActionResult)
    try:
        with deps.db.outside():
            answer: ProbeResult = spec.probe(result, deps.ctx)
    except RetryableActionError as exc:
        answer = ProbeResult(state="running", detail=f"probe failed, will retry: {exc}")
    except ActionError as exc:
        answer = ProbeResult(state="failed", detail=str(exc))
    if answer.state == "running" and now_ms >= row.probe_deadline_ms:
        answer = ProbeResult(state="failed", detail=f"verification timed out: {answer.detail}")
    if answer.state == "running":
        actions_store.set_probe(deps.db, row.id, "running",
                                due_ms=now_ms + int(row.probe_interval_s * 1000))
        return
    actions_store.set_probe(deps.db, row.id, answer.state,
                            error=answer.detail if answer.state == "failed" else None)
    deps.audit("verification", {"action": row.action, "reference": row.reference,
                                "state": answer.state, "detail": answer.detail},
               incident_id=row.incident_id, event_id=row.event_id, resource=incident.resource)
    settle(deps, row.incident_id, row.attempt)

