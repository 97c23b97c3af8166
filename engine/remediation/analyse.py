"""The root-cause analysis of an incident: the RCA hook asked about its event with the
incidents of the same failure before it, and the answer audited (``rca``).

The pipeline asks it for a firing event no rule matches; ``rca.analyze`` asks it through
:class:`IncidentAnalyst`, which the runner puts in the action's context for its incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.deps import Deps
from engine.events import ErrorEvent
from engine.store import incidents as incidents_store
from engine.store.incidents import Incident

__all__ = ["IncidentAnalyst", "analyse"]


def analyse(deps: Deps, event: ErrorEvent, incident: Incident, *, refresh: bool = False,
            offline: bool = False, channel: str = "") -> dict[str, Any]:
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


@dataclass(frozen=True)
class IncidentAnalyst:
    """:func:`analyse` bound to one incident: the ``analyst`` of an action's context
    (``engine.actions.context.Analyst``)."""

    deps: Deps
    incident: Incident

    def analyse(self, event: ErrorEvent, *, refresh: bool, offline: bool,
                channel: str) -> dict[str, Any]:
        """See :func:`analyse`."""
        return analyse(self.deps, event, self.incident, refresh=refresh, offline=offline,
                       channel=channel)
