"""How a row ended, recorded: succeeded (with the probe that will verify it), failed, or
skipped (the target no longer needed it). The runner and reconciliation both record here, and
both end a row another replica took over the same way (:func:`taken_over`)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import structlog

from engine.actions.base import ActionSpec
from engine.actions.context import ActionResult, Precheck
from engine.clock import to_ms
from engine.deps import Deps
from engine.store import actions as actions_store
from engine.store.incidents import Incident

__all__ = ["failed", "ids_of", "skipped", "succeeded", "taken_over"]

log = structlog.get_logger("remediator.outcome")


def ids_of(row: actions_store.ActionRow, incident: Incident) -> dict[str, str]:
    """The ids a row's audit records carry."""
    return {"incident_id": row.incident_id, "event_id": row.event_id,
            "resource": incident.resource}


def succeeded(deps: Deps, row: actions_store.ActionRow, spec: ActionSpec, result: ActionResult,
              incident: Incident, *, reconciled: bool = False) -> None:
    """The row succeeded (``reconciled``: the cloud showed an earlier try's call had); a
    remediation that started something with a probe is verified by it (the rule's
    ``verify:`` times, else ``[engine]``'s)."""
    now = deps.now()
    probe = None
    if spec.probe is not None and result.outcome in ("started", "already_done") \
            and row.phase == "remediate":
        rule = deps.playbooks.current.rule(row.rule_id)
        timeout = (rule.verify_timeout_s if rule else None) or deps.options.verify_timeout_s
        interval = (rule.verify_interval_s if rule else None) or deps.options.verify_interval_s
        probe = (to_ms(now + timedelta(seconds=interval)),
                 to_ms(now + timedelta(seconds=timeout)), float(interval))
    external = next(iter(result.ref.values()), "") if result.ref else ""
    actions_store.finish(deps.db, row.id, "succeeded", now_ms=to_ms(now),
                         result=msgspec.to_builtins(result), external_id=str(external),
                         probe=probe, owner=deps.owner)
    deps.audit("action_succeeded", {"action": row.action, "reference": row.reference,
                                    "outcome": result.outcome, "detail": result.detail,
                                    "ref": result.ref, "reconciled": reconciled,
                                    "verify": probe is not None}, **ids_of(row, incident))


def failed(deps: Deps, row: actions_store.ActionRow, error: str, incident: Incident) -> None:
    """The row failed for good."""
    actions_store.finish(deps.db, row.id, "failed", now_ms=to_ms(deps.now()), error=error,
                         owner=deps.owner)
    deps.audit("action_failed", {"action": row.action, "reference": row.reference,
                                 "error": error}, **ids_of(row, incident))


def skipped(deps: Deps, row: actions_store.ActionRow, check: Precheck) -> None:
    """The target no longer needs the action: the row ends ``skipped``, nothing was called."""
    actions_store.finish(deps.db, row.id, "skipped", now_ms=to_ms(deps.now()),
                         result={"outcome": "skipped", "detail": check.reason,
                                 "seen": check.seen}, owner=deps.owner)


def taken_over(deps: Deps, row: actions_store.ActionRow, lost: actions_store.NotOwner) -> None:
    """An outcome write found the row another replica's (this one's heartbeat had expired:
    engine/store/replicas.py): its new owner reconciles, records, audits and settles it, so
    this replica writes and audits nothing more of it and goes on with its other rows."""
    log.warning("action_taken_over", action_id=row.id, owner=deps.owner, error=str(lost))
