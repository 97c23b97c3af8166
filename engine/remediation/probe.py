"""Verification: a probe polls what an action started (a rerun, a repair, a cluster start)
until it ends; its answer, or its timeout, settles the attempt."""

from __future__ import annotations

import msgspec

from engine.actions.context import ActionResult, ProbeResult
from engine.clock import to_ms
from engine.deps import Deps
from engine.errors import ActionError, RetryableActionError
from engine.remediation import settle
from engine.remediation.run import run_due
from engine.store import actions as actions_store
from engine.store import incidents as incidents_store

__all__ = ["poll_probe"]


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
    if settle.settle(deps, row.incident_id, row.attempt):
        run_due(deps, incident_id=row.incident_id)
