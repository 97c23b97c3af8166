"""The incident lifecycle: its states, the moves between them, and the one place that moves it.

An incident is one failure of one target (fingerprint, target) across the events that report
it and the attempts to fix it. Every change of its state is one of the functions below; each
checks the move against :data:`TRANSITIONS` (anything else raises
:class:`~engine.errors.InvalidTransition`), writes it as a compare-and-set (another thread or
process that moved the incident first wins, and the move reports False), and does its side
effects the same way every time:

- a move to a final state cancels the pending actions (an ``action_cancelled`` record each),
  stops the running probes, releases the target's lock and writes the closing record:
  ``resolution`` (resolved, ignored) or ``escalation``;
- the other moves write the record that tells them, where it is theirs: ``incident`` (opened
  or joined, and ``repeat``), ``verification`` (a probe runs). A move to ``remediating`` or
  ``waiting_approval`` is told by the records of what caused it, written by its caller before
  it: ``action_planned`` (planned), ``approval`` (approved), ``verification`` failed and the
  ``guard`` decisions (a next attempt), the approval ``guard`` (waiting).

These functions are the only callers of the store's state writes (engine/store/transitions.py;
an import-linter contract holds it), so that a server database can take the incident's row
lock here. Running what follows a move (``on_failure``, a next attempt) is the caller's
(engine/remediation).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, NamedTuple, get_args

from engine.clock import to_ms
from engine.errors import InvalidTransition
from engine.events import ErrorEvent
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store import state as state_store
from engine.store import transitions
from engine.store.db import Database
from engine.store.incidents import Incident

__all__ = [
    "ACTIVE",
    "FINAL",
    "MOVES",
    "STATES",
    "TRANSITIONS",
    "IncidentState",
    "InvalidTransition",
    "Move",
    "active",
    "escalate",
    "find_active",
    "ignore",
    "lock",
    "mermaid",
    "moves_table",
    "open_or_join",
    "remediate",
    "resolve",
    "verify",
    "wait_approval",
]

IncidentState = Literal[
    # Active: the incident is being handled; at most one per (fingerprint, target).
    "open",              # a firing event opened it; no rule has acted on it yet
    "remediating",       # an attempt's actions are scheduled, running, or being settled
    "waiting_approval",  # its actions wait for a person (a rule's or policy's approval)
    "verifying",         # the actions are done; a probe follows what they started
    # Final: nothing more happens to it; a later firing event opens a new incident.
    "resolved",          # fixed (verified, or nothing to do), or its failure resolved itself
    "escalated",         # a person must look: no rule, a guard, the budget, a failed action
    "ignored",           # expected, rejected, or a dry-run that only said what it would do
]
"""The states of an incident, one comment each (as Prometheus' ``AlertState``)."""

STATES: tuple[IncidentState, ...] = get_args(IncidentState)
ACTIVE: tuple[IncidentState, ...] = ("open", "remediating", "waiting_approval", "verifying")
FINAL: tuple[IncidentState, ...] = ("resolved", "escalated", "ignored")


class Move(NamedTuple):
    """One kind of move: its function, the states it leaves from, the state it reaches, and
    what makes it happen (the label of the state diagram in docs/ARCHITECTURE.md)."""

    function: str
    sources: tuple[IncidentState, ...]
    target: IncidentState
    why: str


MOVES: tuple[Move, ...] = (
    Move("open_or_join", (), "open", "a firing event, no active incident of its failure"),
    Move("wait_approval", ("open",), "waiting_approval",
         "the rule, a rule matched through continue, or a policy requires approval"),
    Move("remediate", ("open",), "remediating", "actions planned"),
    Move("remediate", ("waiting_approval",), "remediating", "approved"),
    Move("remediate", ("remediating", "verifying"), "remediating", "next attempt"),
    Move("verify", ("remediating",), "verifying", "the actions are done, a probe follows them"),
    Move("resolve", ACTIVE, "resolved", "verified, nothing to verify, nothing to do (the "
         "pre-check), or a resolved event for its target or alert"),
    Move("escalate", ACTIVE, "escalated", "no rule matched (after RCA), the circuit or the "
         "budget, a permanent error or retries spent, approval expired"),
    Move("ignore", ACTIVE, "ignored", "a silence, cooldown or lock, every planned action "
         "dry-run, rejected, an ignore action"),
)
"""Every move of the lifecycle; :data:`TRANSITIONS` is what they allow."""

TRANSITIONS: Mapping[IncidentState, frozenset[IncidentState]] = {
    state: frozenset(m.target for m in MOVES if state in m.sources) for state in STATES
}
"""The allowed transitions: for each state, the states a move may take an incident to (none
from a final state)."""


def active(incident: Incident) -> bool:
    """Whether the incident is still being handled (its state is active)."""
    return incident.state in ACTIVE


def find_active(db: Database, *, target: str, alert_key: str) -> list[Incident]:
    """The active incidents of ``target`` or carrying ``alert_key``, oldest first."""
    return incidents_store.find(db, states=ACTIVE, target=target, alert_key=alert_key)


def open_or_join(db: Database, event: ErrorEvent, *, target: str, alert_key: str,
                 now: datetime, rejoin_since: datetime | None = None) -> tuple[Incident, bool]:
    """Open the incident of the event's failure on ``target`` (``open``), or join the active
    one; with ``rejoin_since``, also join the same failure escalated as unmatched since then
    (it stays escalated; audited ``repeat``). Audited ``incident``; returns the incident and
    whether it was opened."""
    incident, created = transitions.open_or_join(
        db, fingerprint=event.fingerprint, target=target, source=event.source,
        resource=event.resource, alert_key=alert_key, event_id=event.id, now_ms=to_ms(now),
        rejoin_since_ms=None if rejoin_since is None else to_ms(rejoin_since))
    ids = {"incident_id": incident.id, "event_id": event.id, "resource": event.resource}
    audit_store.append(db, "incident", ts=now, data={
        "state": incident.state, "created": created, "target": incident.target,
        "fingerprint": incident.fingerprint}, **ids)
    if rejoin_since is not None and incident.state == "escalated":
        audit_store.append(db, "repeat", ts=now, data={
            "events": incident.events, "closed_ms": incident.closed_ms,
            "reason": incident.reason}, **ids)
    return incident, created


def lock(db: Database, incident_id: str) -> Incident | None:
    """The incident as it is now, its row held until the caller's transaction ends (call it
    inside ``db.batch()``): what the caller reads next and the moves it makes are not raced
    by another replica doing the same (settling the same attempt twice would plan two next
    attempts: ``remediating`` -> ``remediating`` is a move). None if there is no such
    incident."""
    return transitions.lock(db, incident_id)


def wait_approval(db: Database, incident: Incident, *, due: datetime, now: datetime) -> bool:
    """``open`` -> ``waiting_approval`` until ``due`` (then it expires and escalates)."""
    return _move(db, incident, "waiting_approval", "waiting for approval", now,
                 approval_due_ms=to_ms(due))


def remediate(db: Database, incident: Incident, *, reason: str, now: datetime) -> bool:
    """-> ``remediating``: its actions planned (from ``open``), approved (from
    ``waiting_approval``) or a next attempt planned (from ``remediating`` or ``verifying``);
    only from the state the caller saw in ``incident``."""
    return _move(db, incident, "remediating", reason, now)


def verify(db: Database, incident: Incident, *, attempt: int, now: datetime) -> bool:
    """``remediating`` -> ``verifying``: the attempt's actions are done and a probe runs.
    Audited ``verification`` (running)."""
    moved = _move(db, incident, "verifying", "probing", now)
    if moved:
        audit_store.append(db, "verification", ts=now,
                           data={"state": "running", "attempt": attempt},
                           incident_id=incident.id, resource=incident.resource)
    return moved


def resolve(db: Database, incident: Incident, reason: str, *, now: datetime,
            event_id: str = "", actor: str = "engine") -> bool:
    """-> ``resolved`` from any active state; closes it (see the module's docstring).
    ``actor`` names who, for a person who resolved it by hand."""
    return _close(db, incident, "resolved", reason, now, event_id=event_id, actor=actor)


def ignore(db: Database, incident: Incident, reason: str, *, now: datetime,
           event_id: str = "", actor: str = "engine") -> bool:
    """-> ``ignored`` from any active state; closes it (``actor`` names who, for a
    rejection)."""
    return _close(db, incident, "ignored", reason, now, event_id=event_id, actor=actor)


def escalate(db: Database, incident: Incident, reason: str, *, now: datetime) -> bool:
    """-> ``escalated`` from any active state; closes it. The rule's ``on_failure`` is the
    caller's to plan and run."""
    return _close(db, incident, "escalated", reason, now)


def _check(incident: Incident, to: IncidentState) -> bool:
    """Whether the move may be tried: False from a final state (the incident was closed
    meanwhile: nothing to do); raises InvalidTransition for a move the table does not have."""
    state = incident.state
    if state in FINAL:
        return False
    if to not in TRANSITIONS.get(state, frozenset()):  # type: ignore[call-overload]
        leads = sorted(s for s, targets in TRANSITIONS.items() if to in targets)
        raise InvalidTransition(f"incident {incident.id}: {state} -> {to} is not a move of "
                                f"the lifecycle; {to} is reached from {', '.join(leads)}")
    return True


def _move(db: Database, incident: Incident, to: IncidentState, reason: str, now: datetime,
          *, approval_due_ms: int | None = None) -> bool:
    """A move to an active state, from the state the caller saw (compare-and-set)."""
    if not _check(incident, to):
        return False
    return transitions.set_state(db, incident.id, to, reason=reason, now_ms=to_ms(now),
                                 only_from=(incident.state,), approval_due_ms=approval_due_ms)


def _close(db: Database, incident: Incident, to: IncidentState, reason: str, now: datetime,
           *, event_id: str = "", actor: str = "engine") -> bool:
    """A move to a final state, from whichever active state the incident is in now (a
    resolution, an escalation or an ignore wins over a step under way), with every side
    effect of closing."""
    if not _check(incident, to):
        return False
    now_ms = to_ms(now)
    if not transitions.set_state(db, incident.id, to, reason=reason, now_ms=now_ms,
                                 only_from=ACTIVE, closes=True):
        return False
    cancelled = actions_store.cancel_pending(db, incident.id, now_ms)
    actions_store.stop_probes(db, incident.id)
    for row in cancelled:
        audit_store.append(db, "action_cancelled", ts=now, actor=actor,
                           data={"action": row.action, "reference": row.reference,
                                 "reason": reason},
                           incident_id=incident.id, resource=incident.resource)
    state_store.release_lock(db, incident.target, incident.id)
    if to == "escalated":
        audit_store.append(db, "escalation", ts=now, actor=actor, data={"reason": reason},
                           incident_id=incident.id, resource=incident.resource)
    else:
        audit_store.append(db, "resolution", ts=now, actor=actor,
                           data={"state": to, "reason": reason}, incident_id=incident.id,
                           event_id=event_id, resource=incident.resource)
    return True


def mermaid() -> str:
    """The state diagram of :data:`MOVES` in Mermaid, each edge named by its function (and,
    for ``remediate``, its cause); docs/ARCHITECTURE.md shows it, and a test holds the two
    equal."""
    lines = ["stateDiagram-v2"]
    for move in MOVES:
        named = [m for m in MOVES if m.function == move.function]
        label = move.function + (f" ({move.why})" if len(named) > 1 else "")
        lines += [f"    {source} --> {move.target}: {label}" for source in move.sources or ("[*]",)]
    lines += [f"    {state} --> [*]" for state in FINAL]
    return "\n".join(lines)


def moves_table() -> str:
    """:data:`MOVES` as a Markdown table (function, from, to, why), for docs/ARCHITECTURE.md."""
    rows = ["| move | from | to | why |", "| --- | --- | --- | --- |"]
    for move in MOVES:
        sources = ", ".join(f"`{s}`" for s in move.sources) or "(none: a new incident)"
        rows.append(f"| `{move.function}` | {sources} | `{move.target}` | {move.why} |")
    return "\n".join(rows)
