"""Reconciliation: an action a crash (or a stuck call) left ``started`` is asked of the cloud
(``ActionSpec.reconcile``): found, it succeeded; not found, it runs again if that is safe;
otherwise it failed. A mutating call is never re-sent blindly."""

from __future__ import annotations

from engine.actions.context import ActionResult
from engine.clock import to_ms
from engine.deps import Deps
from engine.errors import ActionError, RetryableActionError
from engine.remediation import outcome, settle
from engine.remediation.plan import event_of, render_row
from engine.remediation.run import run_due
from engine.store import actions as actions_store
from engine.store import incidents as incidents_store

__all__ = ["reconcile_row"]


def reconcile_row(deps: Deps, row: actions_store.ActionRow) -> bool:
    """An action left ``started`` by a crash: ask the cloud (``ActionSpec.reconcile``) whether
    the call was made; never re-send a mutating call blindly. False if another replica took
    the row over meanwhile (:func:`outcome.taken_over`): nothing of it was recorded here."""
    try:
        _reconcile(deps, row)
    except actions_store.NotOwner as lost:
        outcome.taken_over(deps, row, lost)
        return False
    return True


def _reconcile(deps: Deps, row: actions_store.ActionRow) -> None:
    incident = incidents_store.get(deps.db, row.incident_id)
    assert incident is not None
    ids = outcome.ids_of(row, incident)
    spec = deps.actions.get(row.action)
    event = event_of(incident)
    found: ActionResult | None = None
    if spec is not None and spec.reconcile is not None:
        try:
            planned = render_row(deps, row, event, incident)
            with deps.db.outside():
                found = spec.reconcile(planned.params, event, deps.ctx)
        except RetryableActionError as exc:
            deps.audit("action_failed", {"action": row.action, "reference": row.reference,
                                         "error": f"reconcile: {exc}; will try again"}, **ids)
            return
        except ActionError as exc:
            outcome.failed(deps, row, f"interrupted; reconcile failed: {exc}", incident)
            _settle(deps, row)
            return
    if found is not None:
        assert spec is not None
        outcome.succeeded(deps, row, spec, found, incident, reconciled=True)
    elif spec is not None and (spec.reconcile is not None or not spec.mutating):
        # The cloud has no trace of the call (or repeating it is harmless): run it again.
        actions_store.reschedule(deps.db, row.id, due_ms=to_ms(deps.now()),
                                 error="interrupted before the call reached the cloud",
                                 owner=deps.owner)
        deps.audit("action_failed", {"action": row.action, "reference": row.reference,
                                     "error": "interrupted; not found in the cloud; rescheduled"},
                   **ids)
        return
    else:
        outcome.failed(deps, row, "interrupted; the outcome is unknown and cannot be reconciled",
                       incident)
    _settle(deps, row)


def _settle(deps: Deps, row: actions_store.ActionRow) -> None:
    if settle.settle(deps, row.incident_id, row.attempt):
        run_due(deps, incident_id=row.incident_id)
