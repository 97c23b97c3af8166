"""Running due action rows: the intent committed (``started``) before the call out, then in
one call out the pre-check and the action, then its outcome, then the attempt settled.

Both the worker (right after planning) and the scheduler (due rows) run here. A row whose
settling planned more rows to run now (a next attempt, ``on_failure``) runs those too,
before its caller goes on. A mutating remediation row is held by a silence in force when it
comes due, as the silence guard holds a planning (a silence may begin after a delayed row,
a next attempt or an approved one was planned).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import msgspec

from engine import guards, lifecycle
from engine.actions.base import ActionSpec
from engine.actions.context import ActionResult
from engine.clock import to_ms
from engine.config import EngineSettings
from engine.deps import Deps
from engine.errors import ActionError, PermanentActionError, RetryableActionError
from engine.events import ErrorEvent
from engine.remediation import outcome, settle
from engine.remediation.analyse import IncidentAnalyst
from engine.remediation.plan import event_of, render_row
from engine.remediation.precheck import Checked
from engine.store import actions as actions_store
from engine.store import incidents as incidents_store
from engine.store import state as state_store

__all__ = ["retry_delay_s", "run_due", "run_row"]


def run_due(deps: Deps, *, incident_id: str | None = None) -> int:
    """Run the scheduled rows that are due (of one incident, or all); returns how many of
    those ran (not counting rows their settling planned and ran after them)."""
    if state_store.pause_state(deps.db).paused:
        return 0
    rows = actions_store.due(deps.db, to_ms(deps.now()), incident_id=incident_id)
    for row in rows:
        run_row(deps, row)
    return len(rows)


def run_row(deps: Deps, row: actions_store.ActionRow) -> None:
    """Run one due, scheduled action: intent, call, outcome, then settle its attempt.

    Does nothing while paused or if the row is no longer ``scheduled`` (another thread or
    process took it, or it was cancelled).
    """
    if state_store.pause_state(deps.db).paused:
        return
    incident = incidents_store.get(deps.db, row.incident_id)
    assert incident is not None
    event = event_of(incident)
    spec = deps.actions.get(row.action)
    ids = outcome.ids_of(row, incident)
    if row.mutating and row.phase == "remediate" and _silenced(deps, row, incident, ids):
        return
    if not actions_store.start(deps.db, row.id, owner=deps.owner, now_ms=to_ms(deps.now())):
        return
    deps.audit("action_started", {"action": row.action, "reference": row.reference,
                                  "key": row.idem_key, "attempt": row.attempt,
                                  "retry": row.retries, "playbook": row.playbook,
                                  "playbook_hash": row.playbook_hash}, **ids)
    try:
        _call(deps, row, incident, event, spec, ids)
    except actions_store.NotOwner as lost:  # its new owner records, audits and settles it
        outcome.taken_over(deps, row, lost)


def _call(deps: Deps, row: actions_store.ActionRow, incident: incidents_store.Incident,
          event: ErrorEvent, spec: ActionSpec | None, ids: dict[str, str]) -> None:
    """The started row's one call out (pre-check, then the action), its outcome recorded
    (:class:`~engine.store.actions.NotOwner` if another replica took the row over), then its
    attempt settled."""
    planned_more = False
    try:
        if spec is None:
            raise PermanentActionError(f"{row.reference}: unknown action {row.action}")
        params = render_row(deps, row, event, incident).params
        checked = Checked()
        # The action's context for this row: the analysis of its incident (rca.analyze).
        ctx = dataclasses.replace(deps.ctx, analyst=IncidentAnalyst(deps, incident))
        result: ActionResult | None = None
        try:
            # One call out, the intent above committed before it: the pre-check reads the
            # target's state, and only if it still needs the action is the action called.
            with deps.db.outside():
                checked.read(spec, params, event, deps.ctx)
                if not checked.skips:
                    if not deps.may_call():  # paused past its heartbeat: the row is not ours
                        raise actions_store.NotOwner(
                            f"{row.reference}: not called: {deps.owner}'s heartbeat may have "
                            "expired (another replica takes the row over)")
                    result = spec.run(params, event, ctx)
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
                    found = spec.reconcile(params, event, deps.ctx)
            if found is not None:
                outcome.succeeded(deps, row, spec, found, incident, reconciled=True)
            else:
                outcome.skipped(deps, row, checked.check)
            _settle(deps, row)
            return
    except RetryableActionError as exc:
        if row.retries < deps.options.retry_limit:
            delay = retry_delay_s(deps.options, row.retries, exc)
            due = deps.now() + timedelta(seconds=delay)
            actions_store.reschedule(deps.db, row.id, due_ms=to_ms(due), error=str(exc),
                                     owner=deps.owner)
            deps.audit("action_failed", {"action": row.action, "reference": row.reference,
                                         "error": str(exc), "retry": row.retries + 1,
                                         "retry_limit": deps.options.retry_limit,
                                         "delay_s": delay, "retry_at": to_ms(due)}, **ids)
            return
        planned_more = settle.give_up(deps, row, incident,
                                      f"{exc} (gave up after {row.retries} retries)")
    except ActionError as exc:
        planned_more = settle.give_up(deps, row, incident, str(exc))
    else:
        outcome.succeeded(deps, row, spec, result, incident)
        if result.data.get("close_incident"):
            settle.ignore(deps, incident, f"{row.reference}: {result.detail}",
                          event_id=row.event_id)
            return
    _settle(deps, row, planned_more)


def _silenced(deps: Deps, row: actions_store.ActionRow, incident: incidents_store.Incident,
              ids: dict[str, str]) -> bool:
    """Whether a silence in force holds the row now it is due: then, as at planning, the
    silence guard's decision is audited and the incident closes ``ignored`` naming the
    silence (engine/lifecycle.py cancels its pending rows, this one with them). Checked and
    closed in one transaction, only while the row is still ``scheduled``."""
    decision = guards.silenced(deps, incident, to_ms(deps.now()))
    if not decision.blocks:
        return False
    held = msgspec.structs.replace(
        decision, reason=f"{row.reference} came due while {decision.reason}")
    with deps.db.batch():
        fresh = actions_store.get(deps.db, row.id)
        if fresh is None or fresh.state != "scheduled":
            return True  # taken or cancelled meanwhile: not this runner's to run
        deps.audit("guard", msgspec.to_builtins(held), **ids)
        lifecycle.ignore(deps.db, incident, held.reason, now=deps.now(),
                         event_id=row.event_id)
    return True


def _settle(deps: Deps, row: actions_store.ActionRow, planned_more: bool = False) -> None:
    """Settle the row's attempt, then run what the outcome planned to run now."""
    if settle.settle(deps, row.incident_id, row.attempt) or planned_more:
        run_due(deps, incident_id=row.incident_id)


def retry_delay_s(options: EngineSettings, retries: int, exc: ActionError) -> float:
    """How long to wait before retry ``retries + 1``: the backoff doubles from
    ``retry_backoff_s`` up to ``retry_backoff_max_s``; a server's Retry-After (an exception's
    ``retry_after``) is never cut short."""
    backoff = min(options.retry_backoff_s * 2**retries, options.retry_backoff_max_s)
    after = getattr(exc, "retry_after", None)
    return float(max(backoff, after)) if isinstance(after, int | float) else float(backoff)
